"""A serial line simulated in virtual time, for protocol tests and the line-efficiency benchmark.

No I/O and no sleeps: two protocol machines exchange real encoded bytes over a modelled full-duplex
line (10 bits per byte: start, 8 data, stop) and the clock jumps from event to event. The hand-held end
answers after a turnaround delay, as a real device's firmware does. Faults (dropped or bit-flipped
frames, outages that model a pulled cable) come from a seeded RNG so a failing run can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from device_bridge.frames import Frame, FrameReader, encode

BITS_PER_BYTE = 10  # 8N1: one start bit, eight data bits, one stop bit


class Endpoint(Protocol):
    """What the link drives: any protocol machine."""

    def on_frame(self, frame: Frame, now: float) -> None: ...
    def on_tick(self, now: float) -> None: ...
    def take_frames(self) -> list[Frame]: ...


@dataclass
class PacedLine:
    """One direction of a serial line: bytes go out one after another at the baud rate."""

    baud: int
    free_at: float = 0.0  # when the transmitter finishes what it already holds
    bytes_sent: int = 0

    def transmit(self, nbytes: int, at: float) -> float:
        """Queue `nbytes` at time `at`; return when the last byte arrives at the far end."""
        start = max(at, self.free_at)
        self.free_at = start + nbytes * BITS_PER_BYTE / self.baud
        self.bytes_sent += nbytes
        return self.free_at


@dataclass
class Faults:
    """Fault injection for one direction of the virtual line."""

    drop_prob: float = 0.0  # a frame vanishes
    flip_prob: float = 0.0  # one bit of a frame is flipped
    outages: list[tuple[float, float]] = field(default_factory=list)  # [start, end) times: cable out


@dataclass
class _Direction:
    line: PacedLine
    reader: FrameReader
    faults: Faults
    in_flight: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival time, bytes)


class VirtualLink:
    """Join a station-side and a device-side machine with a simulated line.

    Parameters
    ----------
    station, device
        The two machines.
    baud
        Line rate in bits per second (both directions).
    turnaround_s
        Delay before the device's frames start out (its firmware's response time).
    seed
        Seeds the fault RNG.
    """

    def __init__(
        self,
        station: Endpoint,
        device: Endpoint,
        *,
        baud: int,
        turnaround_s: float,
        to_device: Faults | None = None,
        to_station: Faults | None = None,
        seed: int = 0,
        tick_s: float = 0.001,
    ) -> None:
        self.station = station
        self.device = device
        self.turnaround_s = turnaround_s
        self.tick_s = tick_s
        self.now = 0.0
        self.rng = random.Random(seed)
        self.down = _Direction(PacedLine(baud), FrameReader(), to_device or Faults())
        self.up = _Direction(PacedLine(baud), FrameReader(), to_station or Faults())

    def _emit(self, direction: _Direction, frames: list[Frame], at: float) -> None:
        for frame in frames:
            raw = bytearray(encode(frame))
            f = direction.faults
            arrival = direction.line.transmit(len(raw), at)
            if any(a <= arrival < b for a, b in f.outages):
                continue
            if f.drop_prob and self.rng.random() < f.drop_prob:
                continue
            if f.flip_prob and self.rng.random() < f.flip_prob:
                bit = self.rng.randrange(len(raw) * 8)
                raw[bit // 8] ^= 1 << (bit % 8)
            direction.in_flight.append((arrival, bytes(raw)))

    def _deliver(self, direction: _Direction, target: Endpoint) -> None:
        due = [chunk for t, chunk in direction.in_flight if t <= self.now + 1e-12]
        if not due:
            return
        direction.in_flight = [(t, c) for t, c in direction.in_flight if t > self.now + 1e-12]
        for chunk in due:
            for frame in direction.reader.feed(chunk):
                target.on_frame(frame, self.now)

    def step(self) -> None:
        """Advance to the next arrival or tick and let both machines act."""
        pending = [t for d in (self.down, self.up) for t, _ in d.in_flight]
        nxt = self.now + self.tick_s
        if pending:
            nxt = min(nxt, min(pending))
        self.now = max(self.now, nxt)
        self._deliver(self.down, self.device)
        self._deliver(self.up, self.station)
        self.station.on_tick(self.now)
        self.device.on_tick(self.now)
        self._emit(self.down, self.station.take_frames(), self.now)
        self._emit(self.up, self.device.take_frames(), self.now + self.turnaround_s)

    def run_until(self, done: Callable[[], bool], *, limit_s: float) -> float:
        """Step until `done()` or `limit_s` of virtual time; return the virtual time reached."""
        while not done() and self.now < limit_s:
            self.step()
        return self.now
