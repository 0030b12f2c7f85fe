"""One intake for reads: limits that agree with validation, human reasons, one unit convention for every
source, duplicates, unknown meters, and rereads that confirm or correct."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from sqlalchemy import func, select

from contracts.codes import OrderType, ReadSource, Role
from contracts.couch import OrderDoc
from mobile.core.reading import check_reading
from server.handhelds.models import ReadingRoute
from server.meters.intake import ReadIn, ReadingForm, ReadIntakeError, expected_reads, intake_reads
from server.meters.models import MeterRead
from server.orders import generation
from server.orders.models import WorkOrder
from server.orders.policy import current_policy
from server.orders.rules.base import Rule
from server.sync import service as sync
from tests.server.meters.conftest import monthly

UTC = dt.UTC
ZONE = dt.UTC


def seasonal(now: dt.datetime, *, first: float = 100_000.0) -> list[tuple[dt.datetime, float]]:
    """Three years of reads about 30 days apart up to 20 days before `now`: 3,000 a month in `now`'s
    calendar month of earlier years, 12,000 in every other month. The seasonal norm of a read taken
    now is 3,000; the mean of the last twelve intervals is about 11,000 (what the old limits used)."""
    times = [now - dt.timedelta(days=20 + 30 * k) for k in range(36)][::-1]
    out = [(times[0], first)]
    reading = first
    for at in times[1:]:
        reading += 3000 if at.month == now.month else 12000
        out.append((at, reading))
    return out


def _rereads(db_session, meter_id: int) -> list[WorkOrder]:
    return list(
        db_session.scalars(
            select(WorkOrder).where(WorkOrder.meter_id == meter_id, WorkOrder.order_type == "reread")
        )
    )


def _take(db_session, meter, reading: float, at: dt.datetime, source=ReadSource.FIELD, **kw):
    return intake_reads(
        db_session=db_session,
        reads=[ReadIn(meter_id=meter.id, read_at=at, reading=reading, **kw)],
        source=source,
        actor="test",
        zone=ZONE,
    )


# ---- limits agree with validation ----------------------------------------------------------------


def test_reading_inside_the_tablets_range_raises_no_reread(db_session, metered, make_technician):
    """The tablet's expected range comes from the classifier's own norm (the seasonal one, not the mean of
    the last twelve intervals): a reading the tablet accepts without a second entry is not "high" on the
    server, and raises no reread (it looped before)."""
    at = dt.datetime(2026, 11, 5, 17, tzinfo=UTC)
    meter = metered(seasonal(at), dials=7)
    tech = make_technician()
    order = WorkOrder(
        order_type="turn_on",
        priority="restore",
        service_point_id=meter.service_point_id,
        meter_id=meter.id,
        technician_id=tech.id,
        status="dispatched",
        planned_arrival_at=at,
        idempotency_key=f"t-{uuid.uuid4().hex}",
    )
    db_session.add(order)
    db_session.flush()
    facts = OrderDoc.from_couch(sync.order_document(db_session=db_session, order=order, tech=tech)).meters[0]
    last = facts.last_read
    assert last is not None and facts.expected_low is not None and facts.expected_high is not None
    # Seasonal norm 3,000: 40% and 250% of it on from the last read.
    assert (facts.expected_low, facts.expected_high) == (last + 1200, last + 7500)
    mid = (facts.expected_low + facts.expected_high) // 2
    check = check_reading(f"{mid:.0f}", "", facts)
    assert check.accepted and not check.needs_confirmation
    rid = uuid.uuid4().hex
    doc = {
        "doc_type": "result",
        "result_id": rid,
        "order_id": str(order.id),
        "outcome": "completed",
        "csfr_id": tech.code,
        "device_id": "tab-1",
        "completed_at": at.isoformat(),
        "fields": {"curb_stop_position": "open"},
        "readings": [{"meter_id": facts.meter_id, "value": check.value, "read_at": at.isoformat()}],
    }
    outcome = sync._ingest_result(db_session, f"result:{order.id}:{rid}", doc, tech, "sync:test")
    assert outcome.startswith(f"order {order.id}"), outcome
    read = db_session.scalar(select(MeterRead).where(MeterRead.source == "field"))
    assert read is not None and read.reading == mid and read.validation == "ok", read.validation_reason
    assert _rereads(db_session, meter.id) == []


def test_handheld_read_at_the_midpoint_of_its_limits_is_not_high(
    client, login, station_headers, db_session, metered
):
    """The limits in a hand-held's route record are the classifier's: a read at their midpoint is in range
    (it was flagged "high" when the limits came from the recent mean and validation from the seasonal norm)."""
    now = dt.datetime.now(UTC)
    meter = metered(seasonal(now), dials=7)
    from server.accounts.models import Account, ServicePoint

    sp = db_session.get(ServicePoint, meter.service_point_id)
    sp.route = "R1"
    for account in db_session.scalars(select(Account).where(Account.service_point_id == sp.id)):
        account.billing_cycle = "01"
    db_session.flush()
    office = login(Role.DISPATCHER)
    assert client.post("/api/handhelds/routes/build", headers=office).status_code == 200
    route = db_session.scalar(select(ReadingRoute).where(ReadingRoute.route_code == "R1"))
    assert (
        client.post("/api/handhelds/devices", json={"device_id": "HH-9"}, headers=office).status_code == 201
    )
    assigned = client.post(
        f"/api/handhelds/routes/{route.id}/assign", json={"device_id": "HH-9"}, headers=office
    )
    assert assigned.status_code == 200, assigned.text
    records = client.get("/api/handhelds/devices/HH-9/routes", headers=station_headers).json()
    record = next(r for r in records if r["meter_serial"] == meter.serial)
    low, high, previous = record["low_limit"], record["high_limit"], record["previous_read"]
    assert (low - previous, high - previous) == (1200, 7500)
    read = {
        "device_id": "HH-9",
        "reader_id": "r1",
        "route_id": "R1",
        "cycle": "01",
        "sequence": record["sequence"],
        "account": record["account"],
        "service_point_id": record["service_point_id"],
        "meter_serial": meter.serial,
        "reading": (low + high) // 2,
        "read_at": now.isoformat(),
    }
    resp = client.post(
        "/api/handhelds/uploads", json={"device_id": "HH-9", "reads": [read]}, headers=station_headers
    )
    assert resp.json() == {"accepted": 1, "duplicates": 0}
    stored = db_session.scalar(select(MeterRead).where(MeterRead.source == "handheld"))
    assert stored.validation == "ok", stored.validation_reason
    assert _rereads(db_session, meter.id) == []


def _random_history(rng: random.Random, at: dt.datetime) -> tuple[list[tuple[dt.datetime, float]], int, int]:
    """A register's history of 1-40 reads with seasonal, flat, zero and irregular uses."""
    decimals = rng.choice((0, 1, 2))
    dials = rng.choice((5, 6, 7)) + decimals
    n = rng.randint(1, 40)
    base = rng.choice((30.0, 400.0, 3000.0, 9000.0)) / 10**decimals
    times = [at - dt.timedelta(days=rng.randint(3, 25) + 30 * k) for k in range(n)][::-1]
    reading = round(rng.uniform(0, 10 ** (dials - decimals) / 20), decimals)
    out = [(times[0], reading)]
    for t in times[1:]:
        shape = rng.random()
        use = 0.0 if shape < 0.08 else base * (2.5 if t.month in (6, 7, 8) else 1.0) * rng.uniform(0.6, 1.4)
        reading = round(reading + use, decimals)
        out.append((t, reading))
    return out, dials, decimals


@pytest.mark.parametrize("seed", range(6))
def test_any_reading_inside_the_limits_never_needs_a_reread(db_session, metered, seed):
    """Property over many histories (through the real derivation and intake): the limits' ends and
    points between them never need a reread; one register step outside either end does."""
    rng = random.Random(seed)
    for case in range(6):
        at = dt.datetime(2026, rng.randint(1, 12), rng.randint(1, 28), 18, tzinfo=UTC)
        history, dials, decimals = _random_history(rng, at)
        meter = metered(history, dials=dials, decimals=decimals, occupied=rng.random() < 0.7)
        expected = expected_reads(db_session=db_session, meter_ids=[meter.id], at=at)[meter.id]
        step = 10.0**-decimals
        inside, outside = [], []
        if expected.low is not None:
            inside.append(expected.low)
            outside.append(round(expected.low - step, decimals))
        if expected.high is not None:
            inside += [expected.high, round((expected.low + expected.high) / 2, decimals)]  # type: ignore[operator]
            outside.append(round(expected.high + step, decimals))
        for value, wanted in [(v, False) for v in inside] + [(v, True) for v in outside if v >= 0]:
            savepoint = db_session.begin_nested()
            try:
                result = _take(db_session, meter, value, at)
                (outcome,) = result.outcomes
                needs = outcome.validation not in ("ok", "rollover", "first")
                assert needs is wanted, (seed, case, value, expected, outcome)
                assert (result.rereads_raised > 0) is wanted
            finally:
                savepoint.rollback()


# ---- reasons a person can read -------------------------------------------------------------------


def test_reread_reasons_name_the_reading_with_units_never_a_database_id(db_session, metered):
    """The reason on a reread says which reading, in the register's units, its date, and the use and norm
    with units; the daily run words it the same way (one formatter), and the key stays reread:read:<id>."""
    at = dt.datetime(2026, 11, 5, 17, tzinfo=UTC)
    meter = metered(seasonal(at), dials=7, decimals=1)
    last = float(db_session.scalar(select(func.max(MeterRead.reading)).where(MeterRead.meter_id == meter.id)))
    result = _take(db_session, meter, last + 15051.5, at)
    (order,) = _rereads(db_session, meter.id)
    read_id = result.outcomes[0].read_id
    assert order.idempotency_key == f"reread:read:{read_id}"
    assert order.reason.startswith(f"reading {last + 15051.5:,.1f} gal of 2026-11-05: ")
    assert "use 15,051.5 gal is over 4 times the seasonal norm of 3,000.0 gal" in order.reason
    assert f"read {read_id}" not in order.reason
    # The daily run's rule words the same read the same way.
    db_session.delete(order)
    db_session.flush()
    run = generation.run(
        db_session,
        policy=current_policy(),
        run_date=at.date(),
        zone=ZONE,
        rules=[Rule.REREAD],
        dry_run=True,
    )
    (decision,) = [
        a.decision for a in run.applied if a.decision.order and a.decision.order.meter_id == meter.id
    ]
    assert decision.reason == order.reason


# ---- one unit convention for every source --------------------------------------------------------


def test_every_source_lands_a_read_in_the_same_units(
    db_session, metered, client, login, station_headers, make_technician, tmp_path
):
    """On a meter with one decimal, a CIS row (1234.5), a hand-held record (digits 12356) and a tablet
    reading typed as the register shows it (1240.7) are stored as displayed values, decimals applied."""
    from server.accounts.models import ServicePoint
    from server.cis.importer import import_files

    meter = metered(dials=6, decimals=1, serial="DEC-1")
    (tmp_path / "reads.csv").write_text(
        "meter_serial,read_at,reading\nDEC-1,2026-10-01T16:00:00Z,1234.5\n", encoding="utf-8"
    )
    import_files(db_session, [tmp_path / "reads.csv"], zone=dt.UTC, actor="test")
    office = login(Role.DISPATCHER)
    client.post("/api/handhelds/devices", json={"device_id": "HH-7"}, headers=office)
    sp = db_session.get(ServicePoint, meter.service_point_id)
    handheld = {
        "device_id": "HH-7",
        "reader_id": "r",
        "route_id": "R",
        "cycle": "01",
        "sequence": 1,
        "account": "A",
        "service_point_id": sp.cis_service_point_id,
        "meter_serial": "DEC-1",
        "reading": 12356,
        "read_at": "2026-10-05T16:00:00Z",
    }
    resp = client.post(
        "/api/handhelds/uploads", json={"device_id": "HH-7", "reads": [handheld]}, headers=station_headers
    )
    assert resp.status_code == 200, resp.text
    tech = make_technician()
    order = WorkOrder(
        order_type="turn_off",
        priority="restore",
        service_point_id=meter.service_point_id,
        meter_id=meter.id,
        technician_id=tech.id,
        status="dispatched",
        idempotency_key=f"t-{uuid.uuid4().hex}",
    )
    db_session.add(order)
    db_session.flush()
    facts = OrderDoc.from_couch(sync.order_document(db_session=db_session, order=order, tech=tech)).meters[0]
    assert facts.decimals == 1 and facts.last_read == 1235.6
    assert [r.value for r in facts.last_reads] == [1235.6, 1234.5]
    typed = check_reading("1240.7", "1240.7", facts)
    assert typed.accepted and typed.value == 1240.7
    rid = uuid.uuid4().hex
    doc = {
        "doc_type": "result",
        "result_id": rid,
        "order_id": str(order.id),
        "outcome": "completed",
        "csfr_id": tech.code,
        "device_id": "tab-1",
        "completed_at": "2026-10-09T17:00:00Z",
        "fields": {"curb_stop_position": "closed"},
        "readings": [{"meter_id": str(meter.id), "value": typed.value, "read_at": "2026-10-09T17:00:00Z"}],
    }
    assert sync._ingest_result(db_session, f"result:{order.id}:{rid}", doc, tech, "sync:t").startswith(
        "order"
    )
    rows = db_session.execute(
        select(MeterRead.source, MeterRead.reading, MeterRead.use)
        .where(MeterRead.meter_id == meter.id)
        .order_by(MeterRead.read_at)
    ).all()
    assert [(s, r) for s, r, _u in rows] == [("cis", 1234.5), ("handheld", 1235.6), ("field", 1240.7)]
    assert [round(u, 1) if u is not None else None for _s, _r, u in rows] == [None, 1.1, 5.1]


def test_a_reading_with_more_decimals_than_the_register_is_refused(db_session, metered):
    """A value the register cannot show is an error naming the read; nothing is stored."""
    meter = metered(dials=6, decimals=1)
    with pytest.raises(ReadIntakeError, match=r"readings\[0\]: reading 12.34 has more decimal places"):
        intake_reads(
            db_session=db_session,
            reads=[
                ReadIn(
                    meter_id=meter.id,
                    read_at=dt.datetime(2026, 10, 1, tzinfo=UTC),
                    reading=12.34,
                    ref="readings[0]",
                )
            ],
            source=ReadSource.FIELD,
            actor="t",
        )
    assert db_session.scalar(select(func.count()).select_from(MeterRead)) == 0


def test_the_same_read_from_two_sources_is_stored_once(db_session, metered):
    """The same meter, register, time and reading from a tablet and then a hand-held is one read; the
    second is reported as a duplicate of the first."""
    meter = metered(monthly(dt.datetime(2026, 1, 5, 16, tzinfo=UTC), [100] * 8))
    at = dt.datetime(2026, 10, 1, 16, tzinfo=UTC)
    first = _take(db_session, meter, 1900, at)
    again = intake_reads(
        db_session=db_session,
        reads=[ReadIn(meter_serial=meter.serial, read_at=at, reading=1900, idempotency_key="hh-1")],
        source=ReadSource.HANDHELD,
        actor="t",
    )
    assert [o.status for o in again.outcomes] == ["duplicate"]
    assert again.outcomes[0].read_id == first.outcomes[0].read_id
    assert db_session.scalar(select(func.count()).where(MeterRead.read_at == at)) == 1


def test_a_tablet_reading_for_an_unknown_meter_is_kept_for_review(db_session, metered, make_technician):
    """A result whose reading names a meter the server does not know is not skipped silently: its
    outcome says which reading and meter, the order is left as it was, and nothing is stored."""
    meter = metered()
    tech = make_technician()
    order = WorkOrder(
        order_type="turn_on",
        priority="restore",
        service_point_id=meter.service_point_id,
        meter_id=meter.id,
        technician_id=tech.id,
        status="dispatched",
        idempotency_key=f"t-{uuid.uuid4().hex}",
    )
    db_session.add(order)
    db_session.flush()
    rid = uuid.uuid4().hex
    doc = {
        "doc_type": "result",
        "result_id": rid,
        "order_id": str(order.id),
        "outcome": "completed",
        "csfr_id": tech.code,
        "device_id": "tab-1",
        "completed_at": "2026-10-09T17:00:00Z",
        "fields": {"curb_stop_position": "open"},
        "readings": [{"meter_id": "999999", "value": 10, "read_at": "2026-10-09T17:00:00Z"}],
    }
    outcome = sync._ingest_result(db_session, f"result:{order.id}:{rid}", doc, tech, "sync:t")
    assert outcome == "kept for review: readings[0]: unknown meter id 999999"
    assert order.status == "dispatched"
    assert db_session.scalar(select(func.count()).select_from(MeterRead)) == 0


# ---- rereads that confirm or correct -------------------------------------------------------------


def _questioned(db_session, metered):
    """A meter whose latest read is high (use 15,000 against a norm of 1,000) and the reread it raised."""
    at = dt.datetime(2026, 11, 5, 17, tzinfo=UTC)
    meter = metered(monthly(dt.datetime(2024, 1, 5, 16, tzinfo=UTC), [1000] * 33), dials=7)
    last = float(db_session.scalar(select(func.max(MeterRead.reading)).where(MeterRead.meter_id == meter.id)))
    result = _take(db_session, meter, last + 15000, at)
    questioned = db_session.get(MeterRead, result.outcomes[0].read_id)
    assert questioned.validation == "very_high"
    (order,) = _rereads(db_session, meter.id)
    return meter, questioned, order, at


def test_a_reread_that_confirms_closes_the_exception(db_session, metered):
    """A reread three days later, the register a little further on (the high use goes on), confirms the
    read in question: it is marked confirmed, the reread is kept beside it, and no new reread is raised
    (before, the reread itself was classified: zero or low use for three days, a new reread, a loop)."""
    meter, questioned, order, at = _questioned(db_session, metered)
    later = at + dt.timedelta(days=3)
    result = _take(db_session, meter, float(questioned.reading) + 1200, later, order_id=order.id)
    (outcome,) = result.outcomes
    reread = db_session.get(MeterRead, outcome.read_id)
    assert result.confirmed_read_ids == [questioned.id] and result.rereads_raised == 0
    assert reread.confirms_read_id == questioned.id and reread.validation == "confirms"
    db_session.refresh(questioned)
    assert questioned.validation == "confirmed" and questioned.superseded_by_id is None
    assert result.answered_order_ids == [order.id]
    assert len(_rereads(db_session, meter.id)) == 1
    # The daily run sees the confirmed read as the latest and raises nothing new either.
    run = generation.run(
        db_session, policy=current_policy(), run_date=later.date(), zone=ZONE, rules=[Rule.REREAD]
    )
    assert run.counts.get("reread", {}).get("create", 0) == 0
    assert len(_rereads(db_session, meter.id)) == 1


def test_a_reread_that_corrects_replaces_the_read_for_billing(db_session, metered):
    """A reread whose register is behind the read in question (a slipped digit) corrects it: the reread
    replaces it on the register's chain (its use counts from the read before), both stay on record, and
    the correction raises no reread of its own."""
    meter, questioned, order, at = _questioned(db_session, metered)
    before = db_session.get(MeterRead, questioned.prev_read_id)
    later = at + dt.timedelta(days=2)
    result = _take(db_session, meter, float(before.reading) + 1100, later, order_id=order.id)
    reread = db_session.get(MeterRead, result.outcomes[0].read_id)
    db_session.refresh(questioned)
    assert result.corrected_read_ids == [questioned.id] and result.rereads_raised == 0
    assert questioned.superseded_by_id == reread.id and questioned.validation == "superseded"
    assert reread.corrects_read_id == questioned.id and reread.prev_read_id == before.id
    assert reread.use == 1100 and reread.validation == "ok"
    assert "corrects the reading" in reread.validation_reason
    assert db_session.scalar(select(func.count()).where(MeterRead.meter_id == meter.id)) == 36
    run = generation.run(
        db_session, policy=current_policy(), run_date=later.date(), zone=ZONE, rules=[Rule.REREAD]
    )
    assert run.counts.get("reread", {}).get("create", 0) == 0


def test_a_reread_far_beyond_the_expected_use_corrects_and_never_loops(db_session, metered):
    """A reread much further on than the expected use (the read in question was too low) corrects it; it
    may classify high for the record, but a reread's reading never raises another reread."""
    meter, questioned, order, at = _questioned(db_session, metered)
    result = _take(
        db_session, meter, float(questioned.reading) + 90_000, at + dt.timedelta(days=1), order_id=order.id
    )
    assert result.corrected_read_ids == [questioned.id] and result.rereads_raised == 0
    assert result.outcomes[0].validation == "very_high"
    assert len(_rereads(db_session, meter.id)) == 1
    assert order.order_type == OrderType.REREAD.value


def test_a_handheld_reread_answers_the_open_reread_order(db_session, metered, client, login, station_headers):
    """A hand-held read typed as a reread answers the meter's open reread order: it confirms the read in
    question, and the order (nothing left to do there) is cancelled through the lifecycle with the reason."""
    meter, questioned, order, at = _questioned(db_session, metered)
    client.post("/api/handhelds/devices", json={"device_id": "HH-3"}, headers=login(Role.DISPATCHER))
    read = {
        "device_id": "HH-3",
        "reader_id": "r",
        "route_id": "R",
        "cycle": "01",
        "sequence": 1,
        "account": "A",
        "service_point_id": "SP",
        "meter_serial": meter.serial,
        "reading": int(questioned.reading) + 400,
        "read_at": (at + dt.timedelta(days=1)).isoformat(),
        "read_type": "reread",
    }
    resp = client.post(
        "/api/handhelds/uploads", json={"device_id": "HH-3", "reads": [read]}, headers=station_headers
    )
    assert resp.json() == {"accepted": 1, "duplicates": 0}
    db_session.refresh(questioned)
    db_session.refresh(order)
    assert questioned.validation == "confirmed"
    assert order.status == "cancelled" and "answered by a handheld reread" in order.status_reason
    assert len(_rereads(db_session, meter.id)) == 1


def test_a_cis_extract_sending_back_a_read_already_held_marks_it_a_duplicate(db_session, metered, tmp_path):
    """The CIS import's bulk path applies the intake's duplicate rule: a read the CIS sends back that we
    already hold (same meter, register, time and reading, from a hand-held) is kept as its duplicate,
    off the chain, never billed twice."""
    from server.cis.importer import import_files

    metered(dials=6, decimals=1, serial="DUP-1")
    at = dt.datetime(2026, 10, 1, 16, tzinfo=UTC)
    held = intake_reads(
        db_session=db_session,
        reads=[
            ReadIn(
                meter_serial="DUP-1", read_at=at, reading=12345, form=ReadingForm.DIGITS, idempotency_key="k1"
            )
        ],
        source=ReadSource.HANDHELD,
        actor="t",
    )
    (tmp_path / "reads.csv").write_text(
        "meter_serial,read_at,reading\nDUP-1,2026-10-01T16:00:00Z,1234.5\nDUP-1,2026-11-01T16:00:00Z,1240.0\n",
        encoding="utf-8",
    )
    result = import_files(db_session, [tmp_path / "reads.csv"], zone=dt.UTC, actor="test")
    assert result.duplicates == 1
    echo = db_session.scalar(select(MeterRead).where(MeterRead.source == "cis", MeterRead.read_at == at))
    assert echo.duplicate_of_id == held.outcomes[0].read_id and echo.validation == "duplicate"
    later = db_session.scalar(select(MeterRead).where(MeterRead.source == "cis", MeterRead.read_at > at))
    assert later.prev_read_id == held.outcomes[0].read_id and round(later.use, 1) == 5.5
