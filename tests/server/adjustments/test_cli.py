"""`curbstop adjustments list|show|approve`, run as a real subprocess against each backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.accounts.models import Account, Customer, ServicePoint
from server.adjustments.models import Adjustment
from server.auth.service import create_user
from server.migrate import upgrade

pytestmark = pytest.mark.slow


def run(args: list[str], database_url: str, var_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "CURBSTOP_VAR_DIR": str(var_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "adjustments", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_list_show_and_approve_within_authority(empty_database_url, tmp_path):
    """A proposed $12.00 credit: `list` shows it, `show` prints its working, `approve --as` its proposer is
    refused with the reason (exit 1), a supervisor's approval goes through and is listed as approved."""
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        upgrade(engine)
        with Session(engine) as s:
            sp = ServicePoint(cis_service_point_id="SP1", address="1 Oak", lat=38.5, lon=-121.4)
            c = Customer(cis_customer_id="C1", name="Ann")
            s.add_all([sp, c])
            s.flush()
            a = Account(account_number="A1", customer_id=c.id, service_point_id=sp.id)
            s.add(a)
            s.flush()
            create_user(db_session=s, username="ann", password="pw-long-enough", role=Role.ADVISOR)
            create_user(db_session=s, username="sue", password="pw-long-enough", role=Role.SUPERVISOR)
            s.add(
                Adjustment(
                    kind="leak_credit",
                    status="proposed",
                    account_id=a.id,
                    amount_cents=-1200,
                    inputs={},
                    working={
                        "reason": "credit $12.00",
                        "steps": [{"step": "bill X: credit", "value": "1200", "detail": "0.5 x 8 ccf x 300"}],
                    },
                    proposed_by="ann",
                    approvals=[],
                    change_reason="",
                    decision_reason="",
                )
            )
            s.commit()
    finally:
        engine.dispose()
    listed = run(["list", "--status", "proposed"], empty_database_url, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "leak_credit" in listed.stdout and "-$12.00" in listed.stdout
    shown = run(["show", "1"], empty_database_url, tmp_path)
    assert shown.returncode == 0 and "0.5 x 8 ccf x 300" in shown.stdout
    own = run(["approve", "1", "--as", "ann"], empty_database_url, tmp_path)
    assert own.returncode == 1 and "nobody approves an adjustment they proposed" in own.stderr
    ok = run(["approve", "1", "--as", "sue", "--reason", "receipt seen"], empty_database_url, tmp_path)
    assert ok.returncode == 0 and "approved" in ok.stdout, ok.stderr
    assert "leak_credit" in run(["list", "--status", "approved"], empty_database_url, tmp_path).stdout
