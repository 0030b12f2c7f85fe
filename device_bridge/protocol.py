"""Hand-held protocol state machines: no I/O, no sleeps, time comes in as a parameter.

The wire protocol is written down in docs/handheld-protocol.md. This module holds:

- `BulkSender` / `BulkReceiver`: one transfer of a byte string with a sliding window of
  ``window_bytes`` unacknowledged bytes, cumulative ACKs, NAK on a gap, go-back-N retransmission
  on NAK or on ``ack_timeout_s`` without progress, resume from the receiver's confirmed offset
  (READY carries it), and a SHA-256 over the whole transfer checked before either side commits.
- `StationSession`: the docking-station side of one dock: identify, set clock, upload reads, commit
  (only after the I/O layer reports the reads durably stored), download routes, commit, bye.
- `DeviceSession`: the hand-held side, used by the simulator (and a reference for device vendors).

Every machine is driven the same way: ``on_frame(frame, now)`` for each decoded frame and
``on_tick(now)`` every few milliseconds; ``take_frames()`` returns frames to put on the line and
``take_events()`` returns what the I/O layer must act on. ``now`` is a monotonic time in seconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from device_bridge.frames import OVERHEAD, Frame, MsgType

# --------------------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class Timing:
    """Window and timer settings for one link (see `Timing.for_link`)."""

    chunk_bytes: int = 1000  # DATA payload per frame
    window_bytes: int = 8000  # unacknowledged bytes in flight (8 frames)
    ack_timeout_s: float = 1.5  # no ACK progress for this long: go back to the last confirmed offset
    reply_timeout_s: float = 0.5  # a control request not answered in this long is sent again
    max_retries: int = 4  # consecutive timeouts without progress before the link is declared lost
    link_timeout_s: float = 3.0  # station: nothing valid heard for this long while busy = undocked
    max_transfer_bytes: int = 64 * 1024 * 1024

    @classmethod
    def for_link(
        cls,
        baud: int,
        turnaround_s: float,
        *,
        chunk_bytes: int = 1000,
        window_bytes: int = 8000,
        floor_s: float = 0.25,
        max_retries: int = 4,
    ) -> Timing:
        """Timers derived from the line rate (10 bits per byte) and the device's turnaround delay.

        Parameters
        ----------
        baud
            Line rate in bits per second.
        turnaround_s
            How long the slower end takes to answer a frame.
        floor_s
            No timer is shorter than this (covers scheduling jitter on a busy PC).
        """
        byte_s = 10.0 / baud
        frames_in_window = max(1, window_bytes // chunk_bytes)
        window_s = (window_bytes + frames_in_window * OVERHEAD) * byte_s
        round_trip_s = 2 * turnaround_s + (chunk_bytes + 2 * OVERHEAD) * byte_s
        ack_timeout = max(floor_s, 2.0 * (window_s + round_trip_s))
        # A control reply is at most ~1 KB (IDENT); allow it and two turnarounds, twice over.
        reply_timeout = max(floor_s, 2.0 * (2 * turnaround_s + 1100 * byte_s))
        return cls(
            chunk_bytes=chunk_bytes,
            window_bytes=window_bytes,
            ack_timeout_s=ack_timeout,
            reply_timeout_s=reply_timeout,
            max_retries=max_retries,
            link_timeout_s=max(ack_timeout, reply_timeout) * (max_retries + 1),
        )


# --------------------------------------------------------------------------------------------------
# Helpers


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256: the whole-transfer checksum and the transfer's identity."""
    return hashlib.sha256(data).hexdigest()


def control(mtype: MsgType, body: dict[str, Any] | None = None, seq: int = 0) -> Frame:
    """A control frame whose payload is a compact UTF-8 JSON object."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return Frame(mtype, seq, payload)


def parse_body(frame: Frame) -> dict[str, Any]:
    """The JSON object a control frame carries ({} when empty or unreadable)."""
    if not frame.payload:
        return {}
    try:
        value = json.loads(frame.payload)
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class TransferKind(StrEnum):
    """What a bulk transfer carries."""

    READS = "reads"  # device -> station, JSON Lines of ReadRecord
    ROUTES = "routes"  # station -> device, JSON Lines of RouteRecord


class _Outbox:
    def __init__(self) -> None:
        self._frames: list[Frame] = []

    def send(self, frame: Frame) -> None:
        self._frames.append(frame)

    def take_frames(self) -> list[Frame]:
        """Frames to write to the line, in order; the list is emptied."""
        frames, self._frames = self._frames, []
        return frames


# --------------------------------------------------------------------------------------------------
# Bulk transfer


class SendState(StrEnum):
    """Where a BulkSender is."""

    BEGIN = "begin"  # BEGIN sent, waiting for READY
    STREAM = "stream"  # sending DATA inside the window
    END = "end"  # all bytes acknowledged, END sent, waiting for END_OK
    DONE = "done"
    FAILED = "failed"


class BulkSender(_Outbox):
    """Send one byte string with a sliding window; see the module docstring."""

    def __init__(self, kind: TransferKind, data: bytes, timing: Timing) -> None:
        super().__init__()
        self.kind = kind
        self.data = data
        self.sha256 = sha256_hex(data)
        self.timing = timing
        self.state = SendState.BEGIN
        self.acked = 0  # every byte below this offset is confirmed held by the receiver
        self.next_offset = 0  # next byte to put on the line
        self.resumed_from = 0
        self.retransmits = 0  # DATA frames sent again (NAK or timeout)
        self.failure = ""
        self._deadline = 0.0
        self._retries = 0
        self._bad_ends = 0
        self._started = False

    @property
    def size(self) -> int:
        """Bytes in the transfer."""
        return len(self.data)

    @property
    def finished(self) -> bool:
        """True once DONE or FAILED."""
        return self.state in (SendState.DONE, SendState.FAILED)

    def start(self, now: float) -> None:
        """Announce the transfer (BEGIN)."""
        self._started = True
        self._send_begin(now)

    def _send_begin(self, now: float) -> None:
        self.send(control(MsgType.BEGIN, {"kind": self.kind.value, "size": self.size, "sha256": self.sha256}))
        self._deadline = now + self.timing.reply_timeout_s

    def _send_end(self, now: float) -> None:
        self.send(control(MsgType.END, {"sha256": self.sha256, "size": self.size}))
        self._deadline = now + self.timing.reply_timeout_s

    def _fail(self, reason: str) -> None:
        self.state = SendState.FAILED
        self.failure = reason

    def _fill_window(self, now: float) -> None:
        t = self.timing
        while self.next_offset < self.size and self.next_offset - self.acked < t.window_bytes:
            end = min(self.size, self.next_offset + t.chunk_bytes)
            self.send(Frame(MsgType.DATA, self.next_offset, self.data[self.next_offset : end]))
            self.next_offset = end
        if self.acked >= self.size:
            self.state = SendState.END
            self._send_end(now)

    def on_frame(self, frame: Frame, now: float) -> None:
        """Handle READY, ACK, NAK, END_OK and END_BAD for this transfer."""
        if self.finished:
            return
        body = parse_body(frame) if frame.type in (MsgType.READY, MsgType.END_OK, MsgType.END_BAD) else {}
        if frame.type is MsgType.READY and self.state is SendState.BEGIN:
            if body.get("sha256") != self.sha256:
                return  # a READY for some other transfer: ignore
            offset = body.get("offset", 0)
            if not isinstance(offset, int) or not 0 <= offset <= self.size:
                self._fail(f"receiver asked to resume at impossible offset {offset!r}")
                return
            self.acked = self.next_offset = self.resumed_from = offset
            self.state = SendState.STREAM
            self._retries = 0
            self._deadline = now + self.timing.ack_timeout_s
            self._fill_window(now)
        elif frame.type is MsgType.ACK and self.state is SendState.STREAM:
            if self.acked < frame.seq <= self.next_offset:
                self.acked = frame.seq
                self._retries = 0
                self._deadline = now + self.timing.ack_timeout_s  # the timer restarts on progress
                self._fill_window(now)
        elif frame.type is MsgType.NAK and self.state is SendState.STREAM:
            if self.acked <= frame.seq < self.next_offset:
                # Go back N: everything from the missing offset goes again.
                self.acked = max(self.acked, frame.seq)
                self.retransmits += (self.next_offset - frame.seq + self.timing.chunk_bytes - 1) // max(
                    1, self.timing.chunk_bytes
                )
                self.next_offset = frame.seq
                self._deadline = now + self.timing.ack_timeout_s
                self._fill_window(now)
        elif frame.type is MsgType.END_OK and self.state is SendState.END:
            if body.get("sha256") == self.sha256:
                self.state = SendState.DONE
        elif frame.type is MsgType.END_BAD and self.state is SendState.END:
            if body.get("sha256") != self.sha256:
                return
            self._bad_ends += 1
            if self._bad_ends >= 3:
                self._fail(f"receiver rejected the whole-transfer checksum 3 times: {body.get('reason', '')}")
                return
            # The receiver threw its copy away; start over from offset 0.
            self.state = SendState.BEGIN
            self.acked = self.next_offset = 0
            self._send_begin(now)

    def on_tick(self, now: float) -> None:
        """Resend what timed out; give up after max_retries timeouts without progress."""
        if self.finished or not self._started or now < self._deadline:
            return
        self._retries += 1
        if self._retries > self.timing.max_retries:
            self._fail(f"no answer from the receiver after {self.timing.max_retries} retries in {self.state}")
            return
        if self.state is SendState.BEGIN:
            self._send_begin(now)
        elif self.state is SendState.STREAM:
            self.retransmits += (self.next_offset - self.acked + self.timing.chunk_bytes - 1) // max(
                1, self.timing.chunk_bytes
            )
            self.next_offset = self.acked
            self._deadline = now + self.timing.ack_timeout_s
            self._fill_window(now)
        elif self.state is SendState.END:
            self._send_end(now)


class BulkReceiver(_Outbox):
    """Receive one byte string announced by BEGIN; resumes from a partial copy kept in `partials`.

    `partials` maps a transfer's SHA-256 to the bytes confirmed so far; the owner keeps it across
    sessions (cable pulls) so a re-dock resumes instead of starting over.
    """

    def __init__(
        self, kind: TransferKind, size: int, sha256: str, partials: dict[str, bytearray], timing: Timing
    ) -> None:
        super().__init__()
        self.kind = kind
        self.size = size
        self.sha256 = sha256
        self.timing = timing
        self._partials = partials
        self.buf = partials.setdefault(sha256, bytearray())
        if len(self.buf) > size:
            self.buf.clear()
        self.resumed_from = len(self.buf)
        self.complete = False  # END checked out: `data` is the whole transfer
        self.rejected_ends = 0
        self._nak_for: int | None = None

    @property
    def data(self) -> bytes:
        """The bytes held so far (the whole transfer once `complete`)."""
        return bytes(self.buf)

    def ready(self) -> None:
        """Answer BEGIN (also a repeated BEGIN) with the offset to resume from."""
        self.send(control(MsgType.READY, {"sha256": self.sha256, "offset": len(self.buf)}))

    def on_frame(self, frame: Frame, now: float) -> None:
        """Handle DATA and END."""
        if frame.type is MsgType.DATA:
            held = len(self.buf)
            if frame.seq == held and not self.complete:
                if held + len(frame.payload) > self.size:
                    self.send(control(MsgType.ERROR, {"reason": "DATA runs past the announced size"}))
                    return
                self.buf += frame.payload
                self._nak_for = None
                self.send(Frame(MsgType.ACK, len(self.buf)))
            elif frame.seq < held:
                self.send(Frame(MsgType.ACK, held))  # a duplicate: confirm again what we hold
            elif self._nak_for != held:
                self._nak_for = held  # one NAK per gap; the sender's timer covers a lost NAK
                self.send(Frame(MsgType.NAK, held))
        elif frame.type is MsgType.END:
            if self.complete:
                self.send(control(MsgType.END_OK, {"sha256": self.sha256}))
                return
            if len(self.buf) == self.size and sha256_hex(bytes(self.buf)) == self.sha256:
                self.complete = True
                self.send(control(MsgType.END_OK, {"sha256": self.sha256}))
            else:
                reason = (
                    f"held {len(self.buf)} of {self.size} bytes"
                    if len(self.buf) != self.size
                    else "SHA-256 of the received bytes does not match BEGIN"
                )
                self.rejected_ends += 1
                self.buf.clear()
                self._nak_for = None
                self.send(control(MsgType.END_BAD, {"sha256": self.sha256, "reason": reason}))

    def forget(self) -> None:
        """Drop the partial copy (after the transfer is committed)."""
        self._partials.pop(self.sha256, None)


# --------------------------------------------------------------------------------------------------
# Events for the I/O layer


@dataclass(frozen=True)
class DeviceInfo:
    """What a hand-held says about itself in IDENT."""

    device_id: str
    model: str = ""
    firmware: str = ""
    reads_pending: int = 0
    routes_sha256: str = ""
    clock_utc_ms: int = 0

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> DeviceInfo | None:
        """Parse an IDENT body; None when it has no usable device_id."""
        device_id = body.get("device_id")
        if not isinstance(device_id, str) or not device_id:
            return None

        def _int(name: str) -> int:
            v = body.get(name, 0)
            return v if isinstance(v, int) else 0

        def _str(name: str) -> str:
            v = body.get(name, "")
            return v if isinstance(v, str) else ""

        return cls(
            device_id=device_id,
            model=_str("model"),
            firmware=_str("firmware"),
            reads_pending=_int("reads_pending"),
            routes_sha256=_str("routes_sha256"),
            clock_utc_ms=_int("clock_utc_ms"),
        )

    def to_body(self) -> dict[str, Any]:
        """The IDENT body."""
        return {
            "device_id": self.device_id,
            "model": self.model,
            "firmware": self.firmware,
            "reads_pending": self.reads_pending,
            "routes_sha256": self.routes_sha256,
            "clock_utc_ms": self.clock_utc_ms,
        }


@dataclass(frozen=True)
class Identified:
    """A hand-held answered IDENT (`again`: a session the station started with a device already docked)."""

    device: DeviceInfo
    again: bool = False


@dataclass(frozen=True)
class Resumed:
    """A transfer picked up from a confirmed offset left by an earlier, interrupted session."""

    device_id: str
    kind: str
    offset: int
    size: int


@dataclass(frozen=True)
class ReadsReceived:
    """A read batch arrived whole and checked; store it durably, then call `reads_stored(sha256)`."""

    device_id: str
    sha256: str
    data: bytes


@dataclass(frozen=True)
class ReadsCleared:
    """The hand-held confirmed it cleared the batch."""

    device_id: str
    sha256: str


@dataclass(frozen=True)
class RoutesNeeded:
    """Fetch the routes assigned to the device, then call `load_routes(data_or_None)`."""

    device_id: str


@dataclass(frozen=True)
class RoutesLoaded:
    """The hand-held installed the route batch."""

    device_id: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SessionDone:
    """The dock finished; the device may be undocked."""

    device_id: str


@dataclass(frozen=True)
class SessionLost:
    """The link went quiet or failed mid-session; whatever was confirmed stays confirmed."""

    device_id: str
    state: str
    reason: str


@dataclass(frozen=True)
class ClearReads:
    """Device side: the station stored the batch; clear it, then call `reads_cleared(sha256)`."""

    sha256: str


@dataclass(frozen=True)
class InstallRoutes:
    """Device side: a checked route batch is committed; install it whole, then call `routes_installed`."""

    sha256: str
    data: bytes


@dataclass(frozen=True)
class ClockSet:
    """Device side: the station set the clock."""

    utc_ms: int


StationEvent = (
    Identified
    | Resumed
    | ReadsReceived
    | ReadsCleared
    | RoutesNeeded
    | RoutesLoaded
    | SessionDone
    | SessionLost
)
DeviceEvent = ClearReads | InstallRoutes | ClockSet


# --------------------------------------------------------------------------------------------------
# Station side


class StationState(StrEnum):
    """Where a docking-station session is."""

    WAITING = "waiting"  # polling IDENT_REQ; nothing docked
    CLOCK = "clock"
    UPLOAD_REQ = "upload_req"  # asked for reads, waiting for BEGIN
    UPLOADING = "uploading"
    STORING = "storing"  # I/O layer is writing the batch to the spool
    COMMIT_READS = "commit_reads"
    ROUTES_WAIT = "routes_wait"  # I/O layer is fetching routes from the server
    DOWNLOADING = "downloading"
    COMMIT_ROUTES = "commit_routes"
    BYE = "bye"
    DOCKED = "docked"  # session done; polling slowly until the device goes away or has new reads


class StationSession(_Outbox):
    """Docking-station side of the protocol for one port.

    Parameters
    ----------
    timing
        Timers and window for the link.
    partials
        Partial uploads by SHA-256, kept by the caller across sessions so a re-dock resumes.
    wall_clock_ms
        Returns the station's UTC time in milliseconds, sent in SET_CLOCK.
    """

    _BUSY = frozenset(
        {
            StationState.CLOCK,
            StationState.UPLOAD_REQ,
            StationState.UPLOADING,
            StationState.COMMIT_READS,
            StationState.DOWNLOADING,
            StationState.COMMIT_ROUTES,
            StationState.BYE,
        }
    )

    def __init__(
        self, timing: Timing, partials: dict[str, bytearray], wall_clock_ms: Callable[[], int]
    ) -> None:
        super().__init__()
        self.timing = timing
        self.partials = partials
        self._wall_clock_ms = wall_clock_ms
        self.state = StationState.WAITING
        self.device: DeviceInfo | None = None
        self.receiver: BulkReceiver | None = None
        self.sender: BulkSender | None = None
        self._events: list[StationEvent] = []
        self._deadline = 0.0
        self._retries = 0
        self._last_heard = 0.0
        self._reads_sha = ""
        self._docked_misses = 0
        self._again = False  # dock_again asked for a new session with the docked device

    # -- driving ------------------------------------------------------------------------------------

    def take_events(self) -> list[StationEvent]:
        """Events for the I/O layer, in order; the list is emptied."""
        events, self._events = self._events, []
        return events

    @property
    def device_id(self) -> str:
        """The docked device's id, or '' when none."""
        return self.device.device_id if self.device else ""

    def progress(self) -> tuple[str, int, int]:
        """(what, bytes done, bytes total) for a progress bar."""
        if self.state is StationState.UPLOADING and self.receiver:
            return ("upload", len(self.receiver.buf), self.receiver.size)
        if self.state is StationState.DOWNLOADING and self.sender:
            return ("download", self.sender.acked, self.sender.size)
        return (self.state.value, 0, 0)

    def _request(self, frame: Frame, now: float) -> None:
        self.send(frame)
        self._deadline = now + self.timing.reply_timeout_s

    def _go(self, state: StationState, now: float) -> None:
        self.state = state
        self._retries = 0
        if state is StationState.CLOCK:
            self._request(control(MsgType.SET_CLOCK, {"utc_ms": self._wall_clock_ms()}), now)
        elif state is StationState.UPLOAD_REQ:
            self._request(control(MsgType.UPLOAD_REQ), now)
        elif state is StationState.COMMIT_READS:
            self._request(control(MsgType.COMMIT, {"kind": "reads", "sha256": self._reads_sha}), now)
        elif state is StationState.ROUTES_WAIT:
            self._events.append(RoutesNeeded(self.device_id))
        elif state is StationState.COMMIT_ROUTES and self.sender:
            self._request(control(MsgType.COMMIT, {"kind": "routes", "sha256": self.sender.sha256}), now)
        elif state is StationState.BYE:
            self._request(control(MsgType.BYE), now)
        elif state in (StationState.WAITING, StationState.DOCKED):
            self._request(control(MsgType.IDENT_REQ), now)

    def _lost(self, reason: str) -> None:
        self._events.append(SessionLost(self.device_id, self.state.value, reason))
        self.state = StationState.WAITING
        self.receiver = None
        self.sender = None
        self.device = None
        self._again = False
        self._deadline = 0.0  # poll again at once

    # -- calls from the I/O layer -------------------------------------------------------------------

    def reads_stored(self, sha256: str, now: float) -> None:
        """The I/O layer has committed batch `sha256` to durable storage: the device may clear it."""
        if self.state is StationState.STORING and sha256 == self._reads_sha:
            if self.receiver:
                self.receiver.forget()
            self._last_heard = now
            self._go(StationState.COMMIT_READS, now)

    def load_routes(self, data: bytes | None, now: float) -> None:
        """Routes for the device (JSON Lines), or None to skip the download this time."""
        if self.state is not StationState.ROUTES_WAIT or self.device is None:
            return
        self._last_heard = now
        if data is None or sha256_hex(data) == self.device.routes_sha256:
            self._go(StationState.BYE, now)
            return
        self.sender = BulkSender(TransferKind.ROUTES, data, self.timing)
        self.state = StationState.DOWNLOADING
        self.sender.start(now)
        self._pump_sender()

    def dock_again(self, now: float) -> bool:
        """Start a new session with the device still docked (to load routes the server could not give before).

        Returns False when no device is docked and idle.
        """
        if self.state is not StationState.DOCKED or self.device is None:
            return False
        self._again = True
        self._request(control(MsgType.IDENT_REQ), now)
        return True

    def abort(self, reason: str) -> None:
        """End the session from the I/O layer (e.g. the batch failed validation)."""
        self._lost(reason)

    # -- frames and time ----------------------------------------------------------------------------

    def _pump_sender(self) -> None:
        if self.sender:
            for f in self.sender.take_frames():
                self.send(f)

    def _pump_receiver(self) -> None:
        if self.receiver:
            for f in self.receiver.take_frames():
                self.send(f)

    def on_frame(self, frame: Frame, now: float) -> None:
        """Handle one frame from the device."""
        t = frame.type
        if t is MsgType.IDENT:
            info = DeviceInfo.from_body(parse_body(frame))
            if info is None:
                return
            if self.state is StationState.WAITING:
                self._last_heard = now
                self.device = info
                self._events.append(Identified(info))
                self._go(StationState.CLOCK, now)
            elif self.state is StationState.DOCKED:
                self._last_heard = now
                self._docked_misses = 0
                again = self._again and info.device_id == self.device_id
                if info.device_id != self.device_id or info.reads_pending > 0 or again:
                    self.device = info  # a new device, new reads, or dock_again: a new session
                    self._again = False
                    self._events.append(Identified(info, again=again and info.reads_pending == 0))
                    self._go(StationState.CLOCK, now)
            return
        if self.state is StationState.WAITING or self.state is StationState.DOCKED:
            return  # stale frames from an earlier session
        self._last_heard = now
        body = parse_body(frame) if t not in (MsgType.DATA, MsgType.ACK, MsgType.NAK) else {}
        if t is MsgType.ERROR:
            self._lost(f"device reported an error: {body.get('reason', '')}")
        elif t is MsgType.CLOCK_OK and self.state is StationState.CLOCK:
            assert self.device is not None
            self._go(
                StationState.UPLOAD_REQ if self.device.reads_pending > 0 else StationState.ROUTES_WAIT, now
            )
        elif t is MsgType.BEGIN and self.state in (StationState.UPLOAD_REQ, StationState.UPLOADING):
            kind, size, sha = body.get("kind"), body.get("size"), body.get("sha256")
            if kind != TransferKind.READS or not isinstance(size, int) or not isinstance(sha, str):
                self._lost(f"device announced an unexpected transfer: {body!r}")
                return
            if size > self.timing.max_transfer_bytes:
                self._lost(f"device announced {size} bytes; the limit is {self.timing.max_transfer_bytes}")
                return
            if self.receiver is None or self.receiver.sha256 != sha:
                self.receiver = BulkReceiver(TransferKind.READS, size, sha, self.partials, self.timing)
                if self.receiver.resumed_from:
                    self._events.append(Resumed(self.device_id, "reads", self.receiver.resumed_from, size))
            self.state = StationState.UPLOADING
            self.receiver.ready()
            self._pump_receiver()
        elif t in (MsgType.DATA, MsgType.END) and self.state is StationState.UPLOADING and self.receiver:
            self.receiver.on_frame(frame, now)
            self._pump_receiver()
            if self.receiver.complete:
                self._reads_sha = self.receiver.sha256
                self.state = StationState.STORING
                self._events.append(ReadsReceived(self.device_id, self.receiver.sha256, self.receiver.data))
        elif t is MsgType.END and self.state is not StationState.UPLOADING and self.receiver:
            # END repeated because our END_OK was lost: confirm again.
            self.receiver.on_frame(frame, now)
            self._pump_receiver()
        elif t is MsgType.COMMIT_OK and self.state is StationState.COMMIT_READS:
            if body.get("sha256") == self._reads_sha:
                self._events.append(ReadsCleared(self.device_id, self._reads_sha))
                self.receiver = None
                self._go(StationState.ROUTES_WAIT, now)
        elif self.state is StationState.DOWNLOADING and self.sender:
            was_waiting = self.sender.state is SendState.BEGIN
            self.sender.on_frame(frame, now)
            if was_waiting and self.sender.state is not SendState.BEGIN and self.sender.resumed_from:
                self._events.append(
                    Resumed(self.device_id, "routes", self.sender.resumed_from, self.sender.size)
                )
            self._pump_sender()
            self._after_sender(now)
        elif t is MsgType.COMMIT_OK and self.state is StationState.COMMIT_ROUTES and self.sender:
            if body.get("sha256") == self.sender.sha256:
                self._events.append(RoutesLoaded(self.device_id, self.sender.sha256, self.sender.size))
                self._go(StationState.BYE, now)
        elif t is MsgType.BYE_OK and self.state is StationState.BYE:
            self._finish(now)

    def _finish(self, now: float) -> None:
        self._events.append(SessionDone(self.device_id))
        self.sender = None
        self.receiver = None
        self.state = StationState.DOCKED
        self._docked_misses = 0
        self._deadline = now + self.timing.reply_timeout_s

    def _after_sender(self, now: float) -> None:
        assert self.sender is not None
        if self.sender.state is SendState.DONE:
            self._go(StationState.COMMIT_ROUTES, now)
        elif self.sender.state is SendState.FAILED:
            self._lost(f"route download failed: {self.sender.failure}")

    def on_tick(self, now: float) -> None:
        """Drive timers."""
        if self.state is StationState.WAITING:
            if now >= self._deadline:
                self._request(control(MsgType.IDENT_REQ), now)
            return
        if self.state is StationState.DOCKED:
            if now >= self._deadline:
                self._docked_misses += 1
                if self._docked_misses > self.timing.max_retries:
                    # The device stopped answering: it was undocked.
                    self.device = None
                    self.state = StationState.WAITING
                self._request(control(MsgType.IDENT_REQ), now)
            return
        if self.state in self._BUSY and now - self._last_heard > self.timing.link_timeout_s:
            self._lost(f"nothing heard from the device for {self.timing.link_timeout_s:.1f} s")
            return
        if self.state is StationState.DOWNLOADING and self.sender:
            self.sender.on_tick(now)
            self._pump_sender()
            self._after_sender(now)
            return
        if self.state in (StationState.UPLOADING, StationState.STORING, StationState.ROUTES_WAIT):
            return  # the device drives an upload; the I/O layer drives the waits
        if now >= self._deadline:
            self._retries += 1
            if self._retries > self.timing.max_retries:
                if self.state is StationState.BYE:
                    self._finish(now)  # everything is committed; a lost BYE_OK does not matter
                else:
                    self._lost(f"no answer in {self.state.value} after {self.timing.max_retries} retries")
                return
            retry_state = self.state
            retries = self._retries
            self._go(retry_state, now)
            self._retries = retries


# --------------------------------------------------------------------------------------------------
# Device side


@dataclass
class DeviceStore:
    """What the device machine needs to know about the hand-held's storage (the I/O layer keeps it)."""

    info: DeviceInfo
    reads: bytes = b""  # JSON Lines batch of reads not yet cleared
    cleared: set[str] = field(default_factory=set)  # SHA-256 of batches already cleared
    partials: dict[str, bytearray] = field(default_factory=dict)


class DeviceSession(_Outbox):
    """Hand-held side of the protocol; the device only answers, the station leads."""

    def __init__(self, store: DeviceStore, timing: Timing, clock_utc_ms: Callable[[], int]) -> None:
        super().__init__()
        self.store = store
        self.timing = timing
        self._clock_utc_ms = clock_utc_ms
        self.sender: BulkSender | None = None
        self.receiver: BulkReceiver | None = None
        self._events: list[DeviceEvent] = []
        self._pending_commit: Frame | None = None

    def take_events(self) -> list[DeviceEvent]:
        """Events for the I/O layer, in order; the list is emptied."""
        events, self._events = self._events, []
        return events

    def _pump(self) -> None:
        for m in (self.sender, self.receiver):
            if m is not None:
                for f in m.take_frames():
                    self.send(f)

    def ident(self) -> DeviceInfo:
        """The IDENT this device sends now."""
        i = self.store.info
        pending = sum(1 for line in self.store.reads.split(b"\n") if line.strip())
        return DeviceInfo(
            device_id=i.device_id,
            model=i.model,
            firmware=i.firmware,
            reads_pending=pending,
            routes_sha256=i.routes_sha256,
            clock_utc_ms=self._clock_utc_ms(),
        )

    def reads_cleared(self, sha256: str) -> None:
        """The I/O layer cleared batch `sha256` from device storage."""
        self.store.cleared.add(sha256)
        if self.store.reads and sha256_hex(self.store.reads) == sha256:
            self.store.reads = b""
        self.sender = None
        self.send(control(MsgType.COMMIT_OK, {"kind": "reads", "sha256": sha256}))

    def routes_installed(self, sha256: str) -> None:
        """The I/O layer installed route batch `sha256` (atomically, whole)."""
        i = self.store.info
        self.store.info = DeviceInfo(i.device_id, i.model, i.firmware, 0, sha256, 0)
        if self.receiver is not None:
            self.receiver.forget()
            self.receiver = None
        self.send(control(MsgType.COMMIT_OK, {"kind": "routes", "sha256": sha256}))

    def on_frame(self, frame: Frame, now: float) -> None:
        """Answer one frame from the station."""
        t = frame.type
        if t is MsgType.IDENT_REQ:
            self.sender = None  # a new session: whatever we were doing is abandoned
            self.send(control(MsgType.IDENT, self.ident().to_body()))
        elif t is MsgType.SET_CLOCK:
            utc_ms = parse_body(frame).get("utc_ms")
            if isinstance(utc_ms, int):
                skew = self._clock_utc_ms() - utc_ms
                self._events.append(ClockSet(utc_ms))
                self.send(control(MsgType.CLOCK_OK, {"skew_ms": skew}))
        elif t is MsgType.UPLOAD_REQ:
            if self.sender is None or self.sender.finished or self.sender.data != self.store.reads:
                self.sender = BulkSender(TransferKind.READS, self.store.reads, self.timing)
            self.sender.start(now)
        elif t in (MsgType.READY, MsgType.ACK, MsgType.NAK, MsgType.END_OK, MsgType.END_BAD):
            if self.sender is not None:
                self.sender.on_frame(frame, now)
        elif t is MsgType.BEGIN:
            body = parse_body(frame)
            kind, size, sha = body.get("kind"), body.get("size"), body.get("sha256")
            if kind != TransferKind.ROUTES or not isinstance(size, int) or not isinstance(sha, str):
                self.send(control(MsgType.ERROR, {"reason": f"cannot receive {body!r}"}))
            elif size > self.timing.max_transfer_bytes:
                self.send(control(MsgType.ERROR, {"reason": f"{size} bytes will not fit"}))
            else:
                if self.receiver is None or self.receiver.sha256 != sha:
                    self.receiver = BulkReceiver(
                        TransferKind.ROUTES, size, sha, self.store.partials, self.timing
                    )
                self.receiver.ready()
        elif t in (MsgType.DATA, MsgType.END):
            if self.receiver is not None:
                self.receiver.on_frame(frame, now)
        elif t is MsgType.COMMIT:
            self._on_commit(parse_body(frame))
        elif t is MsgType.BYE:
            self.sender = None
            self.send(control(MsgType.BYE_OK))
        self._pump()

    def _on_commit(self, body: dict[str, Any]) -> None:
        kind, sha = body.get("kind"), body.get("sha256")
        if not isinstance(sha, str):
            self.send(control(MsgType.ERROR, {"reason": "COMMIT without sha256"}))
        elif kind == TransferKind.READS:
            if sha in self.store.cleared:
                self.send(
                    control(MsgType.COMMIT_OK, {"kind": "reads", "sha256": sha})
                )  # said before; say again
            elif self.store.reads and sha256_hex(self.store.reads) == sha:
                self._events.append(ClearReads(sha))
            else:
                self.send(control(MsgType.ERROR, {"reason": f"no read batch {sha[:12]} to clear"}))
        elif kind == TransferKind.ROUTES:
            if self.store.info.routes_sha256 == sha:
                self.send(control(MsgType.COMMIT_OK, {"kind": "routes", "sha256": sha}))
            elif self.receiver is not None and self.receiver.sha256 == sha and self.receiver.complete:
                self._events.append(InstallRoutes(sha, self.receiver.data))
            else:
                self.send(control(MsgType.ERROR, {"reason": f"route batch {sha[:12]} is not complete"}))
        else:
            self.send(control(MsgType.ERROR, {"reason": f"cannot commit {kind!r}"}))

    def on_tick(self, now: float) -> None:
        """Drive the upload sender's timers."""
        if self.sender is not None:
            self.sender.on_tick(now)
            if self.sender.state is SendState.FAILED:
                self.sender = None
        self._pump()
