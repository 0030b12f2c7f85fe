"""What a rule decides: create an order, hold an account back (and why), or cancel an order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from contracts.codes import OrderType


class Rule(StrEnum):
    """The rules a run can choose (`curbstop generate-orders --rule`)."""

    REREAD = "reread"
    LEAK = "leak"
    THEFT = "theft"
    SHUTOFF = "shutoff"
    PULL = "pull"
    RESTORE = "restore"
    MOVES = "moves"
    METER_TEST = "meter_test"
    CHANGE_OUT = "change_out"


class Outcome(StrEnum):
    CREATE = "create"  # an order is (or would be, in a dry run) created
    EXISTING = "existing"  # the order this would create exists already (a second run)
    HOLD = "hold"  # the account qualified in part but was held back; the reason says why
    CANCEL = "cancel"  # an open order is pulled
    EXCLUDED = "excluded"  # a supervisor's exclusion keeps the account off the shut-off list (still holds)


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order a rule wants; `key` makes creating it idempotent."""

    order_type: OrderType
    key: str
    service_point_id: int
    account_id: int | None = None
    meter_id: int | None = None
    scheduled_date: dt.date | None = None
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    needs_review: bool = False  # shut-offs wait in a batch for a supervisor


@dataclass(frozen=True, slots=True)
class Decision:
    """One rule's verdict on one account, meter or order."""

    rule: Rule
    outcome: Outcome
    reason: str
    account_id: int | None = None
    meter_id: int | None = None
    order: OrderSpec | None = None
    cancel_order_id: int | None = None
    source_id: int | None = None  # a move or meter-test request to mark done once ordered
    count: int = 1  # how many accounts or meters it stands for (a summary of many alike holds)


def create(rule: Rule, reason: str, spec: OrderSpec, *, source_id: int | None = None) -> Decision:
    return Decision(
        rule,
        Outcome.CREATE,
        reason,
        account_id=spec.account_id,
        meter_id=spec.meter_id,
        order=spec,
        source_id=source_id,
    )


def hold(rule: Rule, reason: str, *, account_id: int | None = None, meter_id: int | None = None) -> Decision:
    return Decision(rule, Outcome.HOLD, reason, account_id=account_id, meter_id=meter_id)
