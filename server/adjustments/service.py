"""Adjustments: gather the facts a calculator needs, and the approval workflow with authority and audit.

proposed -> approved | changed (with a reason) | rejected; changed -> approved | changed | rejected.
Who may approve what is the adjustment policy's `[authority]`; nobody approves what they proposed or
changed; a kind the policy names needs two different approvers. Every decision is one audit event
(entity "adjustment": who, when, before/after, why), in the same transaction as the change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.accounts.models import Account, Customer
from server.adjustments import calculators as calc
from server.adjustments.calculators import BillFacts, Working
from server.adjustments.models import Adjustment, Bill, BillLine
from server.adjustments.policy import KINDS, AdjustmentPolicy, current_adjustment_policy
from server.adjustments.rates import RateBook, RateError, current_rates
from server.audit.service import record
from server.auth.models import User
from server.auth.service import Principal
from server.db import utcnow
from server.errors import ApiError
from server.meters.models import Meter, MeterRead
from server.orders.policy import current_policy

OPEN = ("proposed", "changed")
STATUSES = ("proposed", "changed", "approved", "rejected")


class AdjustmentError(ApiError):
    """A request the adjustment rules refuse, with the reason (422 for bad input, 409 for the workflow)."""

    def __init__(self, message: str, *, status: int = 409, code: str = "adjustment_refused") -> None:
        super().__init__(status, code, message)


def _bad_input(message: str) -> AdjustmentError:
    return AdjustmentError(message, status=422, code="invalid_adjustment")


# ---- facts ----


def bill_facts(*, db_session: Session, bills: list[Bill]) -> list[BillFacts]:
    """The calculators' view of stored bills: class and meter size from the account and meter, lines by component."""
    if not bills:
        return []
    ids = [b.id for b in bills]
    lines: dict[int, dict[str, int]] = {}
    for bill_id, component, cents in db_session.execute(
        select(BillLine.bill_id, BillLine.component, BillLine.amount_cents).where(BillLine.bill_id.in_(ids))
    ):
        lines.setdefault(bill_id, {})[component] = cents
    classes = _pairs(
        db_session.execute(
            select(Account.id, Account.service_class).where(Account.id.in_({b.account_id for b in bills}))
        )
    )
    sizes = _pairs(
        db_session.execute(
            select(Meter.id, Meter.size).where(Meter.id.in_({b.meter_id for b in bills if b.meter_id}))
        )
    )
    out = []
    for b in bills:
        if b.meter_id is None:
            raise _bad_input(f"bill {b.cis_bill_id} names no meter, so its fixed charge cannot be rated")
        out.append(
            BillFacts(
                bill_id=b.cis_bill_id,
                customer_class=classes[b.account_id],
                meter_size=sizes[b.meter_id],
                start=b.period_start_date,
                end=b.period_end_date,
                consumption=_frac(b.consumption),
                unit=b.unit,
                estimated=b.estimated,
                start_reading=None if b.start_reading is None else _frac(b.start_reading),
                end_reading=None if b.end_reading is None else _frac(b.end_reading),
                start_read_at=b.start_read_at,
                end_read_at=b.end_read_at,
                lines=lines.get(b.id, {}),
            )
        )
    return out


def _pairs(rows: Any) -> dict[Any, Any]:
    return {key: value for key, value in rows}


def _frac(value: float) -> Fraction:
    # Stored as NUMERIC(16,4): the float's 4-decimal text is the exact stored value.
    return Fraction(f"{value:.4f}")


def _account(db_session: Session, account_id: int) -> Account:
    account = db_session.get(Account, account_id)
    if account is None:
        raise ApiError(404, "not_found", f"account {account_id} does not exist")
    return account


def _bills_by_cis_id(db_session: Session, account: Account, ids: Any) -> list[Bill]:
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise _bad_input("bill_ids: give a list of the CIS bill ids")
    bills = list(db_session.scalars(select(Bill).where(Bill.cis_bill_id.in_(ids))))
    found = {b.cis_bill_id: b for b in bills}
    missing = [i for i in ids if i not in found]
    if missing:
        raise _bad_input(f"bill_ids: no bill {', '.join(missing)}")
    foreign = [b.cis_bill_id for b in bills if b.account_id != account.id]
    if foreign:
        raise _bad_input(
            f"bill_ids: {', '.join(foreign)} belong to another account than {account.account_number}"
        )
    return [found[i] for i in ids]


def _date(inputs: dict[str, Any], key: str, *, required: bool = False) -> dt.date | None:
    value = inputs.get(key)
    if value in (None, ""):
        if required:
            raise _bad_input(f"{key}: is required (YYYY-MM-DD)")
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _bad_input(f"{key}: {value!r} is not a date (YYYY-MM-DD)") from None


def _register(meter: Meter) -> tuple[Fraction, int, str]:
    """Register capacity as displayed (10^(dials - decimals)), multiplier and unit."""
    return Fraction(10) ** (meter.dials - meter.decimals), meter.multiplier, meter.unit


def _read(db_session: Session, read_id: Any, key: str) -> MeterRead:
    if isinstance(read_id, bool) or not isinstance(read_id, int):
        raise _bad_input(f"{key}: give a read id (a whole number)")
    read = db_session.get(MeterRead, read_id)
    if read is None:
        raise _bad_input(f"{key}: read {read_id} does not exist")
    return read


# ---- one gatherer per kind: inputs (JSON) -> the calculator's Working ----


def _reread_correction(
    db_session: Session,
    account: Account,
    inputs: dict[str, Any],
    book: RateBook,
    policy: AdjustmentPolicy,
    zone: ZoneInfo,
) -> Working:
    wrong: MeterRead | None
    right: MeterRead | None
    if "read_id" in inputs:
        read = _read(db_session, inputs["read_id"], "read_id")
        if read.corrects_read_id is not None:
            wrong, right = db_session.get(MeterRead, read.corrects_read_id), read
        elif read.superseded_by_id is not None:
            wrong, right = read, db_session.get(MeterRead, read.superseded_by_id)
        else:
            raise _bad_input(
                f"read_id: read {read.id} neither corrects another read nor was corrected by one"
            )
        assert wrong is not None and right is not None
        corrected_reading = _frac(right.reading)
    else:
        wrong = _read(db_session, inputs.get("wrong_read_id"), "wrong_read_id")
        raw = inputs.get("corrected_reading")
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise _bad_input("corrected_reading: give the verified register reading")
        try:
            corrected_reading = Fraction(str(raw))
        except ValueError:
            raise _bad_input(f"corrected_reading: {raw!r} is not a reading") from None
    meter = db_session.get(Meter, wrong.meter_id)
    assert meter is not None
    bills = list(
        db_session.scalars(
            select(Bill).where(
                Bill.meter_id == meter.id,
                Bill.account_id == account.id,
                or_(Bill.start_read_at == wrong.read_at, Bill.end_read_at == wrong.read_at),
            )
        )
    )
    capacity, multiplier, unit = _register(meter)
    return calc.reread_correction(
        book,
        policy,
        bills=bill_facts(db_session=db_session, bills=bills),
        wrong_read_at=wrong.read_at,
        wrong_reading=_frac(wrong.reading),
        corrected_reading=corrected_reading,
        capacity=capacity,
        multiplier=multiplier,
        meter_unit=unit,
        max_rollover_fraction=current_policy().reads.rollover_max_fraction,
    )


def _accuracy_points(inputs: dict[str, Any]) -> dict[str, float]:
    points = inputs.get("points")
    if isinstance(points, list):  # contracts.forms.MeterTestFields.points, as the tablet sent them
        try:
            return {str(p["point"]): float(p["accuracy_pct"]) for p in points}
        except (KeyError, TypeError, ValueError):
            raise _bad_input("points: each needs point and accuracy_pct") from None
    if isinstance(points, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in points.values()
    ):
        return {str(k): float(v) for k, v in points.items()}
    raise _bad_input("points: give {flow point: accuracy %} or the meter test form's points")


def _meter_test(
    db_session: Session,
    account: Account,
    inputs: dict[str, Any],
    book: RateBook,
    policy: AdjustmentPolicy,
    zone: ZoneInfo,
) -> Working:
    points = _accuracy_points(inputs)
    test_date = _date(inputs, "test_date", required=True)
    assert test_date is not None
    meter_id = inputs.get("meter_id")
    meter = db_session.get(Meter, meter_id) if isinstance(meter_id, int) else None
    if meter is None:
        raise _bad_input(f"meter_id: no meter {meter_id!r}")
    last_test = _date(inputs, "last_test_date") or meter.last_test_date or meter.install_date
    if last_test == test_date:  # the CIS already holds the new test date: the one before is unknown
        last_test = meter.install_date
    cap_months = max(policy.meter_test.refund_max_months, policy.meter_test.backbill_max_months)
    since = calc.add_months(test_date, -cap_months)
    bills = list(
        db_session.scalars(
            select(Bill)
            .where(
                Bill.account_id == account.id,
                Bill.meter_id == meter.id,
                Bill.period_end_date > since,
                Bill.period_start_date < test_date,
            )
            .order_by(Bill.period_start_date)
        )
    )
    return calc.meter_test(
        book,
        policy,
        bills=bill_facts(db_session=db_session, bills=bills),
        points=points,
        test_date=test_date,
        error_start_date=_date(inputs, "error_start_date"),
        last_test_date=last_test,
    )


def _leak_credit(
    db_session: Session,
    account: Account,
    inputs: dict[str, Any],
    book: RateBook,
    policy: AdjustmentPolicy,
    zone: ZoneInfo,
) -> Working:
    bills = _bills_by_cis_id(db_session, account, inputs.get("bill_ids"))
    repair = inputs.get("repair_proven")
    if not isinstance(repair, bool):
        raise _bad_input("repair_proven: true or false")
    first = min(b.period_start_date for b in bills)
    history = list(
        db_session.scalars(
            select(Bill)
            .where(Bill.account_id == account.id, Bill.period_end_date <= first)
            .order_by(Bill.period_start_date)
        )
    )
    previous = [
        at.astimezone(zone).date()
        for at in db_session.scalars(
            select(Adjustment.decided_at).where(
                Adjustment.account_id == account.id,
                Adjustment.kind == "leak_credit",
                Adjustment.status == "approved",
            )
        )
        if at is not None
    ]
    return calc.leak_credit(
        book,
        policy,
        bills=bill_facts(db_session=db_session, bills=bills),
        history=bill_facts(db_session=db_session, bills=history),
        repair_proven=repair,
        previous_credit_dates=previous,
        on=_date(inputs, "on") or dt.datetime.now(zone).date(),
    )


def _fee_reversal(
    db_session: Session,
    account: Account,
    inputs: dict[str, Any],
    book: RateBook,
    policy: AdjustmentPolicy,
    zone: ZoneInfo,
) -> Working:
    bill_id = inputs.get("bill_id")
    bills = _bills_by_cis_id(db_session, account, [bill_id] if isinstance(bill_id, str) else None)
    components = inputs.get("components")
    if not isinstance(components, list) or not components or not all(isinstance(c, str) for c in components):
        raise _bad_input('components: give the fee components to reverse, e.g. ["late_fee"]')
    after_hours = inputs.get("after_hours", False)
    if not isinstance(after_hours, bool):
        raise _bad_input("after_hours: true or false")
    customer = db_session.get(Customer, account.customer_id)
    restore = current_policy().restore  # the legal caps live with the restore rule: one place
    bill = bills[0]
    lines = _pairs(
        db_session.execute(
            select(BillLine.component, BillLine.amount_cents).where(BillLine.bill_id == bill.id)
        )
    )
    facts = BillFacts(
        bill_id=bill.cis_bill_id,
        customer_class=account.service_class,
        meter_size="",
        start=bill.period_start_date,
        end=bill.period_end_date,
        consumption=_frac(bill.consumption),
        unit=bill.unit,
        lines=lines,
    )
    return calc.fee_reversal(
        policy,
        bill=facts,
        components=components,
        low_income=bool(customer and customer.low_income),
        after_hours=after_hours,
        reconnection_cap_cents=restore.low_income_fee_cap_cents,
        after_hours_reconnection_cap_cents=restore.low_income_after_hours_fee_cap_cents,
    )


def _estimate_true_up(
    db_session: Session,
    account: Account,
    inputs: dict[str, Any],
    book: RateBook,
    policy: AdjustmentPolicy,
    zone: ZoneInfo,
) -> Working:
    actual = _read(db_session, inputs.get("actual_read_id"), "actual_read_id")
    if actual.estimated or actual.source == "estimate":
        raise _bad_input(f"actual_read_id: read {actual.id} is an estimate")
    meter = db_session.get(Meter, actual.meter_id)
    assert meter is not None
    before = list(
        db_session.scalars(
            select(Bill)
            .where(
                Bill.account_id == account.id,
                Bill.meter_id == meter.id,
                Bill.period_end_date <= actual.read_at.astimezone(zone).date(),
            )
            .order_by(Bill.period_start_date.desc())
        )
    )
    estimated: list[Bill] = []
    for bill in before:  # the unbroken run of estimated bills just before the actual read
        if not bill.estimated:
            break
        estimated.append(bill)
    if not estimated:
        raise AdjustmentError(f"no estimated bill comes before read {actual.id}; nothing to true up")
    first = estimated[-1]
    if first.start_reading is None:
        raise AdjustmentError(
            f"bill {first.cis_bill_id} does not carry its opening reading; true it up by hand"
        )
    capacity, multiplier, unit = _register(meter)
    return calc.estimate_true_up(
        book,
        policy,
        bills=bill_facts(db_session=db_session, bills=estimated),
        start_reading=_frac(first.start_reading),
        actual_reading=_frac(actual.reading),
        actual_read_date=actual.read_at.astimezone(zone).date(),
        capacity=capacity,
        multiplier=multiplier,
        meter_unit=unit,
        max_rollover_fraction=current_policy().reads.rollover_max_fraction,
    )


GATHERERS = {
    "reread_correction": _reread_correction,
    "meter_test": _meter_test,
    "leak_credit": _leak_credit,
    "fee_reversal": _fee_reversal,
    "estimate_true_up": _estimate_true_up,
}


def _zone() -> ZoneInfo:
    from server.config import get_settings

    return ZoneInfo(get_settings().timezone)


def preview(*, db_session: Session, kind: str, account_id: int, inputs: dict[str, Any]) -> Working:
    """What an adjustment of `kind` would be, with its working, without storing anything."""
    if kind not in GATHERERS:
        raise _bad_input(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(inputs, dict):
        raise _bad_input("inputs: must be an object")
    account = _account(db_session, account_id)
    try:
        return GATHERERS[kind](
            db_session, account, inputs, current_rates(), current_adjustment_policy(), _zone()
        )
    except RateError as exc:
        raise AdjustmentError(f"cannot rate: {exc}", status=422, code="cannot_rate") from None


# ---- workflow ----


def _snapshot(adj: Adjustment) -> dict[str, Any]:
    return {
        "status": adj.status,
        "amount_cents": adj.amount_cents,
        "approvals": list(adj.approvals or []),
        "inputs": adj.inputs,
    }


def _audit(
    db_session: Session, adj: Adjustment, *, actor: str, action: str, before: dict[str, Any] | None, why: str
) -> None:
    record(
        db_session=db_session,
        actor=actor,
        action=action,
        entity_type="adjustment",
        entity_id=adj.id,
        detail={"before": before, "after": _snapshot(adj), "why": why, "kind": adj.kind},
    )


def propose(
    *,
    db_session: Session,
    kind: str,
    account_id: int,
    inputs: dict[str, Any],
    proposed_by: str,
    source_result_id: int | None = None,
    note: str = "",
) -> Adjustment:
    """Compute and store a proposed adjustment (AdjustmentError when the rules give nothing to propose)."""
    working = preview(db_session=db_session, kind=kind, account_id=account_id, inputs=inputs)
    if working.outcome != "adjust":
        raise AdjustmentError(f"nothing to propose: {working.reason}", code=f"adjustment_{working.outcome}")
    adj = Adjustment(
        kind=kind,
        status="proposed",
        account_id=account_id,
        source_result_id=source_result_id,
        amount_cents=working.amount_cents,
        inputs=inputs,
        working=working.as_dict(),
        note=note,
        proposed_by=proposed_by,
        approvals=[],
        change_reason="",
        decision_reason="",
    )
    db_session.add(adj)
    db_session.flush()
    _audit(db_session, adj, actor=proposed_by, action="proposed", before=None, why=note or working.reason)
    return adj


def get(*, db_session: Session, adjustment_id: int) -> Adjustment:
    """One adjustment, or a 404 naming it."""
    adj = db_session.get(Adjustment, adjustment_id)
    if adj is None:
        raise ApiError(404, "not_found", f"adjustment {adjustment_id} does not exist")
    return adj


def _open(adj: Adjustment, version: int | None, what: str) -> None:
    if adj.status not in OPEN:
        raise AdjustmentError(f"adjustment {adj.id} is already {adj.status}; it cannot be {what}")
    if version is not None and version != adj.version:
        raise ApiError(
            409,
            "stale_version",
            f"adjustment {adj.id} changed since you read it (version {version}, now {adj.version}); reload it",
        )


def change(
    *,
    db_session: Session,
    adjustment_id: int,
    changed_by: str,
    reason: str,
    inputs: dict[str, Any] | None = None,
    amount_cents: int | None = None,
    version: int | None = None,
) -> Adjustment:
    """Recompute with new inputs, or set the amount by hand, with a reason; approvals so far are dropped."""
    adj = get(db_session=db_session, adjustment_id=adjustment_id)
    _open(adj, version, "changed")
    if not reason.strip():
        raise _bad_input("reason: say why the adjustment is changed")
    if inputs is None and amount_cents is None:
        raise _bad_input("give new inputs or an amount_cents")
    before = _snapshot(adj)
    if inputs is not None:
        working = preview(db_session=db_session, kind=adj.kind, account_id=adj.account_id, inputs=inputs)
        if working.outcome != "adjust":
            raise AdjustmentError(
                f"the new inputs give nothing to adjust: {working.reason}",
                code=f"adjustment_{working.outcome}",
            )
        adj.inputs, adj.working, adj.amount_cents = inputs, working.as_dict(), working.amount_cents
    if amount_cents is not None:
        if amount_cents == 0:
            raise _bad_input("amount_cents: an adjustment of 0 is nothing; reject it instead")
        working_dict = dict(adj.working)
        working_dict["steps"] = [
            *working_dict.get("steps", []),
            {"step": "amount set by hand", "value": amount_cents, "detail": f"{changed_by}: {reason}"},
        ]
        working_dict["amount_cents"] = amount_cents
        adj.working, adj.amount_cents = working_dict, amount_cents
    adj.status = "changed"
    adj.changed_by = changed_by
    adj.change_reason = reason
    adj.approvals = []
    adj.updated_at = utcnow()
    db_session.flush()
    _audit(db_session, adj, actor=changed_by, action="changed", before=before, why=reason)
    return adj


@dataclass(frozen=True)
class Authority:
    """What one person may approve of one adjustment, and why not."""

    limit_cents: int | None
    refusal: str | None


def authority(*, db_session: Session, principal: Principal, adjustment: Adjustment) -> Authority:
    """Whether `principal` may approve `adjustment` now (role, amount, kind, not their own, not twice)."""
    policy = current_adjustment_policy()
    role = principal.role.value
    limit = policy.authority.limit_for(role, adjustment.kind)
    if limit is None or principal.role in (Role.CSFR, Role.STATION):
        return Authority(None, f"a {role} approves no adjustments")
    if principal.user_id is not None:
        own = db_session.scalar(select(User.authority_limit_cents).where(User.id == principal.user_id))
        if own:
            limit = min(limit, own)
    if principal.name == adjustment.proposed_by:
        return Authority(limit, "nobody approves an adjustment they proposed")
    if principal.name == adjustment.changed_by:
        return Authority(limit, "nobody approves an adjustment they changed")
    if any(a.get("by") == principal.name for a in adjustment.approvals or []):
        return Authority(limit, "you have approved it already; it needs a second, different approver")
    amount = abs(adjustment.amount_cents)
    if amount > limit:
        return Authority(
            limit,
            f"{calc.money(amount)} is over your authority of {calc.money(limit)} for a "
            f"{adjustment.kind.replace('_', ' ')}; it needs someone with a higher limit (a supervisor)",
        )
    return Authority(limit, None)


def approve(
    *,
    db_session: Session,
    adjustment_id: int,
    principal: Principal,
    reason: str = "",
    version: int | None = None,
) -> Adjustment:
    """Approve within authority (403 naming why not); kinds needing two approvers stay open after the first."""
    adj = get(db_session=db_session, adjustment_id=adjustment_id)
    _open(adj, version, "approved")
    verdict = authority(db_session=db_session, principal=principal, adjustment=adj)
    if verdict.refusal:
        raise ApiError(
            403, "over_authority" if "authority" in verdict.refusal else "forbidden", verdict.refusal
        )
    before = _snapshot(adj)
    now = utcnow()
    adj.approvals = [
        *(adj.approvals or []),
        {"by": principal.name, "role": principal.role.value, "at": now.isoformat()},
    ]
    needed = 2 if adj.kind in current_adjustment_policy().authority.two_approver_kinds else 1
    if len(adj.approvals) >= needed:
        adj.status = "approved"
        adj.decided_by, adj.decided_at, adj.decision_reason = principal.name, now, reason
        action = "approved"
    else:
        action = f"approved {len(adj.approvals)} of {needed}"
    adj.updated_at = now
    db_session.flush()
    _audit(db_session, adj, actor=principal.name, action=action, before=before, why=reason)
    return adj


def reject(
    *,
    db_session: Session,
    adjustment_id: int,
    principal: Principal,
    reason: str,
    version: int | None = None,
) -> Adjustment:
    """Reject with a reason; only a role that approves adjustments may (never its proposer)."""
    adj = get(db_session=db_session, adjustment_id=adjustment_id)
    _open(adj, version, "rejected")
    if current_adjustment_policy().authority.limit_for(
        principal.role.value, adj.kind
    ) is None or principal.role in (Role.CSFR, Role.STATION):
        raise ApiError(403, "forbidden", f"a {principal.role.value} decides no adjustments")
    if not reason.strip():
        raise _bad_input("reason: say why the adjustment is rejected")
    before = _snapshot(adj)
    adj.status = "rejected"
    adj.decided_by, adj.decided_at, adj.decision_reason = principal.name, utcnow(), reason
    adj.updated_at = adj.decided_at
    db_session.flush()
    _audit(db_session, adj, actor=principal.name, action="rejected", before=before, why=reason)
    return adj


@dataclass(frozen=True)
class AdjustmentPage:
    items: list[Adjustment]
    total: int


def list_adjustments(
    *,
    db_session: Session,
    kind: str | None = None,
    status: str | None = None,
    account_id: int | None = None,
    min_amount_cents: int | None = None,
    max_amount_cents: int | None = None,
    older_than_days: int | None = None,
    newer_than_days: int | None = None,
    source_result_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
    now: dt.datetime | None = None,
) -> AdjustmentPage:
    """Adjustments by filter, oldest first (a queue); amounts compare by absolute value."""
    if kind is not None and kind not in KINDS:
        raise _bad_input(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if status is not None and status not in STATUSES:
        raise _bad_input(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    now = now or utcnow()
    query = select(Adjustment)
    if kind:
        query = query.where(Adjustment.kind == kind)
    if status:
        query = query.where(Adjustment.status == status)
    if account_id is not None:
        query = query.where(Adjustment.account_id == account_id)
    if source_result_id is not None:
        query = query.where(Adjustment.source_result_id == source_result_id)
    if min_amount_cents is not None:
        query = query.where(func.abs(Adjustment.amount_cents) >= min_amount_cents)
    if max_amount_cents is not None:
        query = query.where(func.abs(Adjustment.amount_cents) <= max_amount_cents)
    if older_than_days is not None:
        query = query.where(Adjustment.created_at <= now - dt.timedelta(days=older_than_days))
    if newer_than_days is not None:
        query = query.where(Adjustment.created_at >= now - dt.timedelta(days=newer_than_days))
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(
        db_session.scalars(
            query.order_by(Adjustment.created_at, Adjustment.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    )
    return AdjustmentPage(items, total)


def account_bills(*, db_session: Session, account_id: int) -> list[Bill]:
    """An account's bills, oldest first."""
    return list(
        db_session.scalars(select(Bill).where(Bill.account_id == account_id).order_by(Bill.period_start_date))
    )


def bill_lines(*, db_session: Session, bill_ids: list[int]) -> dict[int, list[BillLine]]:
    """Lines of each bill, by bill id."""
    out: dict[int, list[BillLine]] = {}
    for line in db_session.scalars(
        select(BillLine).where(BillLine.bill_id.in_(bill_ids)).order_by(BillLine.id)
    ):
        out.setdefault(line.bill_id, []).append(line)
    return out
