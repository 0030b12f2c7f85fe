"""Adjustment calculators: worked examples with the test rate book (conftest.BOOK) and the built-in
policy; every expected amount is worked out by hand in the docstring.

Schedule A: fixed 1500; tier 1 up to 5 ccf at 300, tier 2 up to 15 at 400, tier 3 at 500.5 (cents/ccf).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from fractions import Fraction

from server.adjustments import calculators as calc
from server.adjustments.calculators import BillFacts

D = dt.date


def bill(bill_id, start, end, consumption, **kw):
    return BillFacts(
        bill_id=bill_id,
        customer_class="residential",
        meter_size="5/8",
        start=start,
        end=end,
        consumption=Fraction(consumption),
        unit="ccf",
        **kw,
    )


def at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 17, tzinfo=dt.UTC)


def monthly(first: dt.date, count: int, consumption) -> list[BillFacts]:
    out, start = [], first
    for n in range(count):
        end = calc.add_months(start, 1)
        out.append(bill(f"B{n + 1}", start, end, consumption))
        start = end
    return out


# ---- reread correction ----


def test_reread_correction_across_a_rollover_rerates_both_bills(book, policy):
    """4-dial ccf register (rolls at 10000). Bill X read 9990 -> 0050 (rolled: 60 ccf), bill Y 0050 -> 0070
    (20). The 0050 was wrong; verified 0020. X: 9990 -> 0020 rolled = 30 ccf; Y: 0020 -> 0070 = 50 ccf.
    X before: 1500+1500+4000+45x500.5 (22522.5 -> 22522) = 29522; after 30: tier 3 15x500.5 = 7507.5 ->
    7508, total 14508: -15014. Y before 20: tier 3 2502.5 -> 2502, 9502; after 50: 35x500.5 = 17517.5 ->
    17518, 24518: +15016. Net +2 cents (the half-cent roundings), a back-bill of $0.02."""
    wrong = at(D(2024, 4, 1))
    x = bill(
        "X",
        D(2024, 3, 1),
        D(2024, 4, 1),
        60,
        start_reading=Fraction(9990),
        end_reading=Fraction(50),
        start_read_at=at(D(2024, 3, 1)),
        end_read_at=wrong,
    )
    y = bill(
        "Y",
        D(2024, 4, 1),
        D(2024, 5, 1),
        20,
        start_reading=Fraction(50),
        end_reading=Fraction(70),
        start_read_at=wrong,
        end_read_at=at(D(2024, 5, 1)),
    )
    w = calc.reread_correction(
        book,
        policy,
        bills=[x, y],
        wrong_read_at=wrong,
        wrong_reading=50,
        corrected_reading=20,
        capacity=10000,
        multiplier=1,
        meter_unit="ccf",
    )
    assert [b["difference_cents"] for b in w.bills] == [-15014, 15016]
    assert (w.outcome, w.amount_cents) == ("adjust", 2)
    assert "rollover" in w.steps[1]["detail"]


def test_reread_correction_in_gallons_of_a_ccf_bill(book, policy):
    """A gallon meter (x10 multiplier) billed in ccf: 1000 -> 1748.052 read wrong as 1300 (use 3000 gal of
    the 7480.52 billed as 10 ccf, say the CIS billed 4.0104 ccf). Verified 1748.052: (1748.052 - 1000) x 10
    = 7480.52 gal = 10 ccf: tier 2 5 ccf x 400 = 2000 against 4.0104 ccf (tier 1 1203.12 -> 1203, no tier 2):
    +297 + 2000 = +2297."""
    x = bill(
        "X",
        D(2024, 3, 1),
        D(2024, 3, 31),
        Fraction("4.0104"),
        start_reading=Fraction(1000),
        end_reading=Fraction(1300),
        start_read_at=at(D(2024, 3, 1)),
        end_read_at=at(D(2024, 3, 31)),
    )
    w = calc.reread_correction(
        book,
        policy,
        bills=[x],
        wrong_read_at=at(D(2024, 3, 31)),
        wrong_reading=1300,
        corrected_reading=Fraction("1748.052"),
        capacity=1000000,
        multiplier=10,
        meter_unit="gal",
    )
    assert w.bills[0]["corrected_consumption"] == "10"
    assert w.amount_cents == 2297


def test_a_correction_no_rollover_explains_is_refused(book, policy):
    """Verified reading 10 behind a start of 9000 on a 10000 register: 1010 used would be a rollover of
    10% -- fine; but start 5000, reading 10 would be 5010 (over half the register): refused."""
    x = bill(
        "X",
        D(2024, 3, 1),
        D(2024, 4, 1),
        60,
        start_reading=Fraction(5000),
        end_reading=Fraction(5060),
        start_read_at=at(D(2024, 3, 1)),
        end_read_at=at(D(2024, 4, 1)),
    )
    w = calc.reread_correction(
        book,
        policy,
        bills=[x],
        wrong_read_at=at(D(2024, 4, 1)),
        wrong_reading=5060,
        corrected_reading=10,
        capacity=10000,
        multiplier=1,
        meter_unit="ccf",
    )
    assert w.outcome == "refused" and "more than a rollover explains" in w.reason


# ---- meter test ----


def test_fast_meter_refunds_from_the_known_start_of_the_error(book, policy):
    """Intermediate 104%, high 103%: billing accuracy 0.5x104 + 0.5x103 = 103.5% > 102: a refund. Error
    known from 2024-09-01, tested 2024-12-01: Sep, Oct, Nov bills of 30 ccf each. Corrected 30/1.035 =
    28.98550725 ccf: tier 3 13.98550725 x 500.5 = 6999.746 -> 7000 against 15 x 500.5 = 7507.5 -> 7508:
    -508 a bill, -1524 for three: refund $15.24."""
    bills = monthly(D(2024, 9, 1), 3, 30)
    w = calc.meter_test(
        book,
        policy,
        bills=bills,
        points={"low": 97.0, "intermediate": 104.0, "high": 103.0},
        test_date=D(2024, 12, 1),
        error_start_date=D(2024, 9, 1),
        last_test_date=D(2015, 1, 1),
    )
    assert w.steps[0]["value"] == "103.5"
    assert [b["difference_cents"] for b in w.bills] == [-508, -508, -508]
    assert (w.outcome, w.amount_cents) == ("adjust", -1524)


def test_a_meter_inside_its_limits_gives_no_adjustment(book, policy):
    """101.5% and 98.5%: billing accuracy 100.0%, inside 97-102%: nothing, and nothing re-rated."""
    w = calc.meter_test(
        book,
        policy,
        bills=monthly(D(2024, 1, 1), 11, 30),
        points={"low": 92.0, "intermediate": 101.5, "high": 98.5},
        test_date=D(2024, 12, 1),
        last_test_date=D(2020, 1, 1),
    )
    assert (w.outcome, w.amount_cents, w.bills) == ("none", 0, [])
    assert "inside 97-102%" in w.reason


def test_an_amount_under_the_minimum_is_not_adjusted(book, policy):
    """103.5% on two 10 ccf bills: 10/1.035 = 9.66183575 ccf, tier 2 4.66183575 x 400 = 1864.73 -> 1865
    against 2000: -135 a bill, -270 in all, under the $5.00 minimum: nothing."""
    w = calc.meter_test(
        book,
        policy,
        bills=monthly(D(2024, 10, 1), 2, 10),
        points={"intermediate": 104.0, "high": 103.0},
        test_date=D(2024, 12, 1),
        error_start_date=D(2024, 10, 1),
    )
    assert [b["difference_cents"] for b in w.bills] == [-135, -135]
    assert (w.outcome, w.amount_cents) == ("none", 0)
    assert "-$2.70 is under the minimum adjustment of $5.00" in w.reason


def test_a_slow_meter_backbills_at_most_the_back_bill_cap(book, policy):
    """95% (slow, below 97): back-bill. Last test 2014-12-01, so half the time since is 5 years, capped at
    12 months (back-bill cap): from 2023-12-01. 36 monthly bills of 10 ccf from 2021-12-01 -> only the 12
    from 2023-12-01 count. 10/0.95 = 10.52631579 ccf: tier 2 5.52631579 x 400 = 2210.53 -> 2211 vs 2000:
    +211 a bill, +2532 for twelve."""
    w = calc.meter_test(
        book,
        policy,
        bills=monthly(D(2021, 12, 1), 36, 10),
        points={"intermediate": 95.0, "high": 95.0},
        test_date=D(2024, 12, 1),
        last_test_date=D(2014, 12, 1),
    )
    look_back = next(s for s in w.steps if s["step"] == "look-back from")
    assert look_back["value"] == "2023-12-01"
    assert len(w.bills) == 12
    assert (w.outcome, w.amount_cents) == ("adjust", 12 * 211)


def test_a_fast_meter_refunds_at_most_the_refund_cap(book, policy):
    """103.5% with the last test 10 years back: half is 5 years, capped at 24 months (refund cap): from
    2022-12-01, 24 of the 36 bills; each 30 ccf bill -508 (as above): -12192."""
    w = calc.meter_test(
        book,
        policy,
        bills=monthly(D(2021, 12, 1), 36, 30),
        points={"intermediate": 104.0, "high": 103.0},
        test_date=D(2024, 12, 1),
        last_test_date=D(2014, 12, 1),
    )
    assert next(s for s in w.steps if s["step"] == "look-back from")["value"] == "2022-12-01"
    assert (len(w.bills), w.amount_cents) == (24, -24 * 508)


def test_half_the_time_since_the_last_test_when_inside_the_cap(book, policy):
    """Last test 2024-06-01, tested 2024-12-01 (183 days): look back 91 days, from 2024-09-01; the Aug bill
    (2024-08-01..09-01) lies outside, the Sep, Oct and Nov ones inside: 3 bills x -508 = -1524."""
    w = calc.meter_test(
        book,
        policy,
        bills=monthly(D(2024, 8, 1), 4, 30),
        points={"intermediate": 104.0, "high": 103.0},
        test_date=D(2024, 12, 1),
        last_test_date=D(2024, 6, 1),
    )
    assert next(s for s in w.steps if s["step"] == "look-back from")["value"] == "2024-09-01"
    assert w.amount_cents == -1524


# ---- leak credit ----


def _leak_history():
    return [bill("H1", D(2022, 8, 1), D(2022, 9, 1), 12), bill("H2", D(2023, 8, 1), D(2023, 9, 1), 10)]


def test_leak_credit_is_a_share_of_the_use_above_the_same_months_normal(book, policy):
    """August 2024: 25 ccf; Augusts 2022 and 2023: 12 and 10 ccf over 31 days: normal 11 ccf. Excess 14;
    credit 0.5 x 14 x 300 (tier 1 price) = 2100: -$21.00."""
    w = calc.leak_credit(
        book,
        policy,
        bills=[bill("L1", D(2024, 8, 1), D(2024, 9, 1), 25)],
        history=_leak_history(),
        repair_proven=True,
        previous_credit_dates=[],
        on=D(2024, 9, 15),
    )
    assert w.bills[0]["normal"] == "11"
    assert (w.outcome, w.amount_cents) == ("adjust", -2100)


def test_leak_credit_refused_by_the_once_per_period_rule(book, policy):
    """A leak credit approved 2023-06-01; one per 24 months: refused until 2025-06-01."""
    w = calc.leak_credit(
        book,
        policy,
        bills=[bill("L1", D(2024, 8, 1), D(2024, 9, 1), 25)],
        history=_leak_history(),
        repair_proven=True,
        previous_credit_dates=[D(2023, 6, 1)],
        on=D(2024, 9, 15),
    )
    assert (w.outcome, w.amount_cents) == ("refused", 0)
    assert "already approved on 2023-06-01; the next may be given from 2025-06-01" in w.reason


def test_leak_credit_needs_proof_of_repair_and_at_most_two_bills(book, policy):
    """No proof: refused. Three bills (the policy allows 2): refused naming the limit."""
    one = [bill("L1", D(2024, 8, 1), D(2024, 9, 1), 25)]
    w = calc.leak_credit(
        book, policy, bills=one, history=[], repair_proven=False, previous_credit_dates=[], on=D(2024, 9, 15)
    )
    assert w.outcome == "refused" and "proof" in w.reason
    three = monthly(D(2024, 6, 1), 3, 25)
    w = calc.leak_credit(
        book, policy, bills=three, history=[], repair_proven=True, previous_credit_dates=[], on=D(2024, 9, 15)
    )
    assert w.outcome == "refused" and "at most 2 bill(s)" in w.reason


# ---- fee reversal ----


def test_late_fee_reversed_whole_and_reconnection_over_the_cap(book, policy):
    """Late fee $10.00 reversed whole; a $75.00 reconnection for a low-income household in business
    hours, cap $50.00: $25.00 reversed. Credit $35.00."""
    b = bill(
        "F1", D(2024, 3, 1), D(2024, 3, 31), 10, lines={"fixed": 1500, "late_fee": 1000, "reconnection": 7500}
    )
    w = calc.fee_reversal(
        policy,
        bill=b,
        components=["late_fee", "reconnection"],
        low_income=True,
        after_hours=False,
        reconnection_cap_cents=5000,
        after_hours_reconnection_cap_cents=15000,
    )
    assert (w.outcome, w.amount_cents) == ("adjust", -3500)


def test_no_legal_cap_for_a_household_above_the_poverty_line(book, policy):
    """The same $75.00 reconnection for a household not under 200% of the poverty line: nothing."""
    b = bill("F1", D(2024, 3, 1), D(2024, 3, 31), 10, lines={"reconnection": 7500})
    w = calc.fee_reversal(
        policy,
        bill=b,
        components=["reconnection"],
        low_income=False,
        after_hours=False,
        reconnection_cap_cents=5000,
        after_hours_reconnection_cap_cents=15000,
    )
    assert (w.outcome, w.amount_cents) == ("none", 0)


def test_a_fee_the_bill_did_not_charge_or_a_charge_that_is_not_a_fee_is_refused(book, policy):
    """Reversing a delinquency charge the bill lacks, or the fixed charge: refused naming it."""
    b = bill("F1", D(2024, 3, 1), D(2024, 3, 31), 10, lines={"fixed": 1500})
    caps = {"reconnection_cap_cents": 5000, "after_hours_reconnection_cap_cents": 15000}
    w = calc.fee_reversal(
        policy, bill=b, components=["delinquency"], low_income=False, after_hours=False, **caps
    )
    assert w.outcome == "refused" and "charged no delinquency" in w.reason
    w = calc.fee_reversal(policy, bill=b, components=["fixed"], low_income=False, after_hours=False, **caps)
    assert w.outcome == "refused" and "'fixed' is not a fee" in w.reason


# ---- estimated-read true-up ----


def test_true_up_spreads_the_actual_use_over_the_estimated_bills_by_day(book, policy):
    """Three 30-day estimated bills of 10 ccf from 2024-04-01 (reading 1000). Actual 1060 on 2024-06-30:
    60 ccf over 90 days, 20 a bill. 10 ccf: 5000; 20 ccf: 1500+1500+4000+2502 (2502.5 to even) = 9502;
    +4502 a bill, +13506 for three."""
    bills = [
        bill("E1", D(2024, 4, 1), D(2024, 5, 1), 10, estimated=True),
        bill("E2", D(2024, 5, 1), D(2024, 5, 31), 10, estimated=True),
        bill("E3", D(2024, 5, 31), D(2024, 6, 30), 10, estimated=True),
    ]
    w = calc.estimate_true_up(
        book,
        policy,
        bills=bills,
        start_reading=1000,
        actual_reading=1060,
        actual_read_date=D(2024, 6, 30),
        capacity=10000,
        multiplier=1,
        meter_unit="ccf",
    )
    assert [b["corrected_consumption"] for b in w.bills] == ["20", "20", "20"]
    assert (w.outcome, w.amount_cents) == ("adjust", 13506)


def test_working_is_plain_data_the_page_can_render(book, policy):
    """as_dict() holds only JSON types: strings, numbers, lists, dicts (no Fractions, no dates)."""
    import json

    w = calc.meter_test(
        book,
        policy,
        bills=monthly(D(2024, 9, 1), 3, 30),
        points={"intermediate": 104.0, "high": 103.0},
        test_date=D(2024, 12, 1),
        error_start_date=D(2024, 9, 1),
    )
    assert json.loads(json.dumps(w.as_dict()))["amount_cents"] == -1524
    assert dataclasses.is_dataclass(w)
