"""Read models of the advisor's and supervisor's pages: the consumption graph's series and who must approve.

No rules here: decisions go through `results.service.decide`, approvals through `adjustments.service`,
the shut-off list through `orders.review`. This module only shapes what those return for a page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.adjustments.calculators import money
from server.adjustments.models import Adjustment
from server.adjustments.policy import current_adjustment_policy
from server.meters.models import MeterRead
from server.orders.policy import current_policy
from server.results.schemas import ReviewItemDetail

GRAPH_MONTHS = 24
# Validations a read passes with; any other marks it as flagged on the graph (high, low, backwards, ...).
PASSING = frozenset({"", "ok", "valid", "confirmed", "confirms"})


@dataclass
class Graph:
    """The consumption graph of one review item: points per series, as Chart.js reads them."""

    unit: str = ""
    actual: list[dict[str, Any]] = field(default_factory=list)
    estimated: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    in_question: list[dict[str, Any]] = field(default_factory=list)
    norm_low: list[dict[str, Any]] = field(default_factory=list)
    norm_high: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "actual": self.actual,
            "estimated": self.estimated,
            "flagged": self.flagged,
            "in_question": self.in_question,
            "norm_low": self.norm_low,
            "norm_high": self.norm_high,
        }


def questioned_read_ids(detail: ReviewItemDetail) -> set[int]:
    """The reads this result is about: the ones it brought and the ones it confirmed or corrected."""
    intake = (detail.result.data or {}).get("reads") or {}  # what the read intake made of the readings
    ids = {*detail.result.read_ids}
    for key in ("confirmed_read_ids", "corrected_read_ids"):
        ids.update(int(i) for i in intake.get(key) or [])
    inputs = (detail.working or {}).get("inputs") or {}
    if isinstance(inputs.get("read_id"), int):
        ids.add(inputs["read_id"])
    return ids


def consumption_graph(*, db_session: Session, detail: ReviewItemDetail) -> Graph:
    """The last 24 months of use before the latest read: actual, estimated and flagged reads apart, the
    reads in question marked, and the seasonal norm band (the policy's low and high factors x the norm)."""
    graph = Graph()
    history = detail.history
    if history is None or not history.reads:
        return graph
    latest = max(r.read_at for r in history.reads)
    since = latest - dt.timedelta(days=round(GRAPH_MONTHS * 365.25 / 12))
    shown = [r for r in history.reads if r.read_at >= since and r.use is not None]
    questioned = questioned_read_ids(detail)
    norms: dict[int, float | None] = {
        read_id: norm
        for read_id, norm in db_session.execute(
            select(MeterRead.id, MeterRead.norm).where(MeterRead.id.in_([r.read_id for r in shown]))
        )
    }
    reads_policy = current_policy().reads
    for r in shown:
        graph.unit = r.unit
        point = {
            "x": r.read_at.isoformat(),
            "y": r.use,
            "read_id": r.read_id,
            "why": r.validation_reason or r.validation,
        }
        if r.read_id in questioned:
            graph.in_question.append(point)
        if not r.on_chain:  # a superseded or duplicate read: marked when in question, never a billed point
            continue
        if r.estimated:
            graph.estimated.append(point)
        elif r.validation not in PASSING:
            graph.flagged.append(point)
        else:
            graph.actual.append(point)
        norm = norms.get(r.read_id)
        if norm is not None:
            graph.norm_low.append({"x": point["x"], "y": round(norm * reads_policy.low_factor, 2)})
            graph.norm_high.append({"x": point["x"], "y": round(norm * reads_policy.high_factor, 2)})
    return graph


@dataclass(frozen=True)
class ApprovalNeed:
    """An adjustment a review decision proposed: where it stands and who may approve it."""

    adjustment_id: int
    status: str
    amount: str
    approvers: str  # 'an advisor, a supervisor or an admin'
    message: str


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def approvers_for(*, kind: str, amount_cents: int) -> list[str]:
    """The roles whose authority covers `amount_cents` of `kind` (the adjustments policy's limits)."""
    authority = current_adjustment_policy().authority
    return [
        role
        for role in authority.limits
        if (limit := authority.limit_for(role, kind)) is not None and abs(amount_cents) <= limit
    ]


def approval_need(*, db_session: Session, adjustment_id: int | None, proposer: str) -> ApprovalNeed | None:
    """What became of the adjustment a decision proposed, and who must approve it (never its proposer)."""
    if adjustment_id is None:
        return None
    adj = db_session.get(Adjustment, adjustment_id)
    if adj is None:
        return None
    roles = approvers_for(kind=adj.kind, amount_cents=adj.amount_cents)
    who = " or ".join(_article(r) for r in roles) or "nobody under the current policy"
    if adj.status in ("proposed", "changed"):
        message = (
            f"Adjustment {adj.id} ({money(adj.amount_cents)}) is proposed and waits for approval by "
            f"{who} other than {proposer}."
        )
    else:
        message = f"Adjustment {adj.id} ({money(adj.amount_cents)}) is {adj.status}."
    return ApprovalNeed(adj.id, adj.status, money(adj.amount_cents), who, message)
