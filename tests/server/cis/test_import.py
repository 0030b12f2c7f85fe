"""CIS import: atomic, idempotent, and every bad row reported by file, line and field."""

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from server.accounts.models import Account, Balance, Customer, MoveRequest, Payment, ServicePoint
from server.cis.importer import ImportRejected, find_files, import_files
from server.meters.models import Meter, MeterRead

ZONE = ZoneInfo("America/Los_Angeles")

GOOD = {
    "service_points.csv": "service_point_id,address,lat,lon,hazards\n"
    "SP1,1 Oak St,38.5,-121.4,dog\nSP2,2 Oak St,38.6,-121.5,\n",
    "accounts.csv": "account_number,customer_id,customer_name,service_point_id,status,occupied\n"
    "A1,C1,Ann Lee,SP1,active,yes\nA2,C2,Bo Chan,SP2,shut_off,no\n",
    "meters.csv": "serial,service_point_id,size,dials,multiplier,unit\nM1,SP1,5/8,6,1,gal\nM2,SP2,1,5,10,cf\n",
    "reads.csv": "meter_serial,read_at,reading\nM1,2026-10-01T08:00:00-07:00,1000\n"
    "M1,2026-11-01T08:00:00,1450.5\nM2,2026-11-01T09:00:00Z,77\n",
    "balances.csv": "account_number,balance,past_due,oldest_past_due_date\nA1,123.45,100.00,2026-08-01\n",
    "payments.csv": "payment_id,account_number,amount,paid_at\nP1,A1,50.00,2026-11-02T10:00:00Z\n",
    "move_requests.csv": "request_id,service_point_id,kind,requested_date\nR1,SP2,move_in,2026-11-25\n",
}


def write(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return find_files(tmp_path, ZONE)


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_good_extract_imports_everything(db_session, tmp_path):
    """A valid extract lands whole, with money in cents and local times converted to UTC."""
    result = import_files(db_session, write(tmp_path, GOOD), zone=ZONE)
    assert result.rows["reads.csv"] == 3
    assert (
        count(db_session, Account) == 2
        and count(db_session, Customer) == 2
        and count(db_session, MeterRead) == 3
    )
    balance = db_session.scalar(select(Balance))
    assert balance.balance_cents == 12345 and balance.past_due_cents == 10000
    assert db_session.scalar(select(Payment.amount_cents)) == 5000
    # 08:00 local (no offset) in November is PST, UTC-8.
    local = db_session.scalar(select(MeterRead).where(MeterRead.reading == 1450.5))
    assert local.read_at.hour == 16
    sp = db_session.scalar(select(ServicePoint).where(ServicePoint.cis_service_point_id == "SP1"))
    assert sp.hazards == ["dog"]
    assert db_session.scalar(select(MoveRequest.kind)) == "move_in"


def test_reimport_is_idempotent_and_updates(db_session, tmp_path):
    """Importing the same extract twice adds nothing; a changed value is updated in place."""
    paths = write(tmp_path, GOOD)
    import_files(db_session, paths, zone=ZONE)
    import_files(db_session, paths, zone=ZONE)
    assert count(db_session, MeterRead) == 3 and count(db_session, Account) == 2
    changed = dict(GOOD)
    changed["balances.csv"] = "account_number,balance\nA1,0.00\n"
    import_files(db_session, write(tmp_path, changed), zone=ZONE)
    assert db_session.scalar(select(Balance.balance_cents)) == 0
    assert count(db_session, Balance) == 1


def test_bad_extract_lists_every_problem_and_applies_nothing(db_session, tmp_path):
    """Several bad rows across files: each is reported with file, line and field; no row of any file lands."""
    bad = dict(GOOD)
    bad["meters.csv"] = "serial,service_point_id,size,dials\nM1,SP1,5/8,6\nM2,SP2,7/8,6\nM3,SP1,1,twelve\n"
    bad["payments.csv"] = "payment_id,account_number,amount,paid_at\nP1,A1,50.001,2026-11-02T10:00:00Z\n"
    bad["balances.csv"] = "account_number,balance\nA1,\n"
    with pytest.raises(ImportRejected) as caught:
        import_files(db_session, write(tmp_path, bad), zone=ZONE)
    messages = [str(i) for i in caught.value.issues]
    assert "meters.csv:3: size: '7/8' is not one of" in messages[0] or any(
        m.startswith("meters.csv:3: size:") for m in messages
    )
    assert any(m.startswith("meters.csv:4: dials: 'twelve' is not a whole number") for m in messages)
    assert any(m.startswith("payments.csv:2: amount:") and "fractions of a cent" in m for m in messages)
    assert any(m == "balances.csv:2: balance: is required" for m in messages)
    assert len(messages) == 4
    for model in (ServicePoint, Account, Meter, MeterRead, Payment):
        assert count(db_session, model) == 0


def test_unknown_reference_is_rejected(db_session, tmp_path):
    """A read for a meter that is neither in the extract nor the database is refused, naming the value."""
    bad = dict(GOOD)
    bad["reads.csv"] = GOOD["reads.csv"] + "M9,2026-11-01T09:00:00Z,5\n"
    with pytest.raises(ImportRejected) as caught:
        import_files(db_session, write(tmp_path, bad), zone=ZONE)
    assert [str(i) for i in caught.value.issues] == [
        "reads.csv:5: meter_serial: 'M9' is not in meters.csv or the database"
    ]
    assert count(db_session, MeterRead) == 0


def test_reference_to_previous_import_is_accepted(db_session, tmp_path):
    """A later extract may refer to rows imported earlier."""
    import_files(db_session, write(tmp_path, GOOD), zone=ZONE)
    later = tmp_path / "later"
    later.mkdir()
    paths = write(later, {"reads.csv": "meter_serial,read_at,reading\nM1,2026-12-01T08:00:00Z,1500\n"})
    import_files(db_session, paths, zone=ZONE)
    assert count(db_session, MeterRead) == 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "service_points.csv:1: the file is empty"),
        (b"service_point_id,address,lat\nSP1,x,1\n", "service_points.csv:1: lon: required column is missing"),
        (
            b"service_point_id,address,lat,lon,colour\nSP1,x,1,2,red\n",
            "service_points.csv:1: colour: unknown column",
        ),
        (
            b"service_point_id,address,lat,lon\nSP1,x,1\n",
            "service_points.csv:2: has 3 fields, the header has 4",
        ),
        (
            b"service_point_id,address,lat,lon\nSP1,x,1,2\nSP1,y,1,2\n",
            "service_points.csv:3: service_point_id: duplicate of line 2",
        ),
        (b"service_point_id,address,lat,lon\nSP1,x,91,2\n", "service_points.csv:2: lat: 91 is outside"),
        (b"service_point_id,address,lat,lon\nSP1,\xff\xfe,1,2\n", "service_points.csv:2: not UTF-8 text"),
        (b'service_point_id,address,lat,lon\nSP1,"unterminated,1,2\n', "service_points.csv"),
        (
            b"service_point_id,address,lat,lon,hazards\nSP1,x,1,2,Big Dog\n",
            "hazards: 'Big Dog' is not a lower-case",
        ),
    ],
    ids=[
        "empty",
        "missing-column",
        "unknown-column",
        "short-row",
        "duplicate-key",
        "out-of-range",
        "not-utf8",
        "unterminated-quote",
        "bad-hazard",
    ],
)
def test_malformed_files_name_the_problem(db_session, tmp_path, content, expected):
    """Malformed CSV is refused with a message naming file, line and field."""
    (tmp_path / "service_points.csv").write_bytes(content)
    with pytest.raises(ImportRejected) as caught:
        import_files(db_session, find_files(tmp_path, ZONE), zone=ZONE)
    assert any(str(i).startswith(expected) or expected in str(i) for i in caught.value.issues), (
        caught.value.issues
    )
    assert count(db_session, ServicePoint) == 0


def test_no_files_is_an_error(db_session, tmp_path):
    """An empty directory is an error, not a silent success."""
    with pytest.raises(ImportRejected, match="no CIS files"):
        import_files(db_session, find_files(tmp_path, ZONE), zone=ZONE)


def test_layout_documentation_is_current():
    """docs/cis-import.md holds exactly the layouts the parser uses (regenerate: python -m server.cis.docs)."""
    from server.cis.docs import DOC, render

    text = DOC.read_text()
    assert render(text) == text


def test_bulk_copy_path_gives_the_same_result(db_session, tmp_path, monkeypatch):
    """With every batch forced through PostgreSQL's COPY path, import, re-import and update behave the same."""
    from server.cis import importer

    monkeypatch.setattr(importer, "COPY_THRESHOLD", 1)
    paths = write(tmp_path, GOOD)
    import_files(db_session, paths, zone=ZONE)
    import_files(db_session, paths, zone=ZONE)
    assert count(db_session, MeterRead) == 3 and count(db_session, ServicePoint) == 2
    sp = db_session.scalar(select(ServicePoint).where(ServicePoint.cis_service_point_id == "SP1"))
    db_session.refresh(sp)
    assert sp.hazards == ["dog"]
    local = db_session.scalar(select(MeterRead).where(MeterRead.reading == 1450.5))
    assert local.read_at.hour == 16
    changed = {"reads.csv": "meter_serial,read_at,reading\nM1,2026-11-01T08:00:00,1460\n"}
    import_files(db_session, write(tmp_path / ".." / tmp_path.name, changed), zone=ZONE)
    assert count(db_session, MeterRead) == 3
    db_session.expire_all()
    assert db_session.scalar(select(MeterRead.reading).where(MeterRead.id == local.id)) == 1460


def test_a_large_postgresql_import_is_vacuumed_after_its_commit(fresh_engine, tmp_path, monkeypatch):
    """After a bulk load the import runs VACUUM (ANALYZE) outside its transaction, so the next order
    generation does not pay for the new rows' hint bits and visibility map on its first scan."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from server.cis import importer

    if fresh_engine.dialect.name != "postgresql":
        pytest.skip("VACUUM is PostgreSQL maintenance")
    monkeypatch.setattr(importer, "MAINTAIN_AFTER_ROWS", 1)
    with Session(fresh_engine) as session:
        import_files(session, write(tmp_path, GOOD), zone=ZONE)
    with fresh_engine.connect() as conn:
        visible = conn.scalar(text("SELECT relallvisible FROM pg_class WHERE relname = 'meter_reads'"))
        assert visible and visible > 0  # only VACUUM sets the visibility map
        assert conn.scalar(text("SELECT count(*) FROM meter_reads")) == 3
