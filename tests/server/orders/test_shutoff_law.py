"""Shut-off and restore to the letter of the law (issue 22): worked examples from SB 998 and the policy.

Each test names the statute (SB 998, Health and Safety Code 116900-116926) or the policy key it pins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from server.orders.calendar import Calendar
from server.orders.policy import WEEKDAYS, load_policy
from server.orders.rules import billing

ZONE = ZoneInfo("America/Los_Angeles")
POLICY = load_policy()
CAL = Calendar.of(POLICY.calendar)
TUE = dt.date(2026, 11, 17)
WED = dt.date(2026, 11, 18)


def at(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE)


def acct(**kw) -> billing.AccountFacts:
    base = dict(
        account_id=9,
        account_number="A9",
        service_point_id=3,
        meter_id=7,
        status="shut_off",
        service_class="residential",
        occupied=True,
        low_income=True,
        past_due_cents=12_000,
        oldest_past_due_date=TUE - dt.timedelta(days=75),
        balance_as_of=at(TUE - dt.timedelta(days=1), 6),
        paid_since_cents=12_000,
        last_payment_at=at(TUE, 19),
        last_payment_id=8,
        arrangement_id=None,
        arrangement_made=None,
    )
    return billing.AccountFacts(**(base | kw))


def with_restore(**kw):
    return dataclasses.replace(POLICY, restore=dataclasses.replace(POLICY.restore, **kw))


# ------------------------------------------------ 1. reconnection fee by the reconnection clock


def test_sb998_hsc_116914_paid_tuesday_evening_restored_wednesday_morning_pays_the_business_hours_cap():
    """SB 998 (HSC 116914): the cap follows when service is RECONNECTED. Paid Tue 19:00, restored on
    Wednesday's run (business hours): the low-income fee is the $50.00 cap, not the $150.00 after-hours cap."""
    d = billing.restore_rule(acct(), POLICY, CAL, WED, ZONE)
    assert d.order.scheduled_date == WED
    assert "in business hours" in d.reason.split("restore on")[1]
    assert "reconnection fee $50.00 (SB 998 low-income cap)" in d.reason
    assert "paid after hours" in d.reason  # the payment's time is stated, but does not set the fee
    other = billing.restore_rule(acct(low_income=False), POLICY, CAL, WED, ZONE)
    assert "reconnection fee $75.00" in other.reason  # restore.fee_cents, not after_hours_fee_cents


def test_sb998_hsc_116914_same_evening_after_hours_restore_pays_the_after_hours_cap():
    """restore.after_hours = "same_day": paid Tue 19:00 and restored that evening by the after-hours crew:
    after hours, so the $150.00 cap (low income) and the $200.00 after-hours fee (others)."""
    d = billing.restore_rule(acct(), POLICY, CAL, TUE, ZONE)
    assert d.order.scheduled_date == TUE and "19:00-24:00, after hours" in d.reason
    assert "$150.00" in d.reason
    assert "$200.00" in billing.restore_rule(acct(low_income=False), POLICY, CAL, TUE, ZONE).reason


def test_sb998_hsc_116914_next_business_day_policy_never_charges_after_hours():
    """restore.after_hours = "next_business_day": the evening payment is restored on Wednesday in business
    hours, so the business-hours cap applies even when the rule runs on Tuesday evening."""
    d = billing.restore_rule(acct(), with_restore(after_hours="next_business_day"), CAL, TUE, ZONE)
    assert (
        d.order.scheduled_date == WED
        and "$50.00" in d.reason
        and "08:00-17:00, in business hours" in d.reason
    )


def test_sb998_hsc_116914_early_morning_payment_restored_in_business_hours():
    """Paid 06:30 on a business day, restored by the day crew: business hours ($50.00 cap), where the old
    rule charged the after-hours cap by the payment's time."""
    d = billing.restore_rule(acct(last_payment_at=at(TUE, 6, 30)), POLICY, CAL, TUE, ZONE)
    assert "08:00-17:00, in business hours" in d.reason and "$50.00" in d.reason


def test_sb998_hsc_116914_restore_on_a_holiday_is_after_hours():
    """Thanksgiving 2026-11-26 is a holiday: a restore that day (same-day policy) is after hours all day,
    even at 10:00; with next_business_day it waits for Friday's business hours."""
    thanksgiving = dt.date(2026, 11, 26)
    paid = acct(last_payment_at=at(thanksgiving, 10))
    d = billing.restore_rule(paid, POLICY, CAL, thanksgiving, ZONE)
    assert d.order.scheduled_date == thanksgiving and "after hours" in d.reason.split("restore on")[1]
    assert "$150.00" in d.reason
    nxt = billing.restore_rule(paid, with_restore(after_hours="next_business_day"), CAL, thanksgiving, ZONE)
    assert nxt.order.scheduled_date == dt.date(2026, 11, 27) and "$50.00" in nxt.reason


@pytest.mark.parametrize(
    ("when", "low_income", "fee", "after_hours"),
    [
        (at(WED, 8, 0), True, 5000, False),  # opening minute: business hours
        (at(WED, 16, 59), True, 5000, False),
        (at(WED, 17, 0), True, 15000, True),  # closing minute: after hours
        (at(WED, 7, 59), False, 20000, True),
        (at(WED, 12, 0), False, 7500, False),
        (at(dt.date(2026, 11, 26), 12, 0), True, 15000, True),  # Thanksgiving noon
        (at(dt.date(2026, 11, 21), 12, 0), False, 20000, True),  # Saturday noon
    ],
)
def test_sb998_hsc_116914_reconnection_fee_by_the_time_service_is_reconnected(
    when, low_income, fee, after_hours
):
    """`reconnection_fee` (the fee billed at completion): business hours are calendar.business_hours_start
    (inclusive) to business_hours_end (exclusive) on a business day; the low-income caps are
    restore.low_income_fee_cap_cents / low_income_after_hours_fee_cap_cents (SB 998: $50 / $150)."""
    got = billing.reconnection_fee(restored_at=when, low_income=low_income, policy=POLICY, cal=CAL, zone=ZONE)
    assert got == (fee, after_hours)


# ------------------------------------------------ 2. the business day before a holiday


def shutoff_policy(*weekdays: str):
    return dataclasses.replace(
        POLICY.shutoff, forbidden_weekdays=frozenset(WEEKDAYS.index(w) for w in weekdays)
    )


FRIDAYS_ALLOWED = shutoff_policy("sat", "sun")
FRIDAYS_FORBIDDEN = shutoff_policy("fri", "sat", "sun")


@pytest.mark.parametrize(
    ("day", "holiday", "fridays"),
    [
        (dt.date(2026, 9, 4), "Labor Day", FRIDAYS_ALLOWED),  # Friday before Labor Day Monday 09-07
        (dt.date(2026, 11, 25), "Thanksgiving", FRIDAYS_ALLOWED),  # Wednesday before Thursday 11-26
        (dt.date(2026, 11, 25), "Thanksgiving", FRIDAYS_FORBIDDEN),
        (dt.date(2026, 7, 2), "Independence Day", FRIDAYS_ALLOWED),  # July 4 a Saturday: observed Fri 07-03
        (dt.date(2026, 7, 2), "Independence Day", FRIDAYS_FORBIDDEN),
        (dt.date(2027, 7, 2), "Independence Day", FRIDAYS_ALLOWED),  # July 4 a Sunday: observed Mon 07-05
        (dt.date(2026, 9, 5), "Labor Day", shutoff_policy()),  # a weekend day before it, if cuts run then
    ],
)
def test_shutoff_no_shutoff_day_before_holiday_means_the_business_day_before(day, holiday, fridays):
    """shutoff.no_shutoff_day_before_holiday: no cut on the last business day before a holiday, however
    many weekend days lie between (the old rule looked only at the next calendar day, so with Fridays
    allowed Friday 2026-09-04 got shut-offs before Labor Day Monday)."""
    why = CAL.shutoff_forbidden(day, fridays)
    assert why is not None and "business day before a holiday" in why and holiday in why


@pytest.mark.parametrize(
    ("day", "fridays", "expect"),
    [
        (dt.date(2026, 9, 4), FRIDAYS_FORBIDDEN, "Friday"),  # forbidden as a Friday first
        (dt.date(2026, 9, 3), FRIDAYS_FORBIDDEN, None),  # Thursday: Friday is a business day after it
        (dt.date(2026, 9, 3), FRIDAYS_ALLOWED, None),
        (dt.date(2027, 7, 2), FRIDAYS_FORBIDDEN, "Friday"),
        (dt.date(2027, 7, 1), FRIDAYS_FORBIDDEN, None),
        (dt.date(2026, 11, 13), FRIDAYS_ALLOWED, None),  # an ordinary Friday before an ordinary weekend
    ],
)
def test_shutoff_business_day_before_holiday_leaves_other_days_alone(day, fridays, expect):
    """shutoff.forbidden_weekdays and no_shutoff_day_before_holiday together: only the business day right
    before the closure is blocked, an ordinary Friday (when allowed) and the Thursday before a Friday are not."""
    why = CAL.shutoff_forbidden(day, fridays)
    assert (why is None) if expect is None else (expect in why)


# ------------------------------------------------ 3. low reads on every account; low / very low


def classify(**kw):
    from server.orders.rules import reads

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


@pytest.mark.parametrize("occupied", [True, False])
def test_reads_low_factor_flags_low_use_on_unoccupied_accounts_too(occupied):
    """reads.low_factor (DOMAIN.md: low below 40% of the seasonal norm) applies to every account; only zero
    use is limited to active, occupied accounts. 30 of a norm of 100 is low whether or not anyone lives there."""
    v = classify(use=30.0, active_occupied=occupied)
    assert (v.validation, v.reread) == ("low", True) and "under 0.4 times" in v.reason


def test_reads_zero_use_on_an_unoccupied_account_is_expected():
    """Zero use is flagged only on an active, occupied account (reads.zero_use_meter_test_cycles)."""
    assert classify(use=0.0, active_occupied=False).reread is False
    assert classify(use=0.0, active_occupied=True).validation == "zero"


def test_reads_very_low_factor_splits_low_like_high_and_very_high():
    """reads.very_low_factor (0.1): under 10% of the norm is 'very_low', 10-40% 'low', 40% and up ok."""
    assert classify(use=9.0).validation == "very_low" and "under 0.1 times" in classify(use=9.0).reason
    assert classify(use=10.0).validation == "low"
    assert classify(use=40.0).validation == "ok"


def test_reads_very_low_factor_above_low_factor_is_refused(tmp_path):
    """A policy whose very-low factor is above its low factor names the key."""
    from server.orders.policy import PolicyError

    f = tmp_path / "p.toml"
    f.write_text("[reads]\nvery_low_factor = 0.5\n")
    with pytest.raises(PolicyError, match=r"reads\.very_low_factor: must not be above"):
        load_policy(f)


def test_reads_limits_for_an_unoccupied_account_have_a_low_end():
    """reading_limits asks classify, so the tablet and hand-held limits of an unoccupied account now have a
    low end at 40% of the norm (use 40 on a norm of 100 from a previous reading of 1000)."""
    from server.orders.rules import reads

    low, high = reads.reading_limits(
        previous=1000.0,
        norm=100.0,
        history_count=12,
        active_occupied=False,
        dials=6,
        decimals=0,
        policy=POLICY.reads,
    )
    assert (low, high) == (1040.0, 1250.0)


# ------------------------------------------------ 4. hours of day for cuts


def shutoff_acct(**kw):
    base = dict(
        status="active",
        low_income=False,
        paid_since_cents=0,
        last_payment_at=None,
        last_payment_id=None,
        written_notice_at=at(TUE - dt.timedelta(days=14)),
        final_notice_at=at(TUE - dt.timedelta(days=3), 11),
    )
    return acct(**(base | kw))


def test_shutoff_cut_hours_are_the_orders_window():
    """shutoff.cut_hours_start / cut_hours_end (08:00-16:00): the shut-off order carries them as its window."""
    d = billing.shutoff_rule(shutoff_acct(), POLICY, CAL, TUE, ZONE)
    assert d.order.window_start == at(TUE, 8).astimezone(dt.UTC)
    assert d.order.window_end == at(TUE, 16).astimezone(dt.UTC)
    assert "cut between 08:00 and 16:00" in d.reason


def test_shutoff_cut_end_before_closure_on_a_friday():
    """shutoff.cut_end_before_closure (12:00): with Fridays allowed, a Friday cut (the office closed the next
    day) must be done by noon."""
    friday = dt.date(2026, 11, 20)
    d = billing.shutoff_rule(
        shutoff_acct(), dataclasses.replace(POLICY, shutoff=FRIDAYS_ALLOWED), CAL, friday, ZONE
    )
    assert (d.order.window_start, d.order.window_end) == (
        at(friday, 8).astimezone(dt.UTC),
        at(friday, 12).astimezone(dt.UTC),
    )


def test_shutoff_cut_window_is_not_an_appointment():
    """A cut window is the policy's hours, not a promise: the plan values a shut-off as a shut-off
    (dispatch.value_minutes.shut_off), not as an appointment (dispatch.appointment_value_minutes)."""
    from server.dispatch.value import value_of
    from server.orders.models import WorkOrder

    order = WorkOrder(
        order_type="shut_off_nonpay",
        priority="shut_off",
        window_start=at(TUE, 8),
        window_end=at(TUE, 16),
        scheduled_date=TUE,
    )
    value = value_of(order, due=TUE, plan_date=TUE, policy=POLICY, calendar=CAL, overtime_floor=None)
    assert value < POLICY.dispatch.appointment_value_minutes * 60


# ------------------------------------------------ 5. holidays from a maintained source


def california(**kw) -> Calendar:
    return Calendar.of(dataclasses.replace(POLICY.calendar, subdivision="CA", **kw))


def test_calendar_subdivision_ca_adds_the_states_holidays():
    """calendar.country / calendar.subdivision = "US" / "CA": Cesar Chavez Day (2026-03-31) and the day after
    Thanksgiving (2026-11-27) close the office, from the `holidays` package; the federal default keeps them open."""
    ca = california()
    assert ca.holiday(dt.date(2026, 3, 31)) == "Cesar Chavez Day"
    assert ca.holiday(dt.date(2026, 11, 27)) == "Day After Thanksgiving"
    assert CAL.holiday(dt.date(2026, 3, 31)) is None and CAL.is_business_day(dt.date(2026, 11, 27))
    # Business days count the state's closures: Wed 11-25 -> Mon 11-30 is one business day in California.
    assert ca.business_days_between(dt.date(2026, 11, 25), dt.date(2026, 11, 30)) == 1
    assert CAL.business_days_between(dt.date(2026, 11, 25), dt.date(2026, 11, 30)) == 2


def test_calendar_holidays_are_the_utilitys_own_closures_on_top():
    """calendar.holidays: the utility's own closure days (a furlough Monday) add to the public ones, and the
    business day before one gets no cut (shutoff.no_shutoff_day_before_holiday)."""
    furlough = dt.date(2026, 10, 19)
    cal = california(holidays=frozenset({furlough}))
    assert cal.holiday(furlough) == "utility holiday" and not cal.is_business_day(furlough)
    assert "business day before a holiday (utility holiday)" in cal.shutoff_forbidden(
        dt.date(2026, 10, 16), FRIDAYS_ALLOWED
    )


def test_calendar_public_holidays_off_and_the_older_key(tmp_path):
    """calendar.public_holidays = false observes none; a file from before this change that says
    us_federal_holidays = false still means the same; an unknown country or state is refused by key."""
    from server.orders.policy import PolicyError

    old = tmp_path / "old.toml"
    old.write_text("[calendar]\nus_federal_holidays = false\n")
    assert Calendar.of(load_policy(old).calendar).holiday(dt.date(2026, 11, 26)) is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[calendar]\nsubdivision = "XX"\n')
    with pytest.raises(PolicyError, match=r"calendar\.subdivision: unknown subdivision 'XX' of US"):
        load_policy(bad)
    bad.write_text('[calendar]\ncountry = "QQ"\n')
    with pytest.raises(PolicyError, match=r"calendar\.country: unknown country 'QQ'"):
        load_policy(bad)


def test_california_thanksgiving_wednesday_and_friday():
    """With subdivision "CA" and Fridays allowed, the Wednesday before Thanksgiving is still the business
    day before a holiday, and the Friday after is a holiday itself (SB 998 keys on the office's closed days)."""
    ca = california()
    assert "Thanksgiving" in ca.shutoff_forbidden(dt.date(2026, 11, 25), FRIDAYS_ALLOWED)
    assert "Day After Thanksgiving" in ca.shutoff_forbidden(dt.date(2026, 11, 27), FRIDAYS_ALLOWED)


# ------------------------------------------------ 6. SB 998's protected customer


SB998_EXACT = dataclasses.replace(
    POLICY, shutoff=dataclasses.replace(POLICY.shutoff, hold_kinds=frozenset({"dispute"}))
)
CERT = billing.Hold("medical_certificate", TUE - dt.timedelta(days=200), None)
CANNOT_PAY = billing.Hold("cannot_pay", TUE - dt.timedelta(days=200), None)


def protected(**kw):
    return shutoff_acct(holds=(CERT, CANNOT_PAY), **kw)


def test_sb998_hsc_116910_protected_customer_on_an_active_plan_is_never_cut():
    """SB 998 (HSC 116910): medical certificate + cannot-pay statement + accepted plan -> no shut-off, even
    with the law's exact setting (medical_certificate left out of shutoff.hold_kinds)."""
    d = billing.shutoff_rule(protected(arrangement_id=4, arrangement_made=TUE), SB998_EXACT, CAL, TUE, ZONE)
    assert d.outcome.value == "hold" and "SB 998 protected customer" in d.reason


def test_sb998_hsc_116910_plan_default_waits_60_days():
    """shutoff.protected_plan_default_days (60): a protected customer whose plan defaulted 59 days ago is held."""
    d = billing.shutoff_rule(
        protected(plan_defaulted_on=TUE - dt.timedelta(days=59)), SB998_EXACT, CAL, TUE, ZONE
    )
    assert d.outcome.value == "hold" and "payment plan defaulted" in d.reason and "59 of 60 days" in d.reason


def test_sb998_hsc_116910_posted_final_notice_after_the_default_then_5_business_days():
    """After 60 days of default the 48-hour notice posted before is not enough: a new final notice is posted at
    the property (a notice-delivery order), and the cut waits shutoff.protected_final_notice_business_days (5)
    business days after it."""
    defaulted = TUE - dt.timedelta(days=70)
    before = at(TUE - dt.timedelta(days=20), 10)  # the 48-hour notice, posted before the 60 days ran
    d = billing.shutoff_rule(
        protected(plan_defaulted_on=defaulted, final_notice_at=before), SB998_EXACT, CAL, TUE, ZONE
    )
    assert d.outcome.value == "create" and d.order.order_type.value == "notice_delivery"
    assert d.order.key == f"notice:sb998:9:{defaulted}" and "5 business days" in d.reason
    posted = at(TUE - dt.timedelta(days=6), 10)  # Wed 11-11 (Veterans Day): 4 business days to Tue 11-17
    early = billing.shutoff_rule(
        protected(plan_defaulted_on=defaulted, final_notice_at=posted), SB998_EXACT, CAL, TUE, ZONE
    )
    assert early.outcome.value == "hold" and "4 of 5 business days" in early.reason
    posted = at(TUE - dt.timedelta(days=8), 10)  # Mon 11-09: 5 business days (11-11 a holiday)
    cut = billing.shutoff_rule(
        protected(plan_defaulted_on=defaulted, final_notice_at=posted), SB998_EXACT, CAL, TUE, ZONE
    )
    assert cut.outcome.value == "create" and cut.order.order_type.value == "shut_off_nonpay"


def test_sb998_default_policy_is_stricter_a_medical_certificate_alone_holds():
    """The default shutoff.hold_kinds keeps medical_certificate: a certificate alone holds (more protective
    than SB 998, which is lawful), so a protected customer past the default and the posted notice still waits."""
    posted = at(TUE - dt.timedelta(days=8), 10)
    d = billing.shutoff_rule(
        protected(plan_defaulted_on=TUE - dt.timedelta(days=70), final_notice_at=posted),
        POLICY,
        CAL,
        TUE,
        ZONE,
    )
    assert d.outcome.value == "hold" and "medical certificate hold" in d.reason
