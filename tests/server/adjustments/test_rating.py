"""Rating worked examples: the test rate book (conftest.BOOK), every expected amount in cents by hand.

Schedule A (from 2021): fixed 1500 (5/8"); tier 1 up to 5 ccf at 300, tier 2 up to 15 at 400, tier 3 at 500.5.
Schedule B from 2025-07-01: fixed 1800; tier 1 up to 5 at 330, tier 2 at 450. Full period: 27-33 days.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from server.adjustments.rates import RateError, load_rates, parse_rates
from server.adjustments.rating import rate_period, rerate
from server.orders.policy import PolicyError

D = dt.date


def rate(book, start, end, consumption, unit="ccf", size="5/8"):
    return rate_period(
        book,
        customer_class="residential",
        meter_size=size,
        start=start,
        end=end,
        consumption=consumption,
        unit=unit,
    )


def test_exactly_on_a_tier_boundary_stays_in_the_lower_tier(book):
    """5 ccf in a 30-day period: fixed 1500 + tier 1 5 x 300 = 1500; no tier 2 line; total 3000."""
    r = rate(book, D(2024, 3, 1), D(2024, 3, 31), 5)
    assert r.by_component() == {"fixed": 1500, "tier_1": 1500}
    assert r.total_cents == 3000


def test_every_tier_filled_and_half_cents_round_to_even(book):
    """16 ccf: 1500 + 5x300 + 10x400 + 1x500.5 = 500.5 -> 500 (half to even); total 7500.
    17 ccf: tier 3 2x500.5 = 1001; 18 ccf: 3x500.5 = 1501.5 -> 1502 (half to even)."""
    assert rate(book, D(2024, 3, 1), D(2024, 3, 31), 16).by_component() == {
        "fixed": 1500,
        "tier_1": 1500,
        "tier_2": 4000,
        "tier_3": 500,
    }
    assert rate(book, D(2024, 3, 1), D(2024, 3, 31), 16).total_cents == 7500
    assert rate(book, D(2024, 3, 1), D(2024, 3, 31), 17).by_component()["tier_3"] == 1001
    assert rate(book, D(2024, 3, 1), D(2024, 3, 31), 18).by_component()["tier_3"] == 1502


def test_a_31_day_and_a_28_day_month_are_full_periods(book):
    """27-33 days charge the fixed charge and tier widths as written: 10 ccf costs 1500+1500+2000 = 5000 in both."""
    assert rate(book, D(2024, 1, 1), D(2024, 2, 1), 10).total_cents == 5000
    assert rate(book, D(2023, 2, 1), D(2023, 3, 1), 10).total_cents == 5000


def test_a_partial_period_prorates_the_fixed_charge_and_tier_widths_by_days(book):
    """15 days (a move-in): factor 15/30. Fixed 1500/2 = 750; tier 1 width 2.5 ccf: 2.5x300 = 750;
    4 ccf leaves 1.5 in tier 2: 1.5x400 = 600. Total 2100."""
    r = rate(book, D(2024, 3, 1), D(2024, 3, 16), 4)
    assert r.factor == Fraction(1, 2)
    assert r.by_component() == {"fixed": 750, "tier_1": 750, "tier_2": 600}
    assert r.total_cents == 2100


def test_a_rate_change_inside_the_period_splits_it_by_days(book):
    """2025-06-16 to 2025-07-16 (30 days, 15 under A, 15 under B), 12 ccf: 6 ccf to each half.
    A: fixed 1500x15/30 = 750; tier 1 width 2.5: 750; 3.5 in tier 2 x 400 = 1400.
    B: fixed 1800x15/30 = 900; tier 1 width 2.5 x 330 = 825; 3.5 x 450 = 1575. Total 6200."""
    r = rate(book, D(2025, 6, 16), D(2025, 7, 16), 12)
    assert [(line.schedule, line.component, line.amount_cents) for line in r.lines] == [
        ("A", "fixed", 750),
        ("A", "tier_1", 750),
        ("A", "tier_2", 1400),
        ("B", "fixed", 900),
        ("B", "tier_1", 825),
        ("B", "tier_2", 1575),
    ]
    assert r.by_component() == {"fixed": 1650, "tier_1": 1575, "tier_2": 2975}
    assert r.total_cents == 6200


def test_volumes_in_another_unit_are_converted_exactly(book):
    """7480.52 gallons = 10 ccf (748.052 gal per ccf): 1500 + 1500 + 2000 = 5000."""
    assert rate(book, D(2024, 3, 1), D(2024, 3, 31), Fraction("7480.52"), unit="gal").total_cents == 5000


def test_rerating_gives_the_difference_line_by_line(book):
    """Billed 20 ccf, corrected 8: tier 2 4000 -> 1200 (-2800); tier 3 5x500.5 = 2502.5 -> 2502 -> 0
    (-2502); fixed and tier 1 unchanged. Total -5302."""
    r = rerate(
        book,
        customer_class="residential",
        meter_size="5/8",
        start=D(2024, 3, 1),
        end=D(2024, 3, 31),
        consumption=20,
        corrected_consumption=8,
        unit="ccf",
    )
    assert [(d.component, d.before_cents, d.after_cents, d.difference_cents) for d in r.lines] == [
        ("fixed", 1500, 1500, 0),
        ("tier_1", 1500, 1500, 0),
        ("tier_2", 4000, 1200, -2800),
        ("tier_3", 2502, 0, -2502),
    ]
    assert r.difference_cents == -5302


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "3/4"}, "no fixed charge for a 3/4 meter"),
        (
            {"start": D(2020, 6, 1), "end": D(2020, 7, 1)},
            "no residential rate schedule is in force on 2020-06-01",
        ),
        ({"start": D(2024, 3, 1), "end": D(2024, 3, 1)}, "at least one day"),
    ],
)
def test_a_period_that_cannot_be_rated_says_why(book, kwargs, message):
    """An unlisted meter size, a day before any schedule, an empty period: RateError naming it."""
    args = {"start": D(2024, 3, 1), "end": D(2024, 3, 31), "size": "5/8"} | kwargs
    with pytest.raises(RateError, match=message):
        rate(book, args["start"], args["end"], 5, size=args["size"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "tiers = [ { up_to = 5, price_cents = 300 }, { up_to = 15, price_cents = 400 }, { price_cents = 500.5 } ]",
            None,
        ),
        (
            "tiers = [ { up_to = 5, price_cents = 300 }, { up_to = 4, price_cents = 400 }, { price_cents = 500.5 } ]",
            r"tiers\[2\]\.up_to: 4 must be above the tier before \(5\)",
        ),
        (
            "tiers = [ { up_to = 5, price_cents = 300 }, { up_to = 15, price_cents = 400 }, { up_to = 20, price_cents = 500.5 } ]",
            "the last tier has no upper bound",
        ),
        (
            "tiers = [ { up_to = 5, price_cents = 300.12345 }, { up_to = 15, price_cents = 400 }, { price_cents = 500.5 } ]",
            "at most 4 decimals",
        ),
    ],
)
def test_a_bad_rates_file_is_refused_naming_the_key(change, message):
    """Tiers out of order, a bounded last tier, a price with 5 decimals: PolicyError naming the tier."""
    from tests.server.adjustments.conftest import BOOK

    first = BOOK.split("[[schedule]]")
    text = (
        first[0]
        + "[[schedule]]"
        + first[1].replace(
            "tiers = [ { up_to = 5, price_cents = 300 }, { up_to = 15, price_cents = 400 }, { price_cents = 500.5 } ]",
            change,
        )
        + "[[schedule]]"
        + first[2]
    )
    if message is None:
        parse_rates(text, "t")
        return
    with pytest.raises(PolicyError, match=message):
        parse_rates(text, "t")


def test_two_schedules_for_one_class_on_one_day_are_refused():
    """Which would apply is ambiguous: refused naming both."""
    from tests.server.adjustments.conftest import BOOK

    with pytest.raises(PolicyError, match="'A' already takes effect for residential on 2021-01-01"):
        parse_rates(BOOK.replace('effective_date = "2025-07-01"', 'effective_date = "2021-01-01"'), "t")


def test_the_built_in_rates_file_loads():
    """The shipped tariff validates and covers every customer class."""
    assert load_rates().classes() == ["commercial", "industrial", "irrigation", "residential"]
