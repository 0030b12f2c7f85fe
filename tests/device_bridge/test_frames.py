"""Frame encode/decode: CRC variant, layout, partial input, garbage and damage."""

from __future__ import annotations

import random

import pytest

from device_bridge.frames import (
    HEADER_LEN,
    MAX_PAYLOAD,
    OVERHEAD,
    Frame,
    FrameReader,
    MsgType,
    crc16_ccitt_false,
    decode,
    encode,
)


def _reference_crc16_ccitt_false(data: bytes) -> int:
    """Bit-by-bit CRC-16/CCITT-FALSE straight from its parameters, to cross-check the fast one."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def test_crc_is_ccitt_false_by_its_check_value():
    """The CRC is CRC-16/CCITT-FALSE: its catalogue check value over b'123456789' is 0x29B1."""
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert _reference_crc16_ccitt_false(b"123456789") == 0x29B1


@pytest.mark.parametrize("seed", range(5))
def test_crc_matches_the_bitwise_reference(seed):
    """The table/C implementation agrees with the bit-by-bit definition on random data."""
    data = random.Random(seed).randbytes(random.Random(seed).randrange(0, 3000))
    assert crc16_ccitt_false(data) == _reference_crc16_ccitt_false(data)


def test_layout_of_an_ack_frame_byte_for_byte():
    """An ACK for offset 8000 encodes exactly as drawn in the frames docstring and the protocol doc."""
    raw = encode(Frame(MsgType.ACK, 8000))
    assert raw[:10].hex(" ") == "a5 5a 01 13 00 00 1f 40 00 00"
    assert raw[10:12] == crc16_ccitt_false(raw[2:10]).to_bytes(2, "big") == bytes.fromhex("4b f0")
    assert raw[12:] == b"\xff\xff"  # CRC of an empty payload is the init value
    assert len(raw) == OVERHEAD


@pytest.mark.parametrize(
    "payload",
    [b"", b"x", bytes(range(256)), "Größe – ñandú 水表".encode(), b"\xa5\x5a" * 50, b"\x00" * MAX_PAYLOAD],
    ids=["empty", "one", "all-bytes", "non-ascii-utf8", "sync-inside", "max"],
)
def test_round_trip(payload):
    """Any payload up to MAX_PAYLOAD, including SYNC bytes and non-ASCII, decodes to what was sent."""
    frame = Frame(MsgType.DATA, 123456, payload)
    raw = encode(frame)
    assert decode(raw) == (frame, len(raw))


def test_oversize_payload_and_seq_are_refused():
    """encode refuses a payload over MAX_PAYLOAD and a seq beyond 32 bits, naming the limit."""
    with pytest.raises(ValueError, match="4096"):
        encode(Frame(MsgType.DATA, 0, b"x" * (MAX_PAYLOAD + 1)))
    with pytest.raises(ValueError, match="32 bits"):
        encode(Frame(MsgType.DATA, 2**32, b""))


GOOD = encode(Frame(MsgType.DATA, 42, b"hello meter"))


@pytest.mark.parametrize("cut", [0, 1, 2, 5, HEADER_LEN - 1, HEADER_LEN, len(GOOD) - 1])
def test_truncated_frame_needs_more(cut):
    """A frame cut anywhere returns (None, 0): nothing consumed, read more."""
    assert decode(GOOD[:cut]) == (None, 0)


def _flip(raw: bytes, byte_index: int) -> bytes:
    b = bytearray(raw)
    b[byte_index] ^= 0x04
    return bytes(b)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("bad-version", _flip(GOOD, 2)),
        ("bad-type", _flip(GOOD, 3)),
        ("bad-seq", _flip(GOOD, 6)),
        ("bad-length", _flip(GOOD, 9)),
        ("bad-header-crc", _flip(GOOD, 10)),
        ("bad-payload", _flip(GOOD, HEADER_LEN + 3)),
        ("bad-payload-crc", _flip(GOOD, len(GOOD) - 1)),
    ],
)
def test_damaged_frame_is_skipped_one_byte_at_a_time(name, raw):
    """A damaged frame never decodes: the decoder drops the SYNC byte and scans on (consumed 1)."""
    frame, used = decode(raw)
    assert frame is None and used == 1, name


def test_wrong_length_claiming_more_than_max_is_rejected_at_once():
    """A header whose LEN exceeds MAX_PAYLOAD (with a valid header CRC) is garbage, not a wait."""
    import struct

    body = struct.pack(">BBIH", 1, MsgType.DATA, 0, MAX_PAYLOAD + 1)
    raw = b"\xa5\x5a" + body + crc16_ccitt_false(body).to_bytes(2, "big")
    assert decode(raw) == (None, 1)


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"\xa5", b"\xa5\xa5\x5a", b"noise on the line\r\n", bytes(range(256)), "ÿ€©".encode()],
    ids=["nul", "half-sync", "false-sync", "ascii", "all-bytes", "non-ascii"],
)
def test_garbage_before_a_frame_is_dropped_and_the_frame_found(garbage):
    """Whatever precedes a frame, FrameReader throws it away and returns the frame intact."""
    reader = FrameReader()
    assert reader.feed(garbage + GOOD) == [decode(GOOD)[0]]
    assert reader.pending == 0


def test_trailing_half_sync_is_kept_for_the_next_read():
    """A lone 0xA5 at the end of garbage is kept: it may start the next frame."""
    assert decode(b"junk\xa5") == (None, 4)


def test_byte_by_byte_feed_yields_every_frame():
    """Frames fed one byte at a time (the slowest serial read) come out whole and in order."""
    frames = [Frame(MsgType.DATA, i * 10, bytes([i]) * i) for i in range(20)]
    reader = FrameReader()
    out: list[Frame] = []
    for byte in b"".join(encode(f) for f in frames):
        out += reader.feed(bytes([byte]))
    assert out == frames


@pytest.mark.parametrize("seed", range(10))
def test_random_noise_and_damage_never_yield_a_wrong_frame(seed):
    """Good frames among random noise and damaged copies: every frame out is one that was sent intact."""
    rng = random.Random(seed)
    sent = [Frame(MsgType.DATA, i, rng.randbytes(rng.randrange(0, 300))) for i in range(50)]
    stream = bytearray()
    intact: list[Frame] = []
    for f in sent:
        stream += rng.randbytes(rng.randrange(0, 30))
        raw = bytearray(encode(f))
        if rng.random() < 0.3:
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        else:
            intact.append(f)
        stream += raw
    reader = FrameReader()
    out: list[Frame] = []
    for i in range(0, len(stream), 97):
        out += reader.feed(bytes(stream[i : i + 97]))
    assert [f for f in out if f in sent] == out
    assert all(f in out for f in intact)
