"""The seam to the money half (server.adjustments): the inputs a result gives each calculator, the amount
and working it returns, proposals, and bills.

Results never compute money themselves: a review item's amount and working are the adjustment
calculator's (`server.adjustments.service.preview`), and accepting it proposes an Adjustment through the
adjustments workflow (`propose`, `change`), where authority and approvals apply.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.config import get_settings
from server.errors import ApiError
from server.meters.models import MeterRead
from server.results.models import FieldOutcome

log = logging.getLogger("curbstop.results")


class AdjustmentKind(StrEnum):
    """The adjustments a result can lead to (kinds of server.adjustments)."""

    REREAD_CORRECTION = "reread_correction"
    METER_TEST = "meter_test"
    LEAK_CREDIT = "leak_credit"
    ESTIMATE_TRUE_UP = "estimate_true_up"


@dataclass(frozen=True)
class Calculation:
    """A calculator's answer: the amount (+ charge, - credit), its working; or why there is none."""

    amount_cents: int | None
    working: dict[str, Any] = field(default_factory=dict)
    refused: str = ""  # under the minimum, once per period, no bill touched, ... (amount is then None)


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def _correcting_read(db_session: Session, result: FieldOutcome) -> int | None:
    return db_session.scalar(
        select(MeterRead.id).where(MeterRead.id.in_(result.read_ids), MeterRead.corrects_read_id.is_not(None))
    )


def _actual_read(db_session: Session, result: FieldOutcome) -> int | None:
    return db_session.scalar(
        select(MeterRead.id)
        .where(MeterRead.id.in_(result.read_ids), MeterRead.estimated.is_(False))
        .order_by(MeterRead.read_at.desc())
    )


def _leak_bills(db_session: Session, result: FieldOutcome, max_bills: int) -> list[str]:
    """The account's latest bills up to the visit (the ones the leak ran up), at most the policy's count."""
    from server.adjustments.models import Bill

    day = result.occurred_at.astimezone(_zone()).date()
    ids = db_session.scalars(
        select(Bill.cis_bill_id)
        .where(Bill.account_id == result.account_id, Bill.period_start_date <= day)
        .order_by(Bill.period_end_date.desc())
        .limit(max_bills)
    ).all()
    return list(reversed(ids))


def inputs_for(db_session: Session, kind: AdjustmentKind, result: FieldOutcome) -> dict[str, Any] | str:
    """What the calculator of `kind` needs, taken from the result; or why the result cannot give it."""
    form = result.data.get("form") or {}
    if kind is AdjustmentKind.REREAD_CORRECTION:
        read_id = _correcting_read(db_session, result)
        return {"read_id": read_id} if read_id is not None else "no read of this result corrects another"
    if kind is AdjustmentKind.ESTIMATE_TRUE_UP:
        read_id = _actual_read(db_session, result)
        return {"actual_read_id": read_id} if read_id is not None else "the result has no actual read"
    if kind is AdjustmentKind.METER_TEST:
        if result.meter_id is None:
            return "the meter test names no meter"
        return {
            "points": form.get("points", []),
            "test_date": result.occurred_at.astimezone(_zone()).date().isoformat(),
            "meter_id": result.meter_id,
        }
    from server.adjustments.policy import current_adjustment_policy

    bills = _leak_bills(db_session, result, current_adjustment_policy().leak.max_bills)
    if not bills:
        return "the account has no bill before the visit to credit"
    return {
        "bill_ids": bills,
        "repair_proven": bool(form.get("leak_repaired", False)),
        "on": result.occurred_at.astimezone(_zone()).date().isoformat(),
    }


def calculate(*, db_session: Session, kind: AdjustmentKind, result: FieldOutcome) -> Calculation:
    """The adjustment of `kind` this result calls for, with the calculator's working (nothing stored)."""
    from server.adjustments import service as adjustments

    if result.account_id is None:
        return Calculation(None, {"kind": kind.value}, refused="the result names no account")
    inputs = inputs_for(db_session, kind, result)
    if isinstance(inputs, str):
        return Calculation(None, {"kind": kind.value}, refused=inputs)
    try:
        working = adjustments.preview(
            db_session=db_session, kind=kind.value, account_id=result.account_id, inputs=inputs
        )
    except ApiError as exc:  # the calculator cannot work it out from what is on file: say why
        return Calculation(None, {"kind": kind.value, "inputs": inputs}, refused=exc.message)
    except Exception as exc:  # a calculator fault must not stop the sync follower: the advisor sees it
        log.exception("adjustment calculator %s failed on result %s", kind.value, result.id)
        return Calculation(
            None, {"kind": kind.value, "inputs": inputs}, refused=f"the calculator failed: {exc}"[:300]
        )
    if working.outcome != "adjust":
        return Calculation(None, working.as_dict(), refused=working.reason)
    return Calculation(working.amount_cents, working.as_dict())


def propose(
    *,
    db_session: Session,
    result: FieldOutcome,
    kind: str,
    actor: str,
    reason: str,
    amount_cents: int | None = None,
) -> int:
    """Propose the adjustment through the adjustments workflow (recomputed from the same inputs); with
    `amount_cents`, changed to that amount with `reason`. The Adjustment's id."""
    from server.adjustments import service as adjustments

    if result.account_id is None:
        raise ApiError(409, "conflict", "the result names no account to adjust")
    # The same inputs the recommendation was computed from (the result does not change).
    known = {k.value: k for k in AdjustmentKind}
    inputs: dict[str, Any] | str = (
        inputs_for(db_session, known[kind], result)
        if kind in known
        else f"{kind} is not computed from results"
    )
    if not isinstance(inputs, dict):
        raise ApiError(409, "conflict", f"no {kind} calculation can be made from this result: {inputs}")
    adj = adjustments.propose(
        db_session=db_session,
        kind=kind,
        account_id=result.account_id,
        inputs=inputs,
        proposed_by=actor,
        source_result_id=result.id,
        note=reason,
    )
    if amount_cents is not None and amount_cents != adj.amount_cents:
        adjustments.change(
            db_session=db_session,
            adjustment_id=adj.id,
            changed_by=actor,
            reason=reason,
            amount_cents=amount_cents,
        )
    return adj.id


def bills_for(*, db_session: Session, account_id: int) -> list[dict[str, Any]]:
    """The account's bills, oldest first, each with its lines by component."""
    from server.adjustments import service as adjustments

    bills = adjustments.account_bills(db_session=db_session, account_id=account_id)
    lines = adjustments.bill_lines(db_session=db_session, bill_ids=[b.id for b in bills])
    return [
        {
            "bill_id": b.cis_bill_id,
            "period_start": b.period_start_date.isoformat(),
            "period_end": b.period_end_date.isoformat(),
            "consumption": b.consumption,
            "unit": b.unit,
            "estimated": b.estimated,
            "total_cents": b.total_cents,
            "lines": {line.component: line.amount_cents for line in lines.get(b.id, [])},
        }
        for b in bills
    ]


def local_date(at: dt.datetime) -> dt.date:
    """The utility's calendar day of an instant."""
    return at.astimezone(_zone()).date()
