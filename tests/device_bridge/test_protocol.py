"""Protocol state machines with no I/O: driven frame by frame or over the virtual-time line."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from contracts.handheld import encode_lines
from device_bridge.frames import Frame, MsgType
from device_bridge.protocol import (
    BulkReceiver,
    BulkSender,
    ClearReads,
    DeviceInfo,
    DeviceSession,
    DeviceStore,
    Identified,
    InstallRoutes,
    ReadsReceived,
    Resumed,
    RoutesLoaded,
    RoutesNeeded,
    SendState,
    SessionDone,
    SessionLost,
    StationSession,
    StationState,
    Timing,
    TransferKind,
    control,
    parse_body,
    sha256_hex,
)
from device_bridge.sample import sample_reads, sample_routes
from device_bridge.virtual_link import Faults, VirtualLink

BAUD = 115_200
TURNAROUND_S = 0.016
TIMING = Timing.for_link(BAUD, TURNAROUND_S)
ROUTES = encode_lines(sample_routes(120))
READS = encode_lines(sample_reads("HH1", sample_routes(80)))


@dataclass
class Dock:
    """A station and a device joined by a virtual line, with the I/O layers played in memory."""

    link: VirtualLink
    station: StationSession
    device: DeviceSession
    store: DeviceStore
    routes: bytes | None = ROUTES
    auto_store: bool = True
    stored: list[bytes] = field(default_factory=list)
    installed: list[bytes] = field(default_factory=list)
    events: list[object] = field(default_factory=list)

    def pump(self) -> bool:
        """Play the I/O layers for pending events; True once a session is done."""
        for e in self.station.take_events():
            self.events.append(e)
            if isinstance(e, ReadsReceived) and self.auto_store:
                self.stored.append(e.data)
                self.station.reads_stored(e.sha256, self.link.now)
            elif isinstance(e, RoutesNeeded):
                self.station.load_routes(self.routes, self.link.now)
        for e in self.device.take_events():
            if isinstance(e, ClearReads):
                self.store.reads = b""
                self.device.reads_cleared(e.sha256)
            elif isinstance(e, InstallRoutes):
                self.installed.append(e.data)
                self.device.routes_installed(e.sha256)
        return any(isinstance(e, SessionDone) for e in self.events)

    def run(self, limit_s: float = 120.0) -> float:
        """Run until the session is done; return virtual seconds."""
        return self.link.run_until(self.pump, limit_s=limit_s)


def make_dock(
    *, reads: bytes = READS, to_device: Faults | None = None, to_station: Faults | None = None, seed: int = 0
) -> Dock:
    station = StationSession(TIMING, {}, lambda: 1_800_000_000_000)
    store = DeviceStore(DeviceInfo("HH1", model="t"), reads=reads)
    device = DeviceSession(store, TIMING, lambda: 1_800_000_000_000)
    link = VirtualLink(
        station,
        device,
        baud=BAUD,
        turnaround_s=TURNAROUND_S,
        to_device=to_device,
        to_station=to_station,
        seed=seed,
    )
    return Dock(link, station, device, store)


def test_a_clean_dock_unloads_clears_and_loads():
    """Identify, clock, upload, commit, clear, download, commit, bye: reads arrive and routes install whole."""
    dock = make_dock()
    dock.run()
    assert dock.stored == [READS]
    assert dock.installed == [ROUTES]
    assert dock.store.reads == b""
    assert dock.store.info.routes_sha256 == sha256_hex(ROUTES)
    assert not any(isinstance(e, SessionLost) for e in dock.events)


def test_the_sender_keeps_a_window_in_flight_not_stop_and_wait():
    """After READY the sender puts a whole window of DATA on the line before any ACK comes back."""
    sender = BulkSender(TransferKind.ROUTES, ROUTES, TIMING)
    sender.start(0.0)
    sender.take_frames()
    sender.on_frame(control(MsgType.READY, {"sha256": sender.sha256, "offset": 0}), 0.0)
    data = [f for f in sender.take_frames() if f.type is MsgType.DATA]
    assert len(data) == TIMING.window_bytes // TIMING.chunk_bytes
    assert [f.seq for f in data] == [i * TIMING.chunk_bytes for i in range(len(data))]
    sender.on_frame(Frame(MsgType.ACK, 2 * TIMING.chunk_bytes), 0.1)  # two frames confirmed
    assert [f.seq for f in sender.take_frames()] == [8000, 9000]  # the window slides by two


def test_nak_makes_the_sender_go_back_to_the_missing_offset():
    """A NAK for offset N resends from N (go-back-N); frames before N are not resent."""
    sender = BulkSender(TransferKind.ROUTES, ROUTES, TIMING)
    sender.start(0.0)
    sender.on_frame(control(MsgType.READY, {"sha256": sender.sha256, "offset": 0}), 0.0)
    sender.take_frames()
    sender.on_frame(Frame(MsgType.NAK, 3000), 0.05)
    resent = sender.take_frames()
    assert resent[0].seq == 3000 and sender.acked == 3000
    assert sender.retransmits >= 1


def test_ack_timeout_resends_from_the_last_confirmed_offset_and_then_gives_up():
    """No ACK for ack_timeout_s resends from the confirmed offset; max_retries timeouts fail the transfer."""
    sender = BulkSender(TransferKind.ROUTES, ROUTES, TIMING)
    sender.start(0.0)
    sender.on_frame(control(MsgType.READY, {"sha256": sender.sha256, "offset": 0}), 0.0)
    sender.on_frame(Frame(MsgType.ACK, 1000), 0.1)
    sender.take_frames()
    now = 0.1
    for _ in range(TIMING.max_retries):
        now += TIMING.ack_timeout_s + 0.001
        sender.on_tick(now)
        assert sender.take_frames()[0].seq == 1000
    sender.on_tick(now + TIMING.ack_timeout_s + 0.001)
    assert sender.state is SendState.FAILED and "retries" in sender.failure


def test_receiver_acks_in_order_naks_a_gap_once_and_reacks_duplicates():
    """In order: ACK the new end. Gap: one NAK for the missing offset. Duplicate: ACK what is held."""
    rx = BulkReceiver(TransferKind.ROUTES, 3000, "x" * 64, {}, TIMING)
    rx.on_frame(Frame(MsgType.DATA, 0, b"a" * 1000), 0)
    rx.on_frame(Frame(MsgType.DATA, 2000, b"c" * 1000), 0)
    rx.on_frame(Frame(MsgType.DATA, 2000, b"c" * 1000), 0)
    rx.on_frame(Frame(MsgType.DATA, 0, b"a" * 1000), 0)
    assert [(f.type, f.seq) for f in rx.take_frames()] == [
        (MsgType.ACK, 1000),
        (MsgType.NAK, 1000),
        (MsgType.ACK, 1000),
    ]


def test_receiver_resumes_from_its_partial_copy():
    """A receiver built over a partial copy answers BEGIN with READY at the offset it already holds."""
    partials = {"s" * 64: bytearray(b"z" * 5000)}
    rx = BulkReceiver(TransferKind.ROUTES, 9000, "s" * 64, partials, TIMING)
    rx.ready()
    assert parse_body(rx.take_frames()[0]) == {"sha256": "s" * 64, "offset": 5000}


def test_whole_transfer_checksum_mismatch_is_rejected_and_restarted():
    """END with bytes whose SHA-256 differs from BEGIN gets END_BAD and the copy is thrown away."""
    rx = BulkReceiver(TransferKind.ROUTES, 4, sha256_hex(b"good"), {}, TIMING)
    rx.on_frame(Frame(MsgType.DATA, 0, b"evil"), 0)
    rx.on_frame(control(MsgType.END, {}), 0)
    frames = rx.take_frames()
    assert frames[-1].type is MsgType.END_BAD and not rx.complete and rx.data == b""


def test_device_is_not_told_to_clear_until_reads_are_stored():
    """The station sends COMMIT for reads only after the I/O layer calls reads_stored."""
    dock = make_dock()
    dock.auto_store = False
    dock.link.run_until(lambda: (dock.pump(), dock.station.state is StationState.STORING)[1], limit_s=60)
    received = next(e for e in dock.events if isinstance(e, ReadsReceived))
    for _ in range(2000):  # two virtual seconds more: still no COMMIT, device still holds its reads
        dock.link.step()
        dock.pump()
    assert dock.store.reads == READS and dock.station.state is StationState.STORING
    dock.station.reads_stored(received.sha256, dock.link.now)
    dock.run()
    assert dock.store.reads == b""


@pytest.mark.parametrize("seed", range(4))
def test_dropped_and_corrupted_frames_are_retransmitted(seed):
    """With 3 % of frames dropped and 3 % bit-flipped each way, reads and routes still arrive whole, once."""
    faults = Faults(drop_prob=0.03, flip_prob=0.03)
    dock = make_dock(to_device=faults, to_station=Faults(drop_prob=0.03, flip_prob=0.03), seed=seed)
    dock.run(limit_s=600)
    assert dock.stored == [READS] and dock.installed == [ROUTES]
    assert dock.link.down.reader.discarded_bytes + dock.link.up.reader.discarded_bytes > 0


@pytest.mark.parametrize("cut_at_s", [0.5, 1.5, 3.0, 4.5, 6.0])
def test_cable_pull_mid_transfer_resumes_from_the_confirmed_offset(cut_at_s):
    """An outage mid-upload or mid-download loses the session; the next one resumes, nothing twice."""
    out = [(cut_at_s, cut_at_s + 20.0)]  # longer than the link timeout: the session is lost
    dock = make_dock(to_device=Faults(outages=out), to_station=Faults(outages=out))
    dock.run(limit_s=300)
    lost = [e for e in dock.events if isinstance(e, SessionLost)]
    assert lost, "the outage should have ended a session"
    assert dock.stored == [READS] and dock.installed == [ROUTES]
    assert len([e for e in dock.events if isinstance(e, RoutesLoaded)]) == 1


def test_resumed_download_starts_where_the_device_left_off():
    """After a pull during download the device keeps its partial copy; the new session resumes past 0."""
    out = [(4.0, 24.0)]
    dock = make_dock(to_device=Faults(outages=out), to_station=Faults(outages=out))
    dock.link.run_until(lambda: (dock.pump(), dock.link.now > 4.0)[1], limit_s=10)
    assert dock.station.state is StationState.DOWNLOADING
    dock.run(limit_s=300)
    assert dock.installed == [ROUTES]
    assert any(isinstance(e, SessionLost) for e in dock.events)
    resumed = [e for e in dock.events if isinstance(e, Resumed)]
    assert resumed and resumed[0].kind == "routes" and 0 < resumed[0].offset < len(ROUTES)
    loaded = [e for e in dock.events if isinstance(e, RoutesLoaded)]
    assert len(loaded) == 1


def test_commit_is_idempotent_on_the_device():
    """A repeated COMMIT for a batch already cleared is confirmed again, not refused."""
    store = DeviceStore(DeviceInfo("HH1"), reads=READS)
    dev = DeviceSession(store, TIMING, lambda: 0)
    sha = sha256_hex(READS)
    dev.on_frame(control(MsgType.COMMIT, {"kind": "reads", "sha256": sha}), 0)
    assert dev.take_events() == [ClearReads(sha)]
    dev.reads_cleared(sha)
    dev.on_frame(control(MsgType.COMMIT, {"kind": "reads", "sha256": sha}), 0)
    assert [f.type for f in dev.take_frames()] == [MsgType.COMMIT_OK, MsgType.COMMIT_OK]


def test_commit_of_an_incomplete_route_batch_is_refused():
    """The device installs routes only from a complete, checked transfer; otherwise COMMIT gets ERROR."""
    dev = DeviceSession(DeviceStore(DeviceInfo("HH1")), TIMING, lambda: 0)
    dev.on_frame(control(MsgType.COMMIT, {"kind": "routes", "sha256": "f" * 64}), 0)
    assert [f.type for f in dev.take_frames()] == [MsgType.ERROR]
    assert dev.take_events() == []


def test_silent_device_loses_the_session_and_the_station_polls_again():
    """When the device stops answering, the station reports SessionLost and goes back to polling."""
    station = StationSession(TIMING, {}, lambda: 0)
    station.on_tick(0.0)
    station.on_frame(control(MsgType.IDENT, DeviceInfo("HH1", reads_pending=3).to_body()), 0.1)
    now = 0.1
    while station.state is not StationState.WAITING and now < 60:
        now += 0.05
        station.on_tick(now)
    events = station.take_events()
    assert isinstance(events[-1], SessionLost) and events[-1].device_id == "HH1"
    assert station.state is StationState.WAITING


def test_no_reads_pending_skips_the_upload():
    """A device with nothing to unload goes straight to the route download."""
    dock = make_dock(reads=b"")
    dock.run()
    assert dock.stored == [] and dock.installed == [ROUTES]


def test_routes_already_installed_are_not_sent_again():
    """When IDENT reports the routes' SHA-256 the station already has, no download happens."""
    dock = make_dock()
    dock.store.info = DeviceInfo("HH1", routes_sha256=sha256_hex(ROUTES))
    dock.run()
    assert dock.installed == [] and not any(isinstance(e, RoutesLoaded) for e in dock.events)


def test_dock_again_loads_routes_the_server_could_not_give_while_the_device_stays_docked():
    """First session: no routes (server away or device not registered yet). `dock_again` starts a new
    session with the docked device (no new reads to unload) and loads the routes; without a docked device
    it does nothing."""
    dock = make_dock(reads=b"")
    dock.routes = None
    dock.run()
    assert dock.installed == [] and dock.station.state is StationState.DOCKED
    assert dock.station.dock_again(dock.link.now) is True
    dock.routes = ROUTES
    dock.events.clear()
    dock.run()
    assert dock.installed == [ROUTES] and dock.stored == []
    identified = [e for e in dock.events if isinstance(e, Identified)]
    assert len(identified) == 1 and identified[0].again  # logged as a retry, not as a new dock
    idle = make_dock(reads=b"")
    assert idle.station.dock_again(0.0) is False  # nothing docked yet
