"""The adjustment policy file: defaults from DOMAIN.md, overrides by key, bad files refused naming the key."""

from __future__ import annotations

import pytest

from server.adjustments.policy import load_adjustment_policy
from server.orders.policy import PolicyError


def test_defaults():
    """Advisor $500 ($100 for leak credits), supervisor $1,000; fee reversals need two approvers; a meter
    refunds above 102% and back-bills below 97%, 24 and 12 months at most; a dispatcher approves nothing."""
    p = load_adjustment_policy()
    assert p.authority.limit_for("advisor", "meter_test") == 50000
    assert p.authority.limit_for("advisor", "leak_credit") == 10000
    assert p.authority.limit_for("supervisor", "leak_credit") == 100000
    assert p.authority.limit_for("dispatcher", "meter_test") is None
    assert p.authority.two_approver_kinds == {"fee_reversal"}
    mt = p.meter_test
    assert (mt.refund_above_pct, mt.backbill_below_pct, mt.refund_max_months, mt.backbill_max_months) == (
        102,
        97,
        24,
        12,
    )


def test_a_file_overrides_only_its_keys(tmp_path):
    """A utility's file changes the back-bill share and cap; everything else keeps its default."""
    f = tmp_path / "adj.toml"
    f.write_text("[meter_test]\nbackbill_share = 0.5\nbackbill_max_months = 6\n")
    p = load_adjustment_policy(f)
    assert (
        p.meter_test.backbill_share,
        p.meter_test.backbill_max_months,
        p.meter_test.refund_max_months,
    ) == (0.5, 6, 24)
    assert p.source == str(f)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[meter_test]\nflow_point_weights = { intermediate = 0.5, high = 0.6 }\n",
            r"meter_test.flow_point_weights: the weights must add up to 1",
        ),
        ("[meter_test]\nflow_point_weights = { medium = 1.0 }\n", r"unknown flow point 'medium'"),
        (
            "[leak]\nonce_per_month = 12\n",
            r":2: leak.once_per_month: unknown key; did you mean 'once_per_months'\?",
        ),
        (
            "[authority]\nadvisor = { default_cents = 50000, refund_cents = 1 }\n",
            r"authority.advisor: unknown key 'refund_cents'",
        ),
        ("[meter_test]\nrefund_above_pct = 96.0\n", r"must be at least 100"),
        ('[fees]\nreversible = ["fixed"]\n', r"unknown value\(s\) 'fixed'"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(tmp_path, content, message):
    """Weights that do not add up to 1, an unknown point, a misspelt key (with a suggestion), an unknown
    kind, a refund limit below 100%, a charge that is not a fee: PolicyError naming the line and key."""
    f = tmp_path / "adj.toml"
    f.write_text(content)
    with pytest.raises(PolicyError, match=message):
        load_adjustment_policy(f)
