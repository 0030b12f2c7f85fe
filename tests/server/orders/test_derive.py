"""Reads derived at arrival (server/meters/derive.py), on SQLite and PostgreSQL: the stored use, rollover,
seasonal norm and history equal the pure functions on the same reads; a late read corrects the reads after
it; a policy change re-derives everything; duplicates stay out."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from server.meters.derive import derive_pending, pending_registers
from server.meters.models import MeterRead
from server.orders.policy import load_policy
from server.orders.rules.reads import interval_use

ZONE = ZoneInfo("America/Los_Angeles")
POLICY = load_policy()


def when(year: int, month: int, day: int = 14) -> dt.datetime:
    return dt.datetime(year, month, day, 10, tzinfo=ZONE)


def add_reads(db_session, meter, readings: list[tuple[dt.datetime, float]], **kw) -> list[MeterRead]:
    rows = [MeterRead(meter_id=meter.id, read_at=t, reading=r, source="cis", **kw) for t, r in readings]
    db_session.add_all(rows)
    db_session.flush()
    return rows


def expected(rows: list[MeterRead], *, dials: int, decimals: int, policy=POLICY) -> dict[int, dict]:
    """The derivation, read by read, with the pure functions (the reference the SQL must equal)."""
    p = policy.reads
    ordered = sorted((r for r in rows if r.duplicate_of_id is None), key=lambda r: (r.read_at, r.id))
    out: dict[int, dict] = {}
    uses: list[tuple[dt.datetime, float | None]] = []
    for i, r in enumerate(ordered):
        prev = ordered[i - 1] if i else None
        use, rolled = (None, False)
        if prev is not None:
            use, rolled = interval_use(
                float(prev.reading),
                float(r.reading),
                dials=dials,
                decimals=decimals,
                max_fraction=p.rollover_max_fraction,
            )
        at = r.read_at.astimezone(dt.UTC)
        same = [
            u
            for t, u in uses
            if u is not None
            and u >= 0
            and t.month == at.month
            and at.year - p.history_years <= t.year < at.year
        ]
        usable_before = [u for _t, u in uses if u is not None and u >= 0]
        recent = [u for _t, u in uses[-12:] if u is not None and u >= 0]
        out[r.id] = {
            "prev_read_id": prev.id if prev else None,
            "use": use,
            "rolled": rolled,
            "norm": sum(same) / len(same) if same else None,
            "norm_count": len(same),
            "history_count": len(usable_before),
            "recent_mean": sum(recent) / len(recent) if recent else None,
        }
        uses.append((at, use))
    return out


def stored(db_session, rows: list[MeterRead]) -> dict[int, dict]:
    db_session.expire_all()
    out = {}
    for r in rows:
        read = db_session.get(MeterRead, r.id)
        assert read.derived, f"read {r.id} was left underived"
        out[r.id] = {
            "prev_read_id": read.prev_read_id,
            "use": read.use,
            "rolled": read.rolled,
            "norm": read.norm,
            "norm_count": read.norm_count,
            "history_count": read.history_count,
            "recent_mean": read.recent_mean,
        }
    return out


def assert_same(got: dict[int, dict], want: dict[int, dict]) -> None:
    assert got.keys() == want.keys()
    for rid in want:
        for key, value in want[rid].items():
            if isinstance(value, float):
                assert got[rid][key] == pytest.approx(value), (rid, key)
            else:
                assert got[rid][key] == value, (rid, key)


def readings_with_rollovers(top: float, start: float, uses: list[float]) -> list[tuple[dt.datetime, float]]:
    """Monthly reads from January 2023 (the register wraps at `top`)."""
    out = []
    reading = start
    y, m = 2023, 1
    for i in range(len(uses) + 1):
        if i:
            reading = round((reading + uses[i - 1]) % top, 4)
        out.append((when(y, m), reading))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@pytest.mark.parametrize("dials,decimals", [(4, 0), (5, 1), (6, 0), (7, 2)])
def test_derivation_equals_the_pure_functions(db_session, make_meter, dials, decimals):
    """Three years of reads with several rollovers on 4- to 7-dial registers, and one read that went
    backwards with nothing to explain it."""
    top = 10**dials / 10**decimals
    meter = make_meter(dials=dials, decimals=decimals, multiplier=10)
    uses = [top * f for f in (0.11, 0.12, 0.3, 0.09, 0.2, 0.15) * 6]
    readings = readings_with_rollovers(top, top * 0.8, uses)
    # A backwards read no rollover explains (more than half the register back).
    t, r = readings[20]
    readings[20] = (t, round((r - top * 0.6) % top, 4))
    rows = add_reads(db_session, meter, readings)
    assert derive_pending(db_session, POLICY) == len(rows)
    want = expected(rows, dials=dials, decimals=decimals)
    assert_same(stored(db_session, rows), want)
    assert any(v["rolled"] for v in want.values())
    assert any(v["use"] is not None and v["use"] < 0 for v in want.values())
    assert any(v["norm_count"] == 2 for v in want.values())
    # Nothing left to do: a second call writes nothing.
    assert derive_pending(db_session, POLICY) == 0 and pending_registers(db_session) == 0


def test_a_late_read_corrects_the_reads_after_it(db_session, make_meter):
    meter = make_meter(dials=6)
    rows = add_reads(db_session, meter, [(when(2026, m), 1000.0 + 100 * m) for m in (1, 2, 4, 5)])
    derive_pending(db_session, POLICY)
    april = rows[2]
    assert stored(db_session, rows)[april.id]["use"] == pytest.approx(200.0)
    # March arrives after April and May were derived.
    late = add_reads(db_session, meter, [(when(2026, 3), 1300.0)])
    derive_pending(db_session, POLICY)
    everything = rows + late
    got = stored(db_session, everything)
    assert got[april.id]["prev_read_id"] == late[0].id and got[april.id]["use"] == pytest.approx(100.0)
    assert got[april.id]["history_count"] == 2  # February and March (January is the first read)
    assert_same(got, expected(everything, dials=6, decimals=0))


def test_a_duplicate_is_left_out_of_its_neighbours(db_session, make_meter):
    meter = make_meter(dials=6)
    rows = add_reads(db_session, meter, [(when(2026, m), 1000.0 + 100 * m) for m in (1, 2, 3)])
    dup = MeterRead(
        meter_id=meter.id,
        read_at=when(2026, 2, 15),
        reading=5.0,
        source="handheld",
        duplicate_of_id=rows[1].id,
    )
    db_session.add(dup)
    db_session.flush()
    derive_pending(db_session, POLICY)
    got = stored(db_session, rows)
    assert got[rows[2].id]["prev_read_id"] == rows[1].id and got[rows[2].id]["use"] == pytest.approx(100.0)
    db_session.refresh(dup)
    assert dup.derived and dup.use is None and dup.prev_read_id is None


def test_a_changed_reading_is_derived_again(db_session, make_meter):
    meter = make_meter(dials=6)
    rows = add_reads(db_session, meter, [(when(2026, m), 1000.0 + 100 * m) for m in (1, 2, 3)])
    derive_pending(db_session, POLICY)
    # The CIS sends February again with a corrected value (the importer's upsert clears `derived`).
    rows[1].reading = 1150.0
    rows[1].derived = False
    db_session.flush()
    derive_pending(db_session, POLICY)
    got = stored(db_session, rows)
    assert got[rows[1].id]["use"] == pytest.approx(50.0) and got[rows[2].id]["use"] == pytest.approx(150.0)


def test_a_policy_change_derives_every_read_again(db_session, make_meter):
    meter = make_meter(dials=6)
    readings = readings_with_rollovers(1e6, 1000.0, [100.0] * 40)
    rows = add_reads(db_session, meter, readings)
    derive_pending(db_session, POLICY)
    last = rows[-1]
    assert stored(db_session, [last])[last.id]["norm_count"] == 3
    shorter = dataclasses.replace(POLICY, reads=dataclasses.replace(POLICY.reads, history_years=1))
    assert derive_pending(db_session, shorter) == len(rows)
    assert stored(db_session, [last])[last.id]["norm_count"] == 1
    assert_same(stored(db_session, rows), expected(rows, dials=6, decimals=0, policy=shorter))
    # Back to the file's policy: derived again, once.
    assert derive_pending(db_session, POLICY) == len(rows)
    assert derive_pending(db_session, POLICY) == 0
    assert db_session.scalar(select(func.count()).where(MeterRead.derived.is_(False))) == 0
