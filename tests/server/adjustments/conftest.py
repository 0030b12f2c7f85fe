"""Adjustment fixtures: a small rate book whose numbers make the worked examples easy to follow."""

from __future__ import annotations

import pytest

from server.adjustments.policy import AdjustmentPolicy, load_adjustment_policy
from server.adjustments.rates import RateBook, parse_rates

# Schedule A from 2021, schedule B from 2025-07-01 (residential); prices in cents per ccf.
BOOK = """
standard_period_days = 30
full_period_min_days = 27
full_period_max_days = 33

[[schedule]]
name = "A"
customer_class = "residential"
effective_date = "2021-01-01"
unit = "ccf"
fixed_cents = { "5/8" = 1500, "1" = 3000 }
tiers = [ { up_to = 5, price_cents = 300 }, { up_to = 15, price_cents = 400 }, { price_cents = 500.5 } ]

[[schedule]]
name = "B"
customer_class = "residential"
effective_date = "2025-07-01"
unit = "ccf"
fixed_cents = { "5/8" = 1800 }
tiers = [ { up_to = 5, price_cents = 330 }, { price_cents = 450 } ]
"""


@pytest.fixture
def book() -> RateBook:
    """Schedules A (2021) and B (from 2025-07-01), residential, in ccf."""
    return parse_rates(BOOK, "test rates")


@pytest.fixture
def policy() -> AdjustmentPolicy:
    """The built-in adjustment policy (its defaults are what the examples assume)."""
    return load_adjustment_policy()
