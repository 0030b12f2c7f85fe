"""Demo hand-helds: HH-0001..HH-000N registered, reading routes built, the cycle due next assigned to them.

Everything goes through `server.handhelds.service`, the functions the API calls, so a demo device docks
exactly as one registered by a dispatcher would. Safe to run again: what exists is kept.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.handhelds import service
from server.handhelds.models import ReadingRoute, ReadingRouteStop
from server.meters.models import MeterRead

DEMO_HANDHELDS = 3
ACTOR = "demo"


def demo_device_ids(count: int = DEMO_HANDHELDS) -> list[str]:
    """HH-0001, HH-0002, ..."""
    return [f"HH-{i:04d}" for i in range(1, count + 1)]


@dataclass
class HandheldSeed:
    """The demo's hand-helds and the reading routes each one holds."""

    devices: list[str]
    routes: dict[str, list[str]] = field(default_factory=dict)  # device -> ["cycle 05 book R003", ...]
    meters: dict[str, int] = field(default_factory=dict)  # device -> meters to read
    registered: int = 0  # devices registered by this run
    assigned: int = 0  # routes assigned by this run


def _routes_by_due_cycle(
    db_session: Session, rows: list[service.RouteSummaryRow]
) -> list[service.RouteSummaryRow]:
    """Routes ordered so the cycle read longest ago (the one due next) comes first, then by book."""
    last_read = dict(
        db_session.execute(
            select(ReadingRoute.cycle, func.max(MeterRead.read_at))
            .join(ReadingRouteStop, ReadingRouteStop.route_id == ReadingRoute.id)
            .join(MeterRead, MeterRead.meter_id == ReadingRouteStop.meter_id)
            .group_by(ReadingRoute.cycle)
        ).all()
    )
    cycles = sorted(
        {r.cycle for r in rows}, key=lambda c: (last_read.get(c) is not None, last_read.get(c), c)
    )
    rank = {c: i for i, c in enumerate(cycles)}
    return sorted(rows, key=lambda r: (rank[r.cycle], r.route_code))


def _choose(ordered: list[service.RouteSummaryRow], devices: int) -> list[service.RouteSummaryRow]:
    """Every route of the cycle due next; more of the following cycles if that leaves a device without one."""
    if not ordered:
        return []
    first_cycle = ordered[0].cycle
    chosen = [r for r in ordered if r.cycle == first_cycle]
    rest = [r for r in ordered if r.cycle != first_cycle]
    while len(chosen) < devices and rest:
        chosen.append(rest.pop(0))
    return chosen


def seed_handhelds(*, db_session: Session, count: int = DEMO_HANDHELDS) -> HandheldSeed:
    """Register the demo hand-helds, build reading routes, give each device routes of the cycle due next."""
    devices = demo_device_ids(count)
    seed = HandheldSeed(devices=devices)
    for i, device_id in enumerate(devices, start=1):
        if service.find_device(db_session=db_session, device_id=device_id) is None:
            service.register_device(
                db_session=db_session, device_id=device_id, name=f"Demo hand-held {i}", actor=ACTOR
            )
            seed.registered += 1
    rows = service.route_summaries(db_session=db_session)
    if not rows:
        service.build_routes(db_session=db_session, actor=ACTOR)
        rows = service.route_summaries(db_session=db_session)
    if not any(r.device_id in devices for r in rows):
        for i, row in enumerate(_choose(_routes_by_due_cycle(db_session, rows), len(devices))):
            service.assign(
                db_session=db_session, route_id=row.id, device_id=devices[i % len(devices)], actor=ACTOR
            )
            seed.assigned += 1
        rows = service.route_summaries(db_session=db_session)
    db_session.commit()
    for row in rows:
        if row.device_id in devices:
            seed.routes.setdefault(row.device_id, []).append(f"cycle {row.cycle} book {row.route_code}")
            seed.meters[row.device_id] = seed.meters.get(row.device_id, 0) + row.meters
    return seed


def docking_instructions(
    seed: HandheldSeed, *, server_url: str, token_file: Path, var_dir: Path
) -> list[str]:
    """The exact commands that dock a demo hand-held against this server, one line each."""
    device = seed.devices[0]
    state = var_dir / "handheld-sim" / device
    spool = var_dir / "bridge" / "spool.db"
    held = ", ".join(
        f"{d} {seed.meters.get(d, 0)} meter{'' if seed.meters.get(d, 0) == 1 else 's'} ({'; '.join(seed.routes.get(d, [])) or 'no route'})"
        for d in seed.devices
    )
    if token_file.exists():
        token = f"--token-file {shlex.quote(str(token_file))}"
        mint = ""
    else:  # the token was made by an earlier run whose file is gone: tokens are shown once
        token = '--token "$CURBSTOP_STATION_TOKEN"'
        mint = (
            "  0. mint a station token (shown once): uv run curbstop create-token dock-2 --role station;"
            " export CURBSTOP_STATION_TOKEN=<it>"
        )
    lines = [
        f"Hand-helds registered with reading routes assigned: {held}.",
        "Dock one (two terminals, from this folder):",
    ]
    if mint:
        lines.append(mint)
    lines += [
        f"  1. uv run curbstop simulate-handheld --device-id {device} --state-dir {shlex.quote(str(state))}",
        f'  2. uv run curbstop bridge --port "$(cat {shlex.quote(str(state / "port"))})" --server {server_url}'
        f" {token} --spool {shlex.quote(str(spool))} --log {shlex.quote(str(var_dir / 'bridge' / 'bridge.log'))}",
        "  The first dock loads the route; the simulator reads it (about 10 s off the cradle) and docks again,",
        f"  and the station posts the reads. Reads the server refuses: uv run curbstop bridge spool list"
        f" --spool {shlex.quote(str(spool))}",
    ]
    return lines
