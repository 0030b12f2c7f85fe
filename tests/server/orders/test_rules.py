"""Each generation rule on hand-made facts: boundaries, holidays, rollovers, arrangements, holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from contracts.codes import OrderType
from server.orders.calendar import Calendar, public_holidays
from server.orders.policy import load_policy
from server.orders.rules import billing, field, reads
from server.orders.rules.base import Outcome, Rule

ZONE = ZoneInfo("America/Los_Angeles")
POLICY = load_policy()
CAL = Calendar.of(POLICY.calendar)
TUE = dt.date(2026, 11, 17)  # an ordinary Tuesday


def at(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE)


# ---------------------------------------------------------------- reads


@pytest.mark.parametrize("dials", [4, 5, 6, 7])
@pytest.mark.parametrize("decimals", [0, 1])
def test_rollover_explains_backwards_use_near_the_top(dials, decimals):
    top = 10**dials / 10**decimals
    previous, current = top - 30, 12.0
    use, rolled = reads.interval_use(previous, current, dials=dials, decimals=decimals, max_fraction=0.5)
    assert rolled and use == pytest.approx(42.0)


@pytest.mark.parametrize("dials", [4, 5, 6, 7])
def test_backwards_use_far_from_the_top_is_not_a_rollover(dials):
    top = 10**dials
    use, rolled = reads.interval_use(top * 0.4, top * 0.3, dials=dials, decimals=0, max_fraction=0.5)
    assert not rolled and use == pytest.approx(-top * 0.1)


def test_multiplier_and_unit_scale_volume():
    # 42 register units on a x10 meter reading cubic feet: 420 cf = 3,141.8 gal.
    assert reads.to_gallons(42, multiplier=10, unit="cf") == pytest.approx(420 * 7.48052, rel=1e-4)
    assert reads.to_gallons(5, multiplier=1, unit="ccf") == pytest.approx(5 * 748.052, rel=1e-4)


def test_seasonal_norm_uses_the_same_month_of_earlier_years_only():
    history = [
        (dt.datetime(2024, 6, 1, tzinfo=dt.UTC), 0.0),
        (dt.datetime(2024, 7, 1, tzinfo=dt.UTC), 100.0),  # July 2024: 100
        (dt.datetime(2024, 12, 1, tzinfo=dt.UTC), 600.0),
        (dt.datetime(2025, 6, 1, tzinfo=dt.UTC), 1000.0),
        (dt.datetime(2025, 7, 1, tzinfo=dt.UTC), 1300.0),  # July 2025: 300
        (dt.datetime(2026, 6, 1, tzinfo=dt.UTC), 2000.0),
    ]
    norm, n = reads.seasonal_norm(
        history, dt.datetime(2026, 7, 1, tzinfo=dt.UTC), dials=6, decimals=0, max_fraction=0.5
    )
    assert (norm, n) == (200.0, 2)


def _classify(**kw):
    base = dict(
        use=100.0,
        rolled=False,
        read_code="",
        norm=100.0,
        history_count=12,
        active_occupied=True,
        estimates_in_a_row=0,
        policy=POLICY.reads,
    )
    return reads.classify(**(base | kw))


def test_high_and_low_limits_are_strict_at_the_boundary():
    assert _classify(use=250.0).validation == "ok"  # exactly 2.5 x the norm is still in range
    assert _classify(use=250.01).validation == "high"
    assert _classify(use=400.01).validation == "very_high"
    assert _classify(use=40.0).validation == "ok"
    assert _classify(use=39.99).validation == "low"


def test_zero_use_needs_an_active_occupied_account():
    assert _classify(use=0.0).validation == "zero"
    vacant = _classify(use=0.0, active_occupied=False)
    assert vacant.validation == "ok" and not vacant.reread


def test_new_account_with_little_history_gets_no_limits_but_still_codes_and_negatives():
    few = _classify(use=5000.0, history_count=2)
    assert not few.reread and "too little history" in few.reason
    assert _classify(use=-5.0, history_count=0).validation == "negative"
    assert _classify(read_code="reread_requested", history_count=0).validation == "code"
    assert _classify(use=None, history_count=0).validation == "first"


def test_two_estimates_in_a_row_ask_for_a_real_read():
    assert _classify(estimates_in_a_row=1).validation == "ok"
    assert _classify(estimates_in_a_row=2).validation == "estimated"


def _meter(*uses_norms, status="active", occupied=True, code="", days_old=3, unit="gal", multiplier=1):
    intervals = []
    day = TUE - dt.timedelta(days=days_old)
    for i, (use, norm) in enumerate(uses_norms):
        intervals.append(
            reads.Interval(
                read_id=100 - i,
                read_at=at(day - dt.timedelta(days=30 * i)),
                reading=1000.0,
                use=use,
                rolled=False,
                norm=norm,
                norm_count=2 if norm is not None else 0,
                read_code=code if i == 0 else "",
            )
        )
    return reads.MeterFacts(
        meter_id=7,
        register=1,
        service_point_id=3,
        dials=6,
        decimals=0,
        multiplier=multiplier,
        unit=unit,
        account_id=5,
        account_status=status,
        occupied=occupied,
        intervals=tuple(intervals),
        history_count=20,
        recent_mean=100.0,
    )


def test_reread_rule_keys_by_read_and_respects_the_look_back():
    d = reads.reread_rule(_meter((1000.0, 100.0)), POLICY, TUE)
    assert d is not None and d.order.key == "reread:read:100" and d.order.order_type is OrderType.REREAD
    old = _meter((1000.0, 100.0), days_old=POLICY.reads.reread_lookback_days + 1)
    assert reads.reread_rule(old, POLICY, TUE) is None
    # ...unless the read was never validated (it just arrived from the CIS).
    fresh = dataclasses.replace(old, intervals=(dataclasses.replace(old.intervals[0], validated=False),))
    assert reads.reread_rule(fresh, POLICY, TUE) is not None


def test_leak_needs_sustained_use_above_the_norm():
    assert reads.leak_rule(_meter((3000.0, 1000.0), (2500.0, 1000.0)), POLICY, TUE) is not None
    assert reads.leak_rule(_meter((3000.0, 1000.0), (1500.0, 1000.0)), POLICY, TUE) is None  # one cycle only
    # Sustained but small: under the minimum excess volume.
    assert reads.leak_rule(_meter((30.0, 10.0), (30.0, 10.0)), POLICY, TUE) is None
    # The same register units on a x10 cubic-foot meter are a big leak.
    assert (
        reads.leak_rule(_meter((30.0, 10.0), (30.0, 10.0), unit="cf", multiplier=10), POLICY, TUE) is not None
    )
    flagged = reads.leak_rule(_meter((100.0, 100.0), (100.0, 100.0), code="continuous_flow"), POLICY, TUE)
    assert flagged is not None and "continuous_flow" in flagged.reason


def test_theft_is_use_on_a_shut_off_or_locked_account():
    assert reads.theft_rule(_meter((500.0, 100.0), status="shut_off"), POLICY, TUE) is not None
    assert reads.theft_rule(_meter((500.0, 100.0), status="locked"), POLICY, TUE) is not None
    assert reads.theft_rule(_meter((500.0, 100.0), status="active"), POLICY, TUE) is None
    assert reads.theft_rule(_meter((10.0, 100.0), status="shut_off"), POLICY, TUE) is None  # under 50 gal


def test_zero_use_two_cycles_running_raises_a_meter_test():
    assert reads.zero_use_rule(_meter((0.0, 100.0), (0.0, 100.0)), POLICY) is not None
    assert reads.zero_use_rule(_meter((0.0, 100.0), (50.0, 100.0)), POLICY) is None
    assert reads.zero_use_rule(_meter((0.0, 100.0), (0.0, 100.0), occupied=False), POLICY) is None


# ---------------------------------------------------------------- calendar


def test_federal_holidays_2026_with_observed_days():
    """calendar.country = "US" without a subdivision: the federal holidays from the `holidays` package."""
    days = public_holidays("US", "", 2026)
    assert days[dt.date(2026, 11, 26)] == "Thanksgiving Day"
    assert days[dt.date(2026, 7, 3)] == "Independence Day (observed)"  # July 4 is a Saturday
    assert days[dt.date(2026, 1, 19)].startswith("Martin Luther King")
    assert days[dt.date(2026, 5, 25)] == "Memorial Day"
    assert dt.date(2026, 11, 27) not in days  # the day after Thanksgiving is a state holiday, not federal
    assert public_holidays("US", "", 2027)[dt.date(2027, 12, 31)].startswith(
        "New Year"
    )  # 2028-01-01 a Saturday


def test_shutoff_calendar_forbids_fridays_weekends_holidays_and_their_eves():
    assert CAL.shutoff_forbidden(TUE, POLICY.shutoff) is None
    assert "Friday" in CAL.shutoff_forbidden(dt.date(2026, 11, 20), POLICY.shutoff)
    assert "day before a holiday" in CAL.shutoff_forbidden(dt.date(2026, 11, 25), POLICY.shutoff)
    assert "holiday" in CAL.shutoff_forbidden(dt.date(2026, 11, 26), POLICY.shutoff)
    hot = Calendar.of(POLICY.calendar, [(TUE, "heat advisory")])
    assert "heat advisory" in hot.shutoff_forbidden(TUE, POLICY.shutoff)


def test_business_days_skip_weekends_and_holidays():
    assert CAL.business_days_between(dt.date(2026, 11, 20), dt.date(2026, 11, 27)) == 4  # Mon-Wed, Fri
    assert CAL.next_business_day(dt.date(2026, 11, 25)) == dt.date(2026, 11, 27)


# ---------------------------------------------------------------- shut-off, pull, restore


def acct(**kw) -> billing.AccountFacts:
    base = dict(
        account_id=9,
        account_number="A9",
        service_point_id=3,
        meter_id=7,
        status="active",
        service_class="residential",
        occupied=True,
        low_income=False,
        past_due_cents=12_000,
        oldest_past_due_date=TUE - dt.timedelta(days=75),
        balance_as_of=at(TUE - dt.timedelta(days=1), 6),
        paid_since_cents=0,
        last_payment_at=None,
        last_payment_id=None,
        arrangement_id=None,
        arrangement_made=None,
        holds=(),
        written_notice_at=at(TUE - dt.timedelta(days=14)),
        final_notice_at=at(TUE - dt.timedelta(days=3), 11),
    )
    return billing.AccountFacts(**(base | kw))


def shutoff(a, day=TUE, cal=CAL):
    return billing.shutoff_rule(a, POLICY, cal, day, ZONE)


def test_an_eligible_account_goes_on_the_list_for_review():
    d = shutoff(acct())
    assert d.outcome is Outcome.CREATE and d.order.order_type is OrderType.SHUT_OFF_NONPAY
    assert (
        d.order.needs_review and d.order.scheduled_date == TUE and "$120.00 past due for 75 days" in d.reason
    )


def test_days_delinquent_boundary():
    assert shutoff(acct(oldest_past_due_date=TUE - dt.timedelta(days=60))).outcome is Outcome.CREATE
    d = shutoff(acct(oldest_past_due_date=TUE - dt.timedelta(days=59)))
    assert d.outcome is Outcome.HOLD and "59 days delinquent, under the 60 required" in d.reason


def test_amount_boundary_counts_payments_since_the_balance():
    assert shutoff(acct(past_due_cents=5000)).outcome is Outcome.CREATE
    assert shutoff(acct(past_due_cents=4999)) is None  # not delinquent enough to consider at all
    assert shutoff(acct(past_due_cents=12_000, paid_since_cents=7_001)) is None


def test_arrangement_made_the_same_day_holds_back():
    d = shutoff(acct(arrangement_id=4, arrangement_made=TUE))
    assert d.outcome is Outcome.HOLD and "payment arrangement" in d.reason


def test_medical_and_dispute_holds_hold_back_while_active():
    med = billing.Hold("medical_certificate", TUE - dt.timedelta(days=3), TUE + dt.timedelta(days=30))
    d = shutoff(acct(holds=(med,)))
    assert d.outcome is Outcome.HOLD and "medical certificate hold" in d.reason
    dispute = billing.Hold("dispute", TUE - dt.timedelta(days=3), None)
    assert "dispute hold" in shutoff(acct(holds=(dispute,))).reason
    expired = billing.Hold("medical_certificate", TUE - dt.timedelta(days=90), TUE - dt.timedelta(days=1))
    assert shutoff(acct(holds=(expired,))).outcome is Outcome.CREATE


def test_written_notice_business_days_boundary():
    # Served Tue Nov 3: Nov 4,5,6,9,10,11(Veterans Day: not counted),12 -> 6 business days by Thu Nov 12.
    d = shutoff(
        acct(written_notice_at=at(dt.date(2026, 11, 3)), final_notice_at=None), day=dt.date(2026, 11, 12)
    )
    assert d.outcome is Outcome.HOLD and "6 of 7 business days" in d.reason
    ok = acct(written_notice_at=at(dt.date(2026, 11, 3)), final_notice_at=at(dt.date(2026, 11, 12), 11))
    assert shutoff(ok, day=dt.date(2026, 11, 16)).outcome is Outcome.CREATE  # Monday, 8 business days


def test_final_notice_must_be_48_hours_old_when_the_day_starts():
    # The day starts 08:00; a final notice posted 08:01 two days before is one minute short.
    late = shutoff(acct(final_notice_at=at(TUE - dt.timedelta(days=2), 8, 1)))
    assert late.outcome is Outcome.HOLD and "48 hours are not over" in late.reason
    assert shutoff(acct(final_notice_at=at(TUE - dt.timedelta(days=2), 8, 0))).outcome is Outcome.CREATE


def test_missing_final_notice_raises_a_delivery_order_even_on_a_forbidden_day():
    d = shutoff(acct(final_notice_at=None), day=dt.date(2026, 11, 20))  # a Friday
    assert d.outcome is Outcome.CREATE and d.order.order_type is OrderType.NOTICE_DELIVERY
    # ...but not for an account under arrangement.
    held = shutoff(acct(final_notice_at=None, arrangement_id=1, arrangement_made=TUE))
    assert held.outcome is Outcome.HOLD


def test_holiday_eve_and_fridays_hold_back_with_the_reason():
    eve = shutoff(acct(), day=dt.date(2026, 11, 25))
    assert eve.outcome is Outcome.HOLD and "day before a holiday (Thanksgiving Day)" in eve.reason
    fri = shutoff(acct(), day=dt.date(2026, 11, 20))
    assert fri.outcome is Outcome.HOLD and "Friday" in fri.reason


def test_service_class_outside_the_policy_is_held():
    assert "not subject" in shutoff(acct(service_class="municipal")).reason


def test_an_open_shutoff_is_not_listed_twice():
    open_cut = billing.OpenOrder(50, "shut_off_nonpay", "dispatched", at(TUE))
    assert shutoff(acct(open_orders=(open_cut,))) is None


def test_payment_after_dispatch_pulls_the_shutoff():
    open_cut = billing.OpenOrder(50, "shut_off_nonpay", "dispatched", at(TUE))
    paid = acct(
        open_orders=(open_cut,), paid_since_cents=12_000, last_payment_at=at(TUE, 9), last_payment_id=3
    )
    (d,) = billing.pull_rule(paid, POLICY, TUE)
    assert (
        d.outcome is Outcome.CANCEL and d.cancel_order_id == 50 and "under the $50.00 threshold" in d.reason
    )
    arranged = acct(open_orders=(open_cut,), arrangement_id=2, arrangement_made=TUE)
    assert "arrangement" in billing.pull_rule(arranged, POLICY, TUE)[0].reason
    assert billing.pull_rule(acct(open_orders=(open_cut,)), POLICY, TUE) == []


def restore(a, day=TUE, policy=POLICY):
    return billing.restore_rule(a, policy, CAL, day, ZONE)


def test_restore_same_day_in_business_hours():
    a = acct(status="shut_off", paid_since_cents=12_000, last_payment_at=at(TUE, 10), last_payment_id=8)
    d = restore(a)
    assert d.order.order_type is OrderType.RESTORE and d.order.scheduled_date == TUE
    assert "in business hours" in d.reason and "$75.00" in d.reason and d.order.key == "restore:9:pay8"


def test_restore_after_hours_by_policy():
    a = acct(status="shut_off", paid_since_cents=12_000, last_payment_at=at(TUE, 19), last_payment_id=8)
    d = restore(a)
    assert d.order.scheduled_date == TUE and "after hours" in d.reason and "$200.00" in d.reason
    low = restore(dataclasses.replace(a, low_income=True))
    assert "$150.00" in low.reason  # SB 998's after-hours cap
    nxt = dataclasses.replace(
        POLICY, restore=dataclasses.replace(POLICY.restore, after_hours="next_business_day")
    )
    assert restore(a, policy=nxt).order.scheduled_date == TUE + dt.timedelta(days=1)


def test_no_restore_while_unpaid_or_already_ordered():
    assert restore(acct(status="shut_off")) is None
    open_restore = billing.OpenOrder(51, "restore", "new", at(TUE))
    assert restore(acct(status="shut_off", paid_since_cents=12_000, open_orders=(open_restore,))) is None
    assert restore(acct(status="shut_off", arrangement_id=3, arrangement_made=TUE)) is not None


# ---------------------------------------------------------------- field work


def test_moves_are_ordered_within_the_lead_time():
    move = field.MoveFacts(1, "MR1", "move_in", TUE + dt.timedelta(days=1), 3, None, "Ana", 7)
    d = field.move_rule(move, POLICY, TUE)
    assert d.order.order_type is OrderType.TURN_ON and d.order.scheduled_date == TUE + dt.timedelta(days=1)
    assert "initial read" in d.reason
    later = dataclasses.replace(move, requested_date=TUE + dt.timedelta(days=2))
    assert field.move_rule(later, POLICY, TUE) is None
    out = dataclasses.replace(move, kind="move_out")
    assert field.move_rule(out, POLICY, TUE).order.order_type is OrderType.TURN_OFF


def test_a_late_move_request_keeps_its_requested_day():
    """A move-in asked for yesterday is due yesterday (planning shows it as carried over), not re-dated."""
    late = field.MoveFacts(2, "MR2", "move_in", TUE - dt.timedelta(days=1), 3, None, "Bo", 7)
    d = field.move_rule(late, POLICY, TUE)
    assert d.order.scheduled_date == TUE - dt.timedelta(days=1) and "requested for 2026-11-16" in d.reason


def test_periodic_tests_by_size_and_the_open_ceiling():
    small = field.TestDueFacts(1, "S1", "5/8", 3, 5, dt.date(2016, 11, 17), None)  # due today
    big = field.TestDueFacts(
        2, "B1", '2"', 4, 6, dt.date(2022, 11, 18), None
    )  # 4-year interval: due tomorrow
    bigger = field.TestDueFacts(3, "B2", "2", 4, 6, dt.date(2020, 1, 1), None)
    made = field.periodic_test_rule([small, big, bigger], POLICY, TUE)
    assert [d.meter_id for d in made if d.outcome is Outcome.CREATE] == [3, 1]
    full = field.periodic_test_rule(
        [small, bigger], POLICY, TUE, open_periodic=POLICY.meter_test.max_open_periodic - 1
    )
    assert [d.outcome for d in full] == [Outcome.CREATE, Outcome.HOLD]
    assert full[1].meter_id == 1 and "waiting" in full[1].reason


def test_a_district_run_counts_the_meters_waiting_under_the_ceiling_in_one_hold():
    due = [
        field.TestDueFacts(i, f"S{i}", "5/8", i, i, dt.date(2010, 1, 1) + dt.timedelta(days=i), None)
        for i in range(1, 6)
    ]
    cap = POLICY.meter_test.max_open_periodic
    out = field.periodic_test_rule(due, POLICY, TUE, open_periodic=cap - 2, itemize_waiting=False)
    assert [d.meter_id for d in out if d.outcome is Outcome.CREATE] == [1, 2]  # oldest due first
    (waiting,) = [d for d in out if d.outcome is Outcome.HOLD]
    assert waiting.count == 3 and waiting.meter_id is None
    assert "3 meters" in waiting.reason and "2020-01-04" in waiting.reason  # meter 3: 10 years on


def _test_fields(accuracies, *, recommendation=None):
    """A meter test's typed result (contracts.forms) with these accuracies at low, intermediate, high."""
    points = [
        {
            "point": name,
            "flow_gpm": gpm,
            "meter_volume": acc,
            "reference_volume": 100.0,
            "accuracy_pct": acc,
            "min_pct": low,
            "max_pct": 101.5,
            "passed": low <= acc <= 101.5,
        }
        for (name, gpm, low), acc in zip(
            (("low", 0.25, 90.0), ("intermediate", 2.0, 98.5), ("high", 15.0, 98.5)), accuracies, strict=True
        )
    ]
    passed = all(p["passed"] for p in points)
    return {
        "form": "meter_test",
        "meter_id": "7",
        "meter_size": "5/8",
        "points": points,
        "passed": passed,
        "billing_accuracy_pct": (accuracies[1] + accuracies[2]) / 2,
        "recommendation": recommendation or ("keep" if passed else "replace"),
    }


def test_failed_test_raises_a_change_out():
    """A failed test (or a 'replace' advice) raises a change-out naming the failed points; a pass does not."""
    failed = field.CompletedTestFacts(70, 7, 3, 5, at(TUE), {"fields": _test_fields([95.0, 96.0, 96.2])})
    d = field.change_out_rule(failed, POLICY)
    assert d.order.order_type is OrderType.METER_EXCHANGE and "billing accuracy 96.1%" in d.reason
    assert "intermediate 96% (accepted 98.5-101.5%)" in d.reason
    replace = field.CompletedTestFacts(
        71, 7, 3, 5, at(TUE), {"fields": _test_fields([99.0, 100.0, 100.0], recommendation="replace")}
    )
    assert field.change_out_rule(replace, POLICY) is not None
    passed = field.CompletedTestFacts(72, 7, 3, 5, at(TUE), {"fields": _test_fields([99.0, 100.0, 100.0])})
    assert field.change_out_rule(passed, POLICY) is None
    assert field.change_out_rule(field.CompletedTestFacts(73, 7, 3, 5, at(TUE), {}), POLICY) is None


def test_a_test_result_that_does_not_fit_its_form_is_held_for_review():
    """A stored meter-test result missing a flow point's volume is a hold naming the field, not a guess."""
    fields = _test_fields([95.0, 96.0, 96.2])
    del fields["points"][1]["meter_volume"]
    d = field.change_out_rule(field.CompletedTestFacts(74, 7, 3, 5, at(TUE), {"fields": fields}), POLICY)
    assert d.outcome is Outcome.HOLD and "points[1].meter_volume: missing" in d.reason


def test_rule_names_are_the_cli_names():
    assert {r.value for r in Rule} == {
        "reread",
        "leak",
        "theft",
        "shutoff",
        "pull",
        "restore",
        "moves",
        "meter_test",
        "change_out",
    }


def test_times_in_reasons_are_local_and_name_the_zone():
    """A reason a supervisor reads names its times in the utility's zone with the abbreviation
    ("final notice 2026-11-13 11:00 PST"), never bare or in UTC."""
    created = shutoff(acct(final_notice_at=at(dt.date(2026, 11, 13), 11).astimezone(dt.UTC)))
    assert "final notice 2026-11-13 11:00 PST" in created.reason
    late = shutoff(acct(final_notice_at=at(TUE - dt.timedelta(days=2), 8, 1).astimezone(dt.UTC)))
    assert "final notice posted 2026-11-15 08:01 PST" in late.reason
    paid = acct(status="shut_off", paid_since_cents=12_000, last_payment_at=at(TUE, 19), last_payment_id=8)
    assert "paid after hours 2026-11-17 19:00 PST" in restore(paid).reason
