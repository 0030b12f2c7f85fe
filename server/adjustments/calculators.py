"""Adjustment calculators: pure functions over bills, readings and policy, each showing its working.

Every calculator returns a `Working`: the inputs it used, each step (a label, a value, a sentence), the
bills it re-rated line by line, and the result in integer cents. Sign: a positive amount is charged to
the customer (a back-bill), a negative one is credited (a refund). `outcome` is "adjust" when there is
something to propose, "none" when the rules say nothing is due (a meter inside its limits, an amount
under the minimum), and "refused" when the request breaks a rule (a leak credit within the
once-per-period window); `reason` says which, in words an advisor can read to a customer.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from server.adjustments.policy import AdjustmentPolicy
from server.adjustments.rates import RateBook, convert
from server.adjustments.rating import is_rated, rate_period, rerate, round_cents, show

Outcome = Literal["adjust", "none", "refused"]


@dataclass(frozen=True)
class BillFacts:
    """A bill as the calculators need it (built from the stored bill by the service)."""

    bill_id: str
    customer_class: str
    meter_size: str
    start: dt.date
    end: dt.date
    consumption: Fraction  # in `unit`
    unit: str
    estimated: bool = False
    start_reading: Fraction | None = None  # register readings as displayed
    end_reading: Fraction | None = None
    start_read_at: dt.datetime | None = None
    end_read_at: dt.datetime | None = None
    lines: dict[str, int] = field(default_factory=dict)  # billed cents by component

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def summary(self) -> dict[str, Any]:
        return {
            "bill_id": self.bill_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "consumption": show(self.consumption),
            "unit": self.unit,
            "estimated": self.estimated,
        }


@dataclass
class Working:
    """A calculation shown step by step; `as_dict()` is what the API and the advisor's page render."""

    kind: str
    inputs: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    bills: list[dict[str, Any]] = field(default_factory=list)
    amount_cents: int = 0
    outcome: Outcome = "none"
    reason: str = ""

    def step(self, label: str, value: object, detail: str = "") -> None:
        self.steps.append({"step": label, "value": value, "detail": detail})

    def finish(self, amount_cents: int, outcome: Outcome, reason: str) -> Working:
        self.amount_cents = amount_cents if outcome == "adjust" else 0
        self.outcome = outcome
        self.reason = reason
        self.step("result", self.amount_cents, reason)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "inputs": self.inputs,
            "steps": self.steps,
            "bills": self.bills,
            "amount_cents": self.amount_cents,
            "outcome": self.outcome,
            "reason": self.reason,
        }


def money(cents: int) -> str:
    """-1234 -> '-$12.34'."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole calendar months (the 31st becomes the month's last day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def _frac(value: Fraction | Decimal | float | int) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(Decimal(str(value)))
    return Fraction(value)


def _rerate_bill(book: RateBook, bill: BillFacts, corrected: Fraction) -> dict[str, Any]:
    result = rerate(
        book,
        customer_class=bill.customer_class,
        meter_size=bill.meter_size,
        start=bill.start,
        end=bill.end,
        consumption=bill.consumption,
        corrected_consumption=corrected,
        unit=bill.unit,
    )
    billed = sum(cents for component, cents in bill.lines.items() if is_rated(component))
    return {
        **bill.summary(),
        "corrected_consumption": show(corrected),
        "rerating": result.as_dict(),
        # What the CIS charged for the rated components, beside what the rate book gives for the same
        # consumption: a difference means the bill was not charged by this rate book (check the file).
        "billed_rated_cents": billed if bill.lines else None,
        "rated_matches_billed": (billed == result.before.total_cents) if bill.lines else None,
        "difference_cents": result.difference_cents,
    }


def register_use(
    start: Fraction, end: Fraction, *, capacity: Fraction, max_rollover_fraction: float
) -> tuple[Fraction, bool]:
    """Register units used from `start` to `end`, and whether the register rolled over.

    A reading behind the one before is a rollover (use = capacity - start + end) only when that use is
    below `max_rollover_fraction` of the capacity; anything else is not a usable reading (ValueError).
    """
    if end >= start:
        return end - start, False
    rolled = capacity - start + end
    if rolled > capacity * _frac(max_rollover_fraction):
        raise ValueError(
            f"reading {show(end)} is behind {show(start)} by more than a rollover explains "
            f"({show(rolled)} of a {show(capacity)} register)"
        )
    return rolled, True


# ---- reread correction ----


def reread_correction(
    book: RateBook,
    policy: AdjustmentPolicy,
    *,
    bills: list[BillFacts],
    wrong_read_at: dt.datetime,
    wrong_reading: Fraction | float,
    corrected_reading: Fraction | float,
    capacity: Fraction | int,
    multiplier: int,
    meter_unit: str,
    max_rollover_fraction: float = 0.5,
) -> Working:
    """A verified reading replaces a wrong one: every bill that opened or closed on it is re-rated."""
    wrong, right = _frac(wrong_reading), _frac(corrected_reading)
    work = Working(
        "reread_correction",
        {
            "wrong_read_at": wrong_read_at.isoformat(),
            "wrong_reading": show(wrong),
            "corrected_reading": show(right),
            "register_capacity": show(_frac(capacity)),
            "multiplier": multiplier,
            "meter_unit": meter_unit,
            "bills": [b.bill_id for b in bills],
        },
    )
    touched = [b for b in bills if wrong_read_at in (b.start_read_at, b.end_read_at)]
    work.step(
        "bills that used the wrong reading",
        [b.bill_id for b in touched],
        f"read at {wrong_read_at.isoformat()}",
    )
    if not touched:
        return work.finish(0, "none", "no bill used the corrected reading")
    total = 0
    for bill in sorted(touched, key=lambda b: b.start):
        if bill.start_reading is None or bill.end_reading is None:
            return work.finish(
                0, "refused", f"bill {bill.bill_id} does not carry its readings; re-rate it by hand"
            )
        start = right if bill.start_read_at == wrong_read_at else bill.start_reading
        end = right if bill.end_read_at == wrong_read_at else bill.end_reading
        try:
            use, rolled = register_use(
                start, end, capacity=_frac(capacity), max_rollover_fraction=max_rollover_fraction
            )
        except ValueError as exc:
            return work.finish(0, "refused", f"bill {bill.bill_id}: {exc}")
        corrected = convert(use * multiplier, meter_unit, bill.unit)
        work.step(
            f"bill {bill.bill_id}: corrected use",
            show(corrected),
            f"({show(end)} - {show(start)}{' + register rollover ' + show(_frac(capacity)) if rolled else ''})"
            f" x {multiplier} {meter_unit} = {show(corrected)} {bill.unit}; billed {show(bill.consumption)}",
        )
        entry = _rerate_bill(book, bill, corrected)
        work.bills.append(entry)
        total += entry["difference_cents"]
        work.step(
            f"bill {bill.bill_id}: difference", entry["difference_cents"], money(entry["difference_cents"])
        )
    minimum = policy.reread.min_amount_cents
    if total == 0:
        return work.finish(0, "none", "the corrected reading does not change what was charged")
    if abs(total) < minimum:
        return work.finish(0, "none", f"{money(total)} is under the minimum adjustment of {money(minimum)}")
    verb = "back-bill" if total > 0 else "credit"
    return work.finish(
        total,
        "adjust",
        f"{verb} {money(abs(total))} over {len(touched)} bill(s) re-rated with the verified reading",
    )


# ---- meter test ----


def billing_accuracy(points: dict[str, float], weights: dict[str, float]) -> Fraction:
    """The weighted mean accuracy (percent) at the policy's flow points."""
    missing = [p for p in weights if p not in points]
    if missing:
        raise ValueError(
            f"the test has no accuracy at the {', '.join(missing)} flow point(s) the policy weighs"
        )
    return sum((_frac(weights[p]) * _frac(points[p]) for p in weights), Fraction(0))


def meter_test(
    book: RateBook,
    policy: AdjustmentPolicy,
    *,
    bills: list[BillFacts],
    points: dict[str, float],
    test_date: dt.date,
    error_start_date: dt.date | None = None,
    last_test_date: dt.date | None = None,
) -> Working:
    """A fast meter beyond the limit refunds, a slow one back-bills, over the policy's look-back."""
    mt = policy.meter_test
    work = Working(
        "meter_test",
        {
            "points": {k: points[k] for k in sorted(points)},
            "test_date": test_date.isoformat(),
            "error_start_date": error_start_date.isoformat() if error_start_date else None,
            "last_test_date": last_test_date.isoformat() if last_test_date else None,
            "bills": [b.bill_id for b in bills],
        },
    )
    try:
        accuracy = billing_accuracy(points, mt.flow_point_weights)
    except ValueError as exc:
        return work.finish(0, "refused", str(exc))
    weights = " + ".join(f"{w:g} x {points[p]:g}% ({p})" for p, w in mt.flow_point_weights.items())
    work.step("billing accuracy", show(accuracy), f"{weights} = {show(accuracy)}%")
    if accuracy > mt.refund_above_pct:
        direction, cap_months = "refund", mt.refund_max_months
    elif accuracy < mt.backbill_below_pct:
        direction, cap_months = "backbill", mt.backbill_max_months
    else:
        work.step("limits", f"{mt.backbill_below_pct:g}-{mt.refund_above_pct:g}%", "inside: no adjustment")
        return work.finish(
            0,
            "none",
            f"the meter registers {show(accuracy, 2)}%, inside {mt.backbill_below_pct:g}-{mt.refund_above_pct:g}%: nothing to adjust",
        )
    if accuracy <= 0:
        return work.finish(
            0,
            "refused",
            "a meter that registers nothing cannot be corrected by its accuracy; estimate instead",
        )
    side = "fast" if direction == "refund" else "slow"
    work.step(
        "limits",
        f"{mt.backbill_below_pct:g}-{mt.refund_above_pct:g}%",
        f"{side}: a {direction.replace('backbill', 'back-bill')}",
    )
    cap_start = add_months(test_date, -cap_months)
    if error_start_date is not None:
        start, why = error_start_date, f"the known start of the error, {error_start_date}"
    elif last_test_date is not None:
        half = (test_date - last_test_date).days // 2
        start, why = (
            test_date - dt.timedelta(days=half),
            f"half the {(test_date - last_test_date).days} days since the last test ({last_test_date})",
        )
    else:
        start, why = cap_start, "no last test or known start: the cap"
    if start < cap_start:
        work.step("look-back", start.isoformat(), f"{why}, capped at {cap_months} months ({direction})")
        start = cap_start
    work.step(
        "look-back from",
        start.isoformat(),
        why if start != cap_start else f"{cap_months}-month {direction} cap: {cap_start}",
    )
    ratio = Fraction(100) / accuracy
    total = 0
    for bill in sorted(bills, key=lambda b: b.start):
        overlap = (min(bill.end, test_date) - max(bill.start, start)).days
        if overlap <= 0 or bill.days <= 0:
            continue
        share = Fraction(overlap, bill.days)
        corrected = bill.consumption * (1 - share) + bill.consumption * share * ratio
        work.step(
            f"bill {bill.bill_id}: corrected consumption",
            show(corrected),
            f"{show(bill.consumption)} / ({show(accuracy)} / 100) over {overlap} of its {bill.days} days",
        )
        entry = _rerate_bill(book, bill, corrected)
        work.bills.append(entry)
        total += entry["difference_cents"]
    if not work.bills:
        return work.finish(
            0, "none", f"no bill falls in the look-back from {start} to the test on {test_date}"
        )
    if direction == "backbill" and mt.backbill_share != 1.0:
        share_total = round_cents(Fraction(total) * _frac(mt.backbill_share))
        work.step("back-bill share", share_total, f"{mt.backbill_share:g} of {money(total)}")
        total = share_total
    if abs(total) < mt.min_amount_cents:
        return work.finish(
            0, "none", f"{money(total)} is under the minimum adjustment of {money(mt.min_amount_cents)}"
        )
    label = "refund" if total < 0 else "back-bill"
    return work.finish(
        total,
        "adjust",
        f"{label} {money(abs(total))}: the meter registers {show(accuracy, 2)}% over {len(work.bills)} bill(s) from {start}",
    )


# ---- leak credit ----


def same_months_normal(
    bill: BillFacts, history: list[BillFacts], *, years: int
) -> tuple[Fraction | None, list[str]]:
    """Mean daily use of the bills covering the same calendar days in up to `years` earlier years, times
    the bill's days (in the bill's unit); None when there is no such bill. Returns the bills used too."""
    used: list[BillFacts] = []
    for back in range(1, years + 1):
        lo, hi = add_months(bill.start, -12 * back), add_months(bill.end, -12 * back)
        for old in history:
            overlap = (min(old.end, hi) - max(old.start, lo)).days
            if old.days > 0 and overlap * 2 >= old.days:  # at least half of it in the same months
                used.append(old)
    if not used:
        return None, []
    per_day = sum((convert(b.consumption, b.unit, bill.unit) / b.days for b in used), Fraction(0)) / len(used)
    return per_day * bill.days, [b.bill_id for b in used]


def leak_credit(
    book: RateBook,
    policy: AdjustmentPolicy,
    *,
    bills: list[BillFacts],
    history: list[BillFacts],
    repair_proven: bool,
    previous_credit_dates: list[dt.date],
    on: dt.date,
) -> Working:
    """A share of the use above the same months' normal, at the policy's price, within the policy's limits."""
    lp = policy.leak
    work = Working(
        "leak_credit",
        {
            "bills": [b.bill_id for b in bills],
            "repair_proven": repair_proven,
            "previous_credit_dates": [d.isoformat() for d in previous_credit_dates],
            "on": on.isoformat(),
        },
    )
    if lp.require_repair_proof and not repair_proven:
        return work.finish(0, "refused", "the policy needs proof that the leak was repaired")
    window = add_months(on, -lp.once_per_months)
    recent = sorted(d for d in previous_credit_dates if d > window)
    work.step(
        "previous leak credits",
        [d.isoformat() for d in previous_credit_dates],
        f"one per {lp.once_per_months} months: since {window}",
    )
    if recent:
        return work.finish(
            0,
            "refused",
            f"a leak credit was already approved on {recent[-1]}; the next may be given from {add_months(recent[-1], lp.once_per_months)} (one per {lp.once_per_months} months)",
        )
    if not bills:
        return work.finish(0, "refused", "name the bill(s) the leak ran up")
    if len(bills) > lp.max_bills:
        return work.finish(
            0, "refused", f"at most {lp.max_bills} bill(s) per leak credit; {len(bills)} given"
        )
    total = Fraction(0)
    for bill in sorted(bills, key=lambda b: b.start):
        normal, used = same_months_normal(bill, history, years=lp.normal_years)
        if normal is None:
            return work.finish(
                0,
                "refused",
                f"bill {bill.bill_id}: no bill of the same months in the last {lp.normal_years} year(s) to take the normal from",
            )
        excess = max(Fraction(0), bill.consumption - normal)
        schedule = book.in_force(bill.customer_class, bill.end - dt.timedelta(days=1))
        if lp.price == "lowest_tier":
            # cents per schedule unit x schedule units per bill unit = cents per bill unit
            price = Fraction(schedule.tiers[0].price_cents) * convert(Fraction(1), bill.unit, schedule.unit)
            how = f"{schedule.name} tier 1: {show(Fraction(schedule.tiers[0].price_cents))} cents per {schedule.unit}"
        else:
            rated = rate_period(
                book,
                customer_class=bill.customer_class,
                meter_size=bill.meter_size,
                start=bill.start,
                end=bill.end,
                consumption=bill.consumption,
                unit=bill.unit,
            )
            volume_cents = sum(line.amount_cents for line in rated.lines if line.component != "fixed")
            price = Fraction(volume_cents) / bill.consumption if bill.consumption else Fraction(0)
            how = f"the bill's average volume price, {show(price)} cents per {bill.unit}"
        credit = _frac(lp.share) * excess * price
        work.step(
            f"bill {bill.bill_id}: normal",
            show(normal),
            f"same months of bills {', '.join(used)}: {show(normal)} {bill.unit} over {bill.days} days",
        )
        work.step(
            f"bill {bill.bill_id}: credit",
            show(credit),
            f"{lp.share:g} x ({show(bill.consumption)} - {show(normal)}) {bill.unit} x {how} = {show(credit)} cents",
        )
        work.bills.append(
            {**bill.summary(), "normal": show(normal), "excess": show(excess), "credit_cents": show(credit)}
        )
        total += credit
    amount = -round_cents(total)
    if amount == 0:
        return work.finish(0, "none", "the bills are not above the same months' normal")
    if abs(amount) < lp.min_amount_cents:
        return work.finish(
            0, "none", f"{money(amount)} is under the minimum adjustment of {money(lp.min_amount_cents)}"
        )
    return work.finish(
        amount,
        "adjust",
        f"credit {money(-amount)}: {lp.share:g} of the use above normal on {len(bills)} bill(s)",
    )


# ---- fee reversal ----


def fee_reversal(
    policy: AdjustmentPolicy,
    *,
    bill: BillFacts,
    components: list[str],
    low_income: bool,
    after_hours: bool,
    reconnection_cap_cents: int,
    after_hours_reconnection_cap_cents: int,
) -> Working:
    """Late fees and delinquency charges reversed whole; a reconnection fee by what it exceeds the legal cap."""
    work = Working(
        "fee_reversal",
        {
            "bill_id": bill.bill_id,
            "components": components,
            "low_income": low_income,
            "after_hours": after_hours,
            "billed": {c: bill.lines.get(c, 0) for c in components},
        },
    )
    total = 0
    for component in components:
        if component not in policy.fees.reversible:
            return work.finish(
                0,
                "refused",
                f"{component!r} is not a fee the policy lets an advisor reverse ({', '.join(sorted(policy.fees.reversible))})",
            )
        billed = bill.lines.get(component, 0)
        if billed <= 0:
            return work.finish(0, "refused", f"bill {bill.bill_id} charged no {component.replace('_', ' ')}")
        if component == "reconnection":
            if not low_income:
                work.step(
                    "reconnection fee",
                    billed,
                    "no legal cap applies: the household is not under 200% of the poverty line",
                )
                continue
            cap = after_hours_reconnection_cap_cents if after_hours else reconnection_cap_cents
            over = max(0, billed - cap)
            work.step(
                "reconnection fee over the cap",
                over,
                f"{money(billed)} charged, cap {money(cap)} ({'after hours' if after_hours else 'business hours'}, low income): reverse {money(over)}",
            )
            total += over
        else:
            work.step(f"{component.replace('_', ' ')} reversed", billed, money(billed))
            total += billed
    if total == 0:
        return work.finish(0, "none", "nothing of these fees is reversible")
    return work.finish(-total, "adjust", f"credit {money(total)} of fees on bill {bill.bill_id}")


# ---- estimated-read true-up ----


def estimate_true_up(
    book: RateBook,
    policy: AdjustmentPolicy,
    *,
    bills: list[BillFacts],
    start_reading: Fraction | float,
    actual_reading: Fraction | float,
    actual_read_date: dt.date,
    capacity: Fraction | int,
    multiplier: int,
    meter_unit: str,
    max_rollover_fraction: float = 0.5,
) -> Working:
    """An actual read after estimates: the real use, spread evenly by day, replaces each estimate."""
    ordered = sorted(bills, key=lambda b: b.start)
    work = Working(
        "estimate_true_up",
        {
            "bills": [b.bill_id for b in ordered],
            "start_reading": show(_frac(start_reading)),
            "actual_reading": show(_frac(actual_reading)),
            "actual_read_date": actual_read_date.isoformat(),
            "multiplier": multiplier,
            "meter_unit": meter_unit,
        },
    )
    if not ordered:
        return work.finish(0, "none", "no estimated bill to true up")
    first_start = ordered[0].start
    if actual_read_date <= first_start:
        return work.finish(
            0,
            "refused",
            f"the actual read ({actual_read_date}) is not after the estimates began ({first_start})",
        )
    try:
        use, rolled = register_use(
            _frac(start_reading),
            _frac(actual_reading),
            capacity=_frac(capacity),
            max_rollover_fraction=max_rollover_fraction,
        )
    except ValueError as exc:
        return work.finish(0, "refused", str(exc))
    span_days = (actual_read_date - first_start).days
    per_day = use * multiplier / span_days
    work.step(
        "actual daily use",
        show(per_day),
        f"({show(_frac(actual_reading))} - {show(_frac(start_reading))}{' + rollover' if rolled else ''}) x {multiplier} {meter_unit} over {span_days} days since {first_start}",
    )
    total = 0
    for bill in ordered:
        corrected = convert(per_day * bill.days, meter_unit, bill.unit)
        work.step(
            f"bill {bill.bill_id}: actual use",
            show(corrected),
            f"{bill.days} days x daily use; estimated {show(bill.consumption)}",
        )
        entry = _rerate_bill(book, bill, corrected)
        work.bills.append(entry)
        total += entry["difference_cents"]
    if total == 0:
        return work.finish(0, "none", "the estimates charged what the actual use costs")
    if abs(total) < policy.true_up.min_amount_cents:
        return work.finish(
            0,
            "none",
            f"{money(total)} is under the minimum adjustment of {money(policy.true_up.min_amount_cents)}",
        )
    label = "back-bill" if total > 0 else "credit"
    return work.finish(
        total,
        "adjust",
        f"{label} {money(abs(total))}: {len(ordered)} estimated bill(s) re-rated with the actual use",
    )
