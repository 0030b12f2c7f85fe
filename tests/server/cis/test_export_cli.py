"""`curbstop export`, run as a real subprocess: records written as files twice carry the same ids; a bad
--format or --since is refused naming the option."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from server.audit.models import AuditEvent  # noqa: F401  (every model known to the metadata)
from server.results.models import CisExportRecord
from tests.server.test_cli import run


def test_export_writes_each_message_once_by_id_and_refuses_bad_options(empty_database_url, tmp_path):
    """Two staged records export to JSON twice with the same ids; --format xml and a bad --since exit 2."""
    assert run(["migrate"], empty_database_url, tmp_path).returncode == 0
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with Session(engine) as session:
            staged_at = dt.datetime(2026, 12, 2, 18, tzinfo=dt.UTC)
            session.add_all(
                CisExportRecord(
                    record_id=f"read-{i}",
                    message="MeterReadings",
                    source_type="meter_read",
                    source_id=i,
                    payload={"mRID": f"read-{i}", "value": 1100.0 + i},
                    staged_at=staged_at,
                )
                for i in (1, 2)
            )
            session.commit()
    finally:
        engine.dispose()
    ids = []
    for out in ("a", "b"):
        result = run(["export", "--since", "2026-12-01", "--format", "json", "--out", str(tmp_path / out)],
                     empty_database_url, tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 record(s)" in result.stdout
        (path,) = (tmp_path / out).glob("MeterReadings-*.json")
        ids.append([r["record_id"] for r in json.loads(path.read_text())["records"]])
    assert ids == [["read-1", "read-2"], ["read-1", "read-2"]]
    later = run(
        ["export", "--since", "2026-12-03", "--out", str(tmp_path / "c")], empty_database_url, tmp_path
    )
    assert later.returncode == 0 and "0 record(s)" in later.stdout
    bad = run(["export", "--since", "2026-12-01", "--format", "xml"], empty_database_url, tmp_path)
    assert bad.returncode == 2 and "--format" in bad.stderr
    bad = run(["export", "--since", "yesterday"], empty_database_url, tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr
