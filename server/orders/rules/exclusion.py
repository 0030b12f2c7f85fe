"""A supervisor's exclusion of an account from the shut-off lists: whether it still holds on a day.

An exclusion ("paying Monday") holds through its `until_date`, and ends early when the account's
receivable changes (a payment posts or a new bill changes the balance) or a supervisor lifts it. One
function decides this for the shut-off rule, the review list and the exclusions page alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExclusionFacts:
    """An exclusion as it was made: who, why, for how long, and the balance it was made against."""

    exclusion_id: int
    batch_id: int
    note: str
    excluded_by: str
    excluded_at: dt.datetime
    until_date: dt.date
    balance_cents: int
    past_due_cents: int
    last_payment_id: int | None
    lifted_at: dt.datetime | None = None
    lifted_by: str = ""


@dataclass(frozen=True, slots=True)
class Receivable:
    """What the account owes and its latest payment now."""

    balance_cents: int
    past_due_cents: int
    last_payment_id: int | None
    last_payment_at: dt.datetime | None


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def ended_because(ex: ExclusionFacts, now: Receivable, day: dt.date) -> str | None:
    """Why the exclusion no longer holds on `day` (lifted, its days passed, a payment, a new balance),
    or None while it holds."""
    if ex.lifted_at is not None:
        return f"lifted by {ex.lifted_by or 'a supervisor'} on {ex.lifted_at:%Y-%m-%d}"
    if day > ex.until_date:
        return f"its days ran out ({ex.until_date})"
    if now.last_payment_id is not None and now.last_payment_id != ex.last_payment_id:
        when = f" on {now.last_payment_at:%Y-%m-%d}" if now.last_payment_at else ""
        return f"a payment posted{when}"
    if now.balance_cents != ex.balance_cents or now.past_due_cents != ex.past_due_cents:
        return (
            f"the balance changed from {_money(ex.balance_cents)} ({_money(ex.past_due_cents)} past due) "
            f"to {_money(now.balance_cents)} ({_money(now.past_due_cents)} past due)"
        )
    return None


def describe(ex: ExclusionFacts) -> str:
    """The exclusion in one line, for a decision or a list: who, when, until when, and their note."""
    return f"excluded by {ex.excluded_by} from shut-off batch {ex.batch_id} until {ex.until_date}: {ex.note}"
