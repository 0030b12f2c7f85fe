"""Non-payment rules: shut-off (with every reason an account is held back), pull, and restore.

A wrong shut-off is the worst thing a utility can do to a customer, so `shutoff_rule` checks every
condition and, when any fails, says which; a run records those reasons for review.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from contracts.codes import OrderType
from server.orders.calendar import Calendar
from server.orders.policy import Policy
from server.orders.rules.base import Decision, OrderSpec, Outcome, Rule, create, hold
from server.orders.rules.exclusion import ExclusionFacts, Receivable, describe, ended_because
from server.timezone import format_local

STAMP = "%Y-%m-%d %H:%M"  # times in reasons: the utility's zone, its abbreviation after (format_local)


@dataclass(frozen=True, slots=True)
class Hold:
    kind: str
    start: dt.date
    end: dt.date | None

    def active_on(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_id: int
    order_type: str
    status: str
    created_at: dt.datetime
    review_hold: str = ""


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """An account's money, notices and holds as of the run (times are UTC-aware)."""

    account_id: int
    account_number: str
    service_point_id: int
    meter_id: int | None
    status: str
    service_class: str
    occupied: bool
    low_income: bool
    past_due_cents: int
    oldest_past_due_date: dt.date | None
    balance_as_of: dt.datetime | None
    paid_since_cents: int  # payments posted after balance_as_of (the CIS balance may lag)
    last_payment_at: dt.datetime | None
    last_payment_id: int | None
    arrangement_id: int | None  # an active arrangement (made on or before the run date)
    arrangement_made: dt.date | None
    holds: tuple[Hold, ...] = ()
    written_notice_at: dt.datetime | None = None  # latest written notice
    final_notice_at: dt.datetime | None = None  # latest final notice (CIS or a completed delivery order)
    open_orders: tuple[OpenOrder, ...] = field(default_factory=tuple)
    balance_cents: int = 0  # everything owed, as the CIS last reported it
    exclusion: ExclusionFacts | None = None  # the latest exclusion from a shut-off list not lifted
    plan_defaulted_on: dt.date | None = None  # latest payment plan that defaulted (SB 998 clock)

    @property
    def receivable(self) -> Receivable:
        """What the account owes and its latest payment (an exclusion ends when this changes)."""
        return Receivable(self.balance_cents, self.past_due_cents, self.last_payment_id, self.last_payment_at)

    @property
    def owed_cents(self) -> int:
        """Past due less what has been paid since the balance was reported."""
        return max(0, self.past_due_cents - self.paid_since_cents)

    def open_of(self, order_type: OrderType) -> list[OpenOrder]:
        return [o for o in self.open_orders if o.order_type == order_type.value]


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def shutoff_rule(
    acct: AccountFacts, policy: Policy, cal: Calendar, run_date: dt.date, zone: ZoneInfo
) -> Decision | None:
    """A shut-off (for review), a final-notice delivery, a hold with its reason, or None (not delinquent)."""
    p = policy.shutoff
    if acct.status != "active" or acct.owed_cents < p.min_past_due_cents or acct.past_due_cents <= 0:
        return None
    if not p.enabled:
        return hold(
            Rule.SHUTOFF, "shut-offs are disabled by policy (shutoff.enabled)", account_id=acct.account_id
        )
    if acct.service_class not in p.service_classes:
        return hold(
            Rule.SHUTOFF,
            f"service class {acct.service_class} is not subject to shut-off (shutoff.service_classes)",
            account_id=acct.account_id,
        )
    if acct.open_of(OrderType.SHUT_OFF_NONPAY):
        return None  # already on a list; the pull rule watches it
    reasons: list[str] = []
    days = (run_date - acct.oldest_past_due_date).days if acct.oldest_past_due_date else 0
    if days < p.min_days_delinquent:
        reasons.append(f"{days} days delinquent, under the {p.min_days_delinquent} required")
    if acct.arrangement_id is not None:
        reasons.append(f"active payment arrangement (made {acct.arrangement_made})")
    for h in acct.holds:
        if h.kind in p.hold_kinds and h.active_on(run_date):
            until = f" until {h.end}" if h.end else ""
            reasons.append(f"{h.kind.replace('_', ' ')} hold{until}")
    sb998_notice = protected_reasons(acct, policy, cal, run_date, zone, reasons)
    # Notices: a written notice after the debt began, far enough back.
    written = acct.written_notice_at
    began = acct.oldest_past_due_date
    need_final_delivery = False
    if written is None or (began is not None and written.astimezone(zone).date() < began):
        reasons.append("no written notice served for this debt")
    else:
        served = written.astimezone(zone).date()
        passed = cal.business_days_between(served, run_date)
        if passed < p.written_notice_business_days:
            reasons.append(
                f"written notice served {served}: {passed} of {p.written_notice_business_days} business days passed"
            )
        elif p.final_notice_required:
            final = acct.final_notice_at
            start_of_day = dt.datetime.combine(run_date, policy.calendar.business_hours_start, tzinfo=zone)
            if final is None or final < written:
                reasons.append(NO_FINAL_NOTICE)
                need_final_delivery = True
            elif final + dt.timedelta(hours=p.final_notice_hours) > start_of_day:
                reasons.append(
                    f"final notice posted {format_local(final, zone, fmt=STAMP)}: "
                    f"its {p.final_notice_hours} hours are not over before the day starts"
                )
    forbidden = cal.shutoff_forbidden(run_date, p)
    if forbidden:
        reasons.append(forbidden)
    if reasons:
        blocking = [r for r in reasons if r not in (NO_FINAL_NOTICE, NO_SB998_NOTICE)]
        need_final_delivery = need_final_delivery or sb998_notice
        if need_final_delivery and p.deliver_final_notice and not blocking_for_notice(blocking, acct):
            if acct.open_of(OrderType.NOTICE_DELIVERY):
                return hold(Rule.SHUTOFF, "final notice delivery is under way", account_id=acct.account_id)
            return create(
                Rule.SHUTOFF,
                f"{_money(acct.owed_cents)} past due for {days} days; written notice served "
                f"{written.astimezone(zone).date() if written else '?'}; "
                + (
                    f"SB 998 protected customer whose payment plan defaulted {acct.plan_defaulted_on}: a final "
                    f"notice must be posted at the property {p.protected_final_notice_business_days} business "
                    "days before a shut-off"
                    if sb998_notice
                    else f"the final notice must be posted {p.final_notice_hours} hours before a shut-off"
                ),
                OrderSpec(
                    OrderType.NOTICE_DELIVERY,
                    key=(
                        f"notice:sb998:{acct.account_id}:{acct.plan_defaulted_on}"
                        if sb998_notice
                        else f"notice:final:{acct.account_id}:{written.isoformat() if written else ''}"
                    ),
                    service_point_id=acct.service_point_id,
                    account_id=acct.account_id,
                    meter_id=acct.meter_id,
                    scheduled_date=run_date,
                ),
            )
        return hold(Rule.SHUTOFF, "held back: " + "; ".join(reasons), account_id=acct.account_id)
    assert written is not None
    ended = ""
    if acct.exclusion is not None:
        why = ended_because(acct.exclusion, acct.receivable, run_date)
        if why is None:  # a supervisor took it off the list and it still holds: shown, not raised
            return Decision(
                Rule.SHUTOFF, Outcome.EXCLUDED, describe(acct.exclusion), account_id=acct.account_id
            )
        ended = f"; earlier {describe(acct.exclusion)} - ended: {why}"
    reason = f"{_money(acct.owed_cents)} past due for {days} days; written notice {written.astimezone(zone).date()}"
    if acct.final_notice_at is not None:
        reason += f"; final notice {format_local(acct.final_notice_at, zone, fmt=STAMP)}"
    start, end = cut_window(policy, cal, run_date, zone)
    reason += f"; cut between {start.astimezone(zone):%H:%M} and {end.astimezone(zone):%H:%M}"
    reason += ended
    return create(
        Rule.SHUTOFF,
        reason,
        OrderSpec(
            OrderType.SHUT_OFF_NONPAY,
            key=f"shutoff:{acct.account_id}:{run_date.isoformat()}",
            service_point_id=acct.service_point_id,
            account_id=acct.account_id,
            meter_id=acct.meter_id,
            scheduled_date=run_date,
            window_start=start,
            window_end=end,
            needs_review=p.batch_review,
        ),
    )


def cut_window(
    policy: Policy, cal: Calendar, day: dt.date, zone: ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """The hours a shut-off may be done on `day` (UTC-aware): shutoff.cut_hours_start to cut_hours_end, ending
    by shutoff.cut_end_before_closure when the office is closed the next day (a weekend day or holiday), so a
    customer cut off has a working day to pay and be restored. The order carries it as its window, so the
    planner never schedules a cut outside it.
    """
    p = policy.shutoff
    end_at = p.cut_hours_end
    if not cal.is_business_day(day + dt.timedelta(days=1)):
        end_at = min(end_at, p.cut_end_before_closure)
    start = dt.datetime.combine(day, p.cut_hours_start, tzinfo=zone)
    end = dt.datetime.combine(day, end_at, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


NO_FINAL_NOTICE = "no final notice posted at the premise yet"
NO_SB998_NOTICE = "SB 998: no final notice posted at the property since the plan's default days ran"


def protected_reasons(
    acct: AccountFacts, policy: Policy, cal: Calendar, run_date: dt.date, zone: ZoneInfo, reasons: list[str]
) -> bool:
    """Add SB 998's protected-customer reasons (HSC 116910) to `reasons`; True when only a posted notice is missing.

    Protected: an active medical_certificate hold, an active cannot_pay hold and a payment plan. While the
    plan is active the arrangement holds the account already; once it defaulted, a cut waits for
    shutoff.protected_plan_default_days of default and shutoff.protected_final_notice_business_days business
    days after a final notice posted at the property after them.
    """
    p = policy.shutoff
    active = {h.kind for h in acct.holds if h.active_on(run_date)}
    if not {"medical_certificate", "cannot_pay"} <= active:
        return False
    if acct.arrangement_id is not None:
        reasons.append("SB 998 protected customer (medical certificate, cannot pay, payment plan)")
        return False
    defaulted = acct.plan_defaulted_on
    if defaulted is None:
        return False  # no plan accepted: not protected by SB 998 (hold_kinds may still hold it)
    eligible = defaulted + dt.timedelta(days=p.protected_plan_default_days)
    if run_date < eligible:
        reasons.append(
            f"SB 998 protected customer: payment plan defaulted {defaulted}, "
            f"{(run_date - defaulted).days} of {p.protected_plan_default_days} days"
        )
        return False
    posted = acct.final_notice_at.astimezone(zone).date() if acct.final_notice_at else None
    if posted is None or posted < eligible:
        reasons.append(NO_SB998_NOTICE)
        return True
    passed = cal.business_days_between(posted, run_date)
    if passed < p.protected_final_notice_business_days:
        reasons.append(
            f"SB 998 protected customer: final notice posted {posted}, "
            f"{passed} of {p.protected_final_notice_business_days} business days passed"
        )
    return False


def blocking_for_notice(reasons: list[str], acct: AccountFacts) -> bool:
    """Whether anything other than the calendar stops the final notice being posted.

    A notice may be posted on a day shut-offs are forbidden (it only starts the clock), but not to an
    account under arrangement or hold, or one that is not delinquent long enough.
    """
    calendar_words = ("holiday", "no shut-offs on a", "no-shut-off day")
    return any(not any(w in r for w in calendar_words) for r in reasons)


def pull_rule(acct: AccountFacts, policy: Policy, run_date: dt.date) -> list[Decision]:
    """Cancel open shut-offs (and final-notice deliveries) the account no longer qualifies for."""
    decisions = []
    pending = acct.open_of(OrderType.SHUT_OFF_NONPAY) + acct.open_of(OrderType.NOTICE_DELIVERY)
    if not pending:
        return decisions
    why = None
    if acct.owed_cents < policy.shutoff.min_past_due_cents:
        paid = (
            f"; {_money(acct.paid_since_cents)} paid since {acct.balance_as_of:%Y-%m-%d}"
            if acct.paid_since_cents and acct.balance_as_of
            else ""
        )
        why = f"owes {_money(acct.owed_cents)}, under the {_money(policy.shutoff.min_past_due_cents)} threshold{paid}"
    elif acct.arrangement_id is not None:
        why = f"payment arrangement made {acct.arrangement_made}"
    else:
        for h in acct.holds:
            if h.kind in policy.shutoff.hold_kinds and h.active_on(run_date):
                why = f"{h.kind.replace('_', ' ')} hold from {h.start}"
                break
    if why is None:
        return decisions
    for order in pending:
        decisions.append(
            Decision(
                Rule.PULL,
                Outcome.CANCEL,
                f"pulled: {why}",
                account_id=acct.account_id,
                cancel_order_id=order.order_id,
            )
        )
    return decisions


def restore_window(
    acct: AccountFacts, policy: Policy, cal: Calendar, run_date: dt.date, zone: ZoneInfo
) -> tuple[dt.date, dt.datetime, dt.datetime, bool]:
    """When a restore is planned: (day, window start, window end, after hours), the window UTC-aware.

    A restore is done by the day crew, inside business hours, whenever the day it is due is a business
    day and the payment came before that day's close: a payment at 06:00 or yesterday at 19:00 is
    restored on this morning's run. Only a payment after the close restored the same evening by an
    after-hours crew (restore.after_hours = "same_day"), or a restore due on a weekend or holiday, is
    planned after hours. With "next_business_day" every restore waits for business hours.
    """
    p = policy.restore
    hours = policy.calendar
    paid_at = acct.last_payment_at.astimezone(zone) if acct.last_payment_at else None
    day = max(run_date, paid_at.date()) if paid_at is not None else run_date
    same_evening = (
        paid_at is not None
        and paid_at.date() == day
        and cal.is_business_day(day)
        and paid_at.time() >= hours.business_hours_end
    )
    if p.after_hours == "next_business_day" and (same_evening or not cal.is_business_day(day)):
        day = cal.next_business_day(day)
        same_evening = False
    if cal.is_business_day(day) and not same_evening:
        start = dt.datetime.combine(day, hours.business_hours_start, tzinfo=zone)
        end = dt.datetime.combine(day, hours.business_hours_end, tzinfo=zone)
        if paid_at is not None and paid_at > start:
            start = paid_at
        return day, start.astimezone(dt.UTC), end.astimezone(dt.UTC), False
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    if paid_at is not None and paid_at > start:
        start = paid_at
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return day, start.astimezone(dt.UTC), end.astimezone(dt.UTC), True


def reconnection_fee(
    *, restored_at: dt.datetime, low_income: bool, policy: Policy, cal: Calendar, zone: ZoneInfo
) -> tuple[int, bool]:
    """The reconnection fee (cents) for service reconnected at `restored_at`, and whether that was after hours.

    SB 998 (Health and Safety Code 116914) caps the fee for a household under 200% of the federal
    poverty line by when service is RECONNECTED: restore.low_income_fee_cap_cents in business hours,
    restore.low_income_after_hours_fee_cap_cents after hours. The same clock decides every customer's
    fee (restore.fee_cents / restore.after_hours_fee_cents). Business hours: calendar.business_hours_* on a
    business day (not a weekend day, holiday or utility closure).
    """
    p = policy.restore
    local = restored_at.astimezone(zone)
    after_hours = not (
        cal.is_business_day(local.date())
        and policy.calendar.business_hours_start <= local.time() < policy.calendar.business_hours_end
    )
    fee = p.after_hours_fee_cents if after_hours else p.fee_cents
    if low_income:
        fee = min(fee, p.low_income_after_hours_fee_cap_cents if after_hours else p.low_income_fee_cap_cents)
    return fee, after_hours


def restore_rule(
    acct: AccountFacts, policy: Policy, cal: Calendar, run_date: dt.date, zone: ZoneInfo
) -> Decision | None:
    """Restore a shut-off account once it is paid (or under arrangement), in the window `restore_window` plans.

    The reason states the planned window and the reconnection fee for it (`reconnection_fee`, SB 998's
    clock: when service is reconnected, not when the customer paid). The order carries the day, not the
    window (a window makes an order an appointment the planner drops on any other day, and a restore not
    reached must carry over); the fee billed is `reconnection_fee` at the completion time.
    """
    if acct.status != "shut_off":
        return None
    p = policy.restore
    if acct.owed_cents > p.max_remaining_past_due_cents and acct.arrangement_id is None:
        return None
    if acct.open_of(OrderType.RESTORE):
        return None
    paid_at = acct.last_payment_at.astimezone(zone) if acct.last_payment_at else None
    paid_after_hours = paid_at is not None and not (
        cal.is_business_day(paid_at.date())
        and policy.calendar.business_hours_start <= paid_at.time() < policy.calendar.business_hours_end
    )
    day, start, end, after_hours = restore_window(acct, policy, cal, run_date, zone)
    fee, _ = reconnection_fee(
        restored_at=end - dt.timedelta(minutes=1) if after_hours else start,
        low_income=acct.low_income,
        policy=policy,
        cal=cal,
        zone=zone,
    )
    why = (
        f"payment arrangement {acct.arrangement_id}"
        if acct.owed_cents > p.max_remaining_past_due_cents
        else f"past due cleared (owes {_money(acct.owed_cents)})"
    )
    paid = (
        f"; paid {'after hours' if paid_after_hours else 'in business hours'} {format_local(paid_at, zone, fmt=STAMP)}"
        if paid_at
        else ""
    )
    window = f"{start.astimezone(zone):%H:%M}-{end.astimezone(zone):%H:%M}".replace("-00:00", "-24:00")
    return create(
        Rule.RESTORE,
        f"{why}{paid}; restore on {day} {window}, {'after hours' if after_hours else 'in business hours'}; "
        f"reconnection fee {_money(fee)}"
        + (" (SB 998 low-income cap)" if acct.low_income else "")
        + " by reconnection time",
        OrderSpec(
            OrderType.RESTORE,
            key=f"restore:{acct.account_id}:{marker(acct)}",
            service_point_id=acct.service_point_id,
            account_id=acct.account_id,
            meter_id=acct.meter_id,
            scheduled_date=day,
        ),
    )


def marker(acct: AccountFacts) -> str:
    return f"pay{acct.last_payment_id}" if acct.last_payment_id else f"arr{acct.arrangement_id}"
