"""Frame encode/decode for the hand-held serial protocol: pure functions, no I/O.

Every message on the line is one frame. Multi-byte integers are big-endian.

::

    offset  size  field
    ------  ----  ---------------------------------------------------------------
     0       1    SYNC1  0xA5
     1       1    SYNC2  0x5A
     2       1    VER    protocol version, 0x01
     3       1    TYPE   message type (MsgType)
     4       4    SEQ    u32: byte offset for DATA/ACK/NAK, message counter otherwise
     8       2    LEN    u16: payload length N, 0..MAX_PAYLOAD
    10       2    HCRC   CRC-16/CCITT-FALSE over bytes 2..9 (VER..LEN)
    12       N    PAYLOAD
    12+N     2    PCRC   CRC-16/CCITT-FALSE over PAYLOAD (0xFFFF when N = 0)

    +----+----+----+----+----+----+----+----+----+----+----+----+------------+----+----+
    | A5 | 5A |VER |TYPE|        SEQ        |   LEN   |  HCRC   | PAYLOAD... |  PCRC   |
    +----+----+----+----+----+----+----+----+----+----+----+----+------------+----+----+

Why a header CRC as well as a payload CRC: the length prefix is trusted only after its own CRC
checks, so a bit flipped in LEN is caught at once instead of making the decoder wait for thousands of
bytes that will never come. Why SYNC: after garbage or a torn frame the decoder scans for A5 5A and
re-checks, so it always recovers; a false SYNC inside payload bytes fails the header CRC.

CRC-16/CCITT-FALSE: width 16, poly 0x1021, init 0xFFFF, refin false, refout false, xorout 0x0000,
check 0x29B1 (the CRC of ASCII "123456789").

Overhead is 14 bytes per frame: 1.4 % at the default 1,000-byte DATA payload.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

SYNC = b"\xa5\x5a"
VERSION = 1
HEADER_LEN = 12
TRAILER_LEN = 2
OVERHEAD = HEADER_LEN + TRAILER_LEN
MAX_PAYLOAD = 4096
_HEADER = struct.Struct(">2sBBIHH")  # sync, ver, type, seq, len, hcrc
_HEADER_BODY = struct.Struct(">BBIH")  # ver, type, seq, len: the bytes HCRC covers


class MsgType(IntEnum):
    """Message types; the payloads are described in docs/handheld-protocol.md."""

    IDENT_REQ = 0x01  # station -> device: who are you?
    IDENT = 0x02  # device -> station: JSON device info
    SET_CLOCK = 0x03  # station -> device: JSON {"utc_ms": int}
    CLOCK_OK = 0x04  # device -> station: JSON {"skew_ms": int}
    UPLOAD_REQ = 0x05  # station -> device: send me your reads
    BEGIN = 0x10  # sender -> receiver: JSON {"kind", "size", "sha256"}
    READY = 0x11  # receiver -> sender: JSON {"sha256", "offset"} resume point
    DATA = 0x12  # sender -> receiver: SEQ = byte offset of payload in the transfer
    ACK = 0x13  # receiver -> sender: SEQ = every byte below this offset is held
    NAK = 0x14  # receiver -> sender: SEQ = resend from this offset
    END = 0x15  # sender -> receiver: JSON {"sha256", "size"}
    END_OK = 0x16  # receiver -> sender: JSON {"sha256"} whole-transfer checksum matched
    END_BAD = 0x17  # receiver -> sender: JSON {"sha256", "reason"}; start again from offset 0
    COMMIT = 0x20  # station -> device: JSON {"kind", "sha256"}
    COMMIT_OK = 0x21  # device -> station: JSON {"kind", "sha256"}
    BYE = 0x30  # station -> device: session over, you may undock
    BYE_OK = 0x31
    ERROR = 0x3F  # either way: JSON {"reason"}


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame."""

    type: MsgType
    seq: int
    payload: bytes = b""


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout); check value 0x29B1.

    Parameters
    ----------
    data
        Bytes to checksum.
    crc
        Running value, to continue a checksum over several pieces.
    """
    # binascii.crc_hqx is the same polynomial, MSB-first with no final xor; given init 0xFFFF it is
    # exactly CCITT-FALSE, in C.
    return binascii.crc_hqx(data, crc)


def encode(frame: Frame) -> bytes:
    """Encode a frame to its bytes on the line.

    Raises
    ------
    ValueError
        If the payload is longer than MAX_PAYLOAD or SEQ does not fit in 32 bits.
    """
    n = len(frame.payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"payload is {n} bytes; the most a frame carries is {MAX_PAYLOAD}")
    if not 0 <= frame.seq <= 0xFFFFFFFF:
        raise ValueError(f"seq {frame.seq} does not fit in 32 bits")
    body = _HEADER_BODY.pack(VERSION, int(frame.type), frame.seq, n)
    hcrc = crc16_ccitt_false(body)
    return b"".join(
        (
            SYNC,
            body,
            hcrc.to_bytes(2, "big"),
            frame.payload,
            crc16_ccitt_false(frame.payload).to_bytes(2, "big"),
        )
    )


_KNOWN_TYPES = frozenset(int(t) for t in MsgType)


def decode(buf: bytes | bytearray | memoryview) -> tuple[Frame | None, int]:
    """Decode the first frame in `buf`.

    Returns
    -------
    (frame, consumed)
        ``(Frame, n)``: a frame was decoded from the first n bytes.
        ``(None, n > 0)``: the first n bytes are garbage (or a damaged frame); drop them and call again.
        ``(None, 0)``: `buf` starts with what may be a frame but is incomplete; read more bytes.
    """
    data = bytes(buf[: HEADER_LEN + MAX_PAYLOAD + TRAILER_LEN])
    start = data.find(SYNC)
    if start < 0:
        # Keep a trailing 0xA5: it may be the first half of a SYNC still on the wire.
        keep = 1 if data.endswith(SYNC[:1]) else 0
        return None, len(data) - keep
    if start > 0:
        return None, start
    if len(data) < HEADER_LEN:
        return None, 0
    _sync, ver, mtype, seq, length, hcrc = _HEADER.unpack_from(data)
    if (
        crc16_ccitt_false(data[2:10]) != hcrc
        or ver != VERSION
        or mtype not in _KNOWN_TYPES
        or length > MAX_PAYLOAD
    ):
        return None, 1  # false or damaged SYNC: skip one byte and scan again
    end = HEADER_LEN + length
    if len(data) < end + TRAILER_LEN:
        return None, 0
    payload = data[HEADER_LEN:end]
    if crc16_ccitt_false(payload) != int.from_bytes(data[end : end + TRAILER_LEN], "big"):
        # A good header with a bad payload: drop only the SYNC so a real frame hidden inside is still
        # found; the receiver notices the missing offset and asks for it again.
        return None, 1
    return Frame(MsgType(mtype), seq, payload), end + TRAILER_LEN


class FrameReader:
    """Accumulates bytes from the line and yields whole frames; counts what it threw away."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.discarded_bytes = 0

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add bytes read from the line; return every frame now complete, in order."""
        self._buf += chunk
        frames: list[Frame] = []
        while self._buf:
            frame, used = decode(self._buf)
            if used == 0:
                break
            del self._buf[:used]
            if frame is None:
                self.discarded_bytes += used
            else:
                frames.append(frame)
        return frames

    def clear(self) -> None:
        """Forget any partial frame (after a hang-up)."""
        self._buf.clear()

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a frame."""
        return len(self._buf)
