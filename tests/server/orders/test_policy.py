"""The policy file: defaults, overrides, and a bad file refused with the line and key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from contracts.codes import OrderType, Priority
from server.config import REPO_ROOT
from server.orders.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy


def write(tmp_path, text):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_documented_file():
    policy = load_policy()
    assert policy.shutoff.min_days_delinquent == 60 and policy.shutoff.final_notice_hours == 48
    assert policy.reads.high_factor == 2.5 and policy.reads.low_factor == 0.4
    assert policy.meter_test.interval_for('1 1/2"') == 4 and policy.meter_test.interval_for("5/8") == 10
    assert "min_days_delinquent = 60" in DEFAULT_POLICY_PATH.read_text()


def test_a_file_overrides_only_what_it_names(tmp_path):
    path = write(
        tmp_path,
        '[shutoff]\nmin_days_delinquent = 90\n\n[calendar]\nholidays = ["2026-12-24"]\n\n'
        '[order_types.meter_test]\npriority = "investigation"\nminutes = 60\n',
    )
    policy = load_policy(path)
    assert policy.shutoff.min_days_delinquent == 90 and policy.shutoff.min_past_due_cents == 5000
    assert policy.order_defaults(OrderType.METER_TEST).priority is Priority.INVESTIGATION
    assert policy.order_defaults(OrderType.METER_TEST).minutes == 60
    assert policy.source == str(path)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (
            "[shutoff]\nmin_days_delinqent = 60\n",
            2,
            "shutoff.min_days_delinqent",
            "did you mean 'min_days_delinquent'",
        ),
        ('[reads]\n\nhigh_factor = "lots"\n', 3, "reads.high_factor", "expected a number"),
        ('[shutoff]\nforbidden_weekdays = ["fri", "funday"]\n', 2, "shutoff.forbidden_weekdays", "funday"),
        ('[calendar]\nholidays = ["2026-13-01"]\n', 2, "calendar.holidays", "not a date"),
        ("[shutof]\nenabled = true\n", 1, "shutoff", "did you mean 'shutoff'"),
        ('[restore]\nafter_hours = "never"\n', 2, "restore.after_hours", "same_day"),
        ("[order_types.meter_tst]\nminutes = 5\n", 1, "order_types.meter_tst", "unknown order type"),
        ("[reads]\nlow_factor = 1.5\n", 2, "reads.low_factor", "at most 1"),
    ],
)
def test_a_bad_file_names_line_and_key(tmp_path, text, line, key, words):
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    err = caught.value
    assert (err.line, err.key) == (line, key if key != "shutoff" else "shutof")
    assert words in str(err) and f"{path}:{line}" in str(err)


def test_broken_toml_names_the_line(tmp_path):
    path = write(tmp_path, "[shutoff]\nenabled = true\nmin_days_delinquent = = 3\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.line == 3 and "not valid TOML" in str(caught.value)


def test_the_server_refuses_to_start_on_a_bad_policy(tmp_path):
    path = write(tmp_path, "[shutoff]\nmin_days_delinquent = -1\n")
    env = {
        "CURBSTOP_POLICY_FILE": str(path),
        "CURBSTOP_VAR_DIR": str(tmp_path / "var"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from server.main import create_app; create_app(start_worker=False)"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert f"{path}:2: shutoff.min_days_delinquent: must be at least 0" in proc.stderr
