"""Unassigned work in a dispatcher's words, and the summary that heads the list.

Routing finds each left-out order's cause by trying (routing/diagnose.py) and names technicians by id;
this module words it with CSFR codes and local dates, adds the causes only the server knows (held for
shut-off approval, planned for a later day of the look-ahead, on hold), and sums up the bottlenecks
(skills short, hours short) and the idle capacity (who is free, for which kinds of work).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any

from routing import Bottleneck, Plan, Unassigned
from routing.diagnose import describe, describe_bottleneck

if TYPE_CHECKING:
    from server.dispatch.problem import DayProblem

CREW = "CSFRs"
PLANNED_LATER = "planned_later"
HELD_FOR_APPROVAL = "held_for_approval"
# Reasons the planner finds before solving (DayProblem.skipped), in words.
SKIPPED_WORDS = {
    HELD_FOR_APPROVAL: "held for shut-off approval",
    "on_hold": "on hold that day (e.g. a medical certificate); publishing would refuse it",
    "carry_over_not_included": "due on an earlier day; carried-over work is not planned (plan with carry-over)",
    "appointment_on_another_day": "its appointment is on another day",
    "locked_to_unavailable_technician": "locked to a CSFR who is not working",
}


def _short_date(day: dt.date) -> str:
    return f"{day:%b} {day.day}"


def _in_days(plan_date: dt.date, due: dt.date) -> str:
    days = (due - plan_date).days
    if days < 0:
        return f"overdue since {_short_date(due)}"
    if days == 0:
        return "due today"
    return f"due in {days} day{'s' if days != 1 else ''}"


def code_of(day: DayProblem, tech_id: str) -> str:
    """The CSFR's code for a routing technician id."""
    row = day.technicians.get(tech_id)
    return row.code if row is not None else tech_id


def unassigned_entry(day: DayProblem, u: Unassigned) -> dict[str, Any]:
    """One left-out order as the plan shows it: reason, words, who could have done it, due and planned dates."""
    order_id = int(u.stop_id)
    due = day.due.get(order_id)
    later = day.planned_for.get(order_id)
    entry: dict[str, Any] = {
        "order_id": order_id,
        "reason": u.reason.value,
        "detail": describe(u, name=lambda t: code_of(day, t), crew=CREW),
        "technicians": [code_of(day, t) for t in u.technician_ids],
        "skills": list(u.skills),
        "due_date": due.isoformat() if due else None,
        "planned_for": later.isoformat() if later else None,
    }
    if later is not None and later > day.plan_date and due is not None:
        entry["reason"] = PLANNED_LATER
        entry["detail"] = f"{_in_days(day.plan_date, due)}: planned for {_short_date(later)}"
    elif due is not None and due < day.plan_date:
        entry["detail"] += f" ({_in_days(day.plan_date, due)})"
    return entry


def skipped_detail(reason: str, hold: str = "") -> str:
    """Words for an order left out before solving."""
    words = SKIPPED_WORDS.get(reason, reason.replace("_", " "))
    return f"{words}: {hold}" if hold and reason == HELD_FOR_APPROVAL else words


def summary(day: DayProblem, plan: Plan, unassigned: list[dict[str, Any]]) -> dict[str, Any]:
    """Bottlenecks and idle capacity heading the unassigned list, as data and as lines of text."""
    crew_size = len(day.problem.technicians)

    def name(t: str) -> str:
        return code_of(day, t)

    def still(b: Bottleneck) -> int:
        """How many of the bottleneck's orders are still left out for it (not planned for a later day)."""
        if b.kind == "skill":
            return sum(
                u["reason"] == "skill_short" and tuple(u.get("skills", ())) == b.skills for u in unassigned
            )
        return sum(u["reason"] in ("day_full", "not_worth_overtime") for u in unassigned)

    bottlenecks = []
    for b in plan.bottlenecks:
        kept = still(b)
        if kept == 0:
            continue
        b = dataclasses.replace(b, stops=kept, work_s=b.work_s * kept // max(1, b.stops))
        bottlenecks.append(
            {
                "kind": b.kind,
                "skills": list(b.skills),
                "technicians": [code_of(day, t) for t in b.technician_ids],
                "orders": b.stops,
                "work_h": round(b.work_s / 3600, 1),
                "text": describe_bottleneck(b, crew_size=crew_size, name=name, crew=CREW),
            }
        )
    idle = [
        {
            "technician_code": code_of(day, i.technician_id),
            "free_min": i.free_s // 60,
            "skills": list(i.skills),
            "text": f"{code_of(day, i.technician_id)} has {i.free_s / 3600:.1f} h free ({', '.join(i.skills) or 'no skills'})",
        }
        for i in plan.idle
    ]
    reasons = Counter(u["reason"] for u in unassigned)
    lines = [b["text"] for b in bottlenecks]
    if idle:
        lines.append(
            f"idle: {len(idle)} of {crew_size} {CREW} have 30 min or more free: "
            + "; ".join(i["text"] for i in idle[:6])
            + (f" and {len(idle) - 6} more" if len(idle) > 6 else "")
        )
    if reasons.get(PLANNED_LATER):
        lines.append(
            f"planned later: {reasons[PLANNED_LATER]} orders not due yet are planned for coming days"
        )
    if reasons.get(HELD_FOR_APPROVAL):
        lines.append(f"held: {reasons[HELD_FOR_APPROVAL]} shut-offs wait for their batch's approval")
    return {"bottlenecks": bottlenecks, "idle": idle, "reasons": dict(reasons), "lines": lines}
