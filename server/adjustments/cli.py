"""`curbstop adjustments list|show|approve`: the review queue from a terminal (same service functions as the API)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from contracts.codes import Role
from server import db as dbmod
from server.adjustments import service
from server.adjustments.calculators import money
from server.adjustments.policy import KINDS
from server.auth.models import User
from server.auth.service import Principal
from server.errors import ApiError
from server.migrate import upgrade
from server.timezone import format_local

app = typer.Typer(
    help="Billing adjustments: the review queue, one adjustment's working, approval.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(exc: ApiError) -> typer.Exit:
    err.print(f"[red]{exc.message}[/]")
    return typer.Exit(1)


@app.command("list")
def list_cmd(
    kind: Annotated[str | None, typer.Option(help=f"one of: {', '.join(KINDS)}")] = None,
    status: Annotated[str | None, typer.Option(help="proposed, changed, approved or rejected")] = None,
    min_amount: Annotated[float | None, typer.Option(help="absolute amount at least, dollars")] = None,
    older_than_days: Annotated[int | None, typer.Option(help="waiting at least this many days")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """The adjustments matching the filters, oldest first."""
    upgrade(dbmod.get_engine())
    with dbmod.session_factory()() as session:
        try:
            found = service.list_adjustments(
                db_session=session,
                kind=kind,
                status=status,
                min_amount_cents=None if min_amount is None else round(min_amount * 100),
                older_than_days=older_than_days,
                page=page,
                page_size=page_size,
            )
        except ApiError as exc:
            raise _fail(exc) from None
        table = Table(title=f"adjustments: {found.total:,} match (page {page})")
        for column in ("id", "kind", "status", "account", "amount", "proposed by", "created", "why"):
            table.add_column(column, justify="right" if column in ("id", "amount") else "left")
        for adj in found.items:
            table.add_row(
                str(adj.id),
                adj.kind,
                adj.status,
                str(adj.account_id),
                money(adj.amount_cents),
                adj.proposed_by,
                format_local(adj.created_at, fmt="%Y-%m-%d %H:%M"),
                adj.working.get("reason", ""),
            )
        console.print(table)


@app.command("show")
def show_cmd(
    adjustment_id: int,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the adjustment and its working as JSON")
    ] = False,
) -> None:
    """One adjustment: its status, approvals and the calculator's working step by step."""
    upgrade(dbmod.get_engine())
    with dbmod.session_factory()() as session:
        try:
            adj = service.get(db_session=session, adjustment_id=adjustment_id)
        except ApiError as exc:
            raise _fail(exc) from None
        if as_json:
            from server.adjustments.schemas import AdjustmentRead

            console.print_json(AdjustmentRead.model_validate(adj).model_dump_json())
            return
        console.print(
            f"[bold]adjustment {adj.id}[/]: {adj.kind} on account {adj.account_id}, {money(adj.amount_cents)}, "
            f"{adj.status} (proposed by {adj.proposed_by})"
        )
        if adj.change_reason:
            console.print(f"changed by {adj.changed_by}: {adj.change_reason}")
        for approval in adj.approvals or []:
            console.print(f"approved by {approval['by']} ({approval['role']}) at {approval['at']}")
        table = Table(title=adj.working.get("reason", ""))
        table.add_column("step")
        table.add_column("value", justify="right")
        table.add_column("detail")
        for step in adj.working.get("steps", []):
            value = step["value"]
            table.add_row(
                step["step"], value if isinstance(value, str) else json.dumps(value), step.get("detail", "")
            )
        console.print(table)


@app.command("approve")
def approve_cmd(
    adjustment_id: int,
    as_user: Annotated[
        str, typer.Option("--as", help="the approver's username (their role and limit apply)")
    ],
    reason: Annotated[str, typer.Option(help="why, for the audit trail")] = "",
) -> None:
    """Approve an adjustment as a user, within their authority."""
    upgrade(dbmod.get_engine())
    with dbmod.session_factory()() as session:
        user = session.scalar(select(User).where(User.username == as_user, User.active.is_(True)))
        if user is None:
            err.print(f"[red]--as: no active user {as_user!r}[/]")
            raise typer.Exit(2)
        who = Principal(name=user.username, role=Role(user.role), user_id=user.id)
        try:
            adj = service.approve(
                db_session=session, adjustment_id=adjustment_id, principal=who, reason=reason
            )
        except ApiError as exc:
            raise _fail(exc) from None
        session.commit()
        state = (
            adj.status
            if adj.status == "approved"
            else f"approval {len(adj.approvals)} recorded, still {adj.status}"
        )
        console.print(f"[green]adjustment {adj.id}: {state}[/] ({money(adj.amount_cents)})")
