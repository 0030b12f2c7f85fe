"""The `curbstop` command line."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from contracts.codes import Role
from server import db as dbmod
from server.adjustments.cli import app as adjustments_app
from server.config import get_settings, private_dir, private_file
from server.migrate import upgrade
from server.timezone import format_day, format_local, local_today, utility_zone, zone_abbreviation

app = typer.Typer(
    help="Curbstop: field-service dispatch for water utilities.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
err = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _migrate() -> None:
    upgrade(dbmod.get_engine())


@app.command()
def migrate() -> None:
    """Bring the database (DATABASE_URL, default var/curbstop.db) up to the newest schema."""
    _migrate()
    console.print(f"[green]database is up to date[/] ({_safe_url()})")


def _safe_url() -> str:
    url = dbmod.get_engine().url
    return url.render_as_string(hide_password=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
) -> None:
    """Run the API server (migrating the database first)."""
    import uvicorn
    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:  # e.g. a short or published CURBSTOP_SECRET_KEY: refuse to start
        for problem in exc.errors():
            err.print(
                f"[red]refusing to start: {escape(str(problem['msg']).removeprefix('Value error, '))}[/]"
            )
        raise typer.Exit(2) from None
    _migrate()
    uvicorn.run(
        "server.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="run what is queued now, then exit")] = False,
    poll_s: Annotated[float, typer.Option(help="seconds between polls for new jobs")] = 1.0,
) -> None:
    """Run queued background jobs (planning, order generation) outside the API processes."""
    import time

    from server.jobs.service import run_pending

    _migrate()
    factory = dbmod.session_factory()
    if once:
        console.print(f"ran {run_pending(factory=factory)} job(s)")
        return
    console.print("[green]worker running[/]; Ctrl-C stops it")
    while True:
        run_pending(factory=factory)
        time.sleep(poll_s)


def plan_table(
    *, plan_id: int, plan_date: dt.date, status: str, routes: list[dict[str, Any]], zone: ZoneInfo
) -> Table:
    """The routes of a plan with start and end in the utility's zone, the zone named in the headers."""
    abbr = zone_abbreviation(zone, plan_date)
    table = Table(title=f"Plan {plan_id} for {format_day(plan_date)} ({status}); times {abbr} ({zone.key})")
    for col in (
        "technician",
        "stops",
        f"start {abbr}",
        f"end {abbr}",
        "travel min",
        "idle min",
        "overtime min",
    ):
        table.add_column(col)
    for route in routes:
        table.add_row(
            f"{route['technician_code']} {route['technician_name']}",
            str(len(route["visits"])),
            format_local(dt.datetime.fromisoformat(route["start_at"]), zone, with_zone=False),
            format_local(dt.datetime.fromisoformat(route["end_at"]), zone, with_zone=False),
            str(route["travel_s"] // 60),
            str(route["idle_s"] // 60),
            str(route["overtime_s"] // 60),
        )
    return table


@app.command()
def plan(
    date: Annotated[str, typer.Option(help="the day to plan, YYYY-MM-DD (default: today)")] = "",
    area: Annotated[str, typer.Option(help="one service area; empty plans every area")] = "",
    time_limit: Annotated[float, typer.Option(help="seconds the solver may search")] = 20.0,
    seed: Annotated[int, typer.Option(help="the same inputs and seed give the same plan")] = 0,
    publish: Annotated[bool, typer.Option(help="dispatch the plan to the orders when it is made")] = False,
    carry_over: Annotated[
        bool | None,
        typer.Option(
            "--carry-over/--no-carry-over",
            help="plan open orders due on an earlier day (shown as carried over); default: the policy's "
            "dispatch.include_carry_over",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Plan every CSFR's day with the routing engine; show routes and unassigned work; optionally publish."""
    from collections import Counter

    from server.dispatch.service import make_plan
    from server.dispatch.service import publish as publish_plan

    zone = utility_zone()
    try:
        day = dt.date.fromisoformat(date) if date else local_today(zone=zone)
    except ValueError:
        err.print(f"[red]--date {escape(date)!r} is not a date (YYYY-MM-DD)[/]")
        raise typer.Exit(2) from None
    _migrate()
    with dbmod.session_factory()() as session, _progress() as progress:
        task = progress.add_task(f"plan {day}", total=3)

        def note(done: int, total: int, message: str = "") -> None:
            progress.update(task, completed=done, total=total, description=f"plan {day}: {message}")

        try:
            row = make_plan(
                db_session=session,
                plan_date=day,
                service_area=area,
                time_limit_s=time_limit,
                seed=seed,
                actor="cli",
                report=note,
                include_carry_over=carry_over,
            )
        except ValueError as exc:
            progress.stop()
            err.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(1) from None
        session.commit()
        progress.stop()
        console.print(
            plan_table(plan_id=row.id, plan_date=day, status=row.solver_status, routes=row.routes, zone=zone)
        )
        reasons = Counter(u["reason"] for u in row.unassigned)
        console.print("unassigned: " + (", ".join(f"{n} {r}" for r, n in reasons.items()) or "none"))
        for line in row.summary.get("lines", []):
            console.print(f"  [yellow]{escape(line)}[/]")
        details = Counter(u.get("detail") or u["reason"] for u in row.unassigned)
        for detail, count in details.most_common(12):
            console.print(f"  {count:>4} x {escape(detail)}")
        if len(details) > 12:
            console.print(
                f"  ... and {len(details) - 12} other reasons (the plan's unassigned list has each)"
            )
        if row.carried_over:
            items = [v for r in row.routes for v in r["visits"]] + list(row.unassigned)
            late = sorted(
                (
                    (i["original_date"], i["order_id"], "planned" if "sequence" in i else i["reason"])
                    for i in items
                    if i.get("carried_over")
                ),
            )
            console.print(
                f"[yellow]carried over[/]: {row.carried_over} open orders due on an earlier day "
                f"({'planned' if row.params.get('include_carry_over') else 'not planned: --carry-over plans them'})"
            )
            for original, order_id, what in late[:20]:
                console.print(f"  order {order_id}, due {original}: {what}")
        if publish:
            from server.errors import ApiError

            try:
                result = publish_plan(db_session=session, plan=row, actor="cli")
            except ApiError as exc:  # e.g. an order held since planning (the lifecycle's 409)
                session.rollback()
                err.print(f"[red]not published: {escape(exc.message)}[/]")
                raise typer.Exit(1) from None
            session.commit()
            console.print(f"[green]published[/]: {result['dispatched']} orders dispatched")


@app.command("generate-orders")
def generate_orders(
    date: Annotated[
        str, typer.Option(help="the local day to generate for, YYYY-MM-DD (default: today)")
    ] = "",
    rule: Annotated[
        list[str] | None,
        typer.Option(
            help="run only this rule (repeatable): pull restore shutoff moves reread leak theft meter_test change_out"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be done; create and cancel nothing")
    ] = False,
    show: Annotated[int, typer.Option(help="how many decisions of each rule and outcome to list")] = 5,
) -> None:
    """Raise the day's orders from billing and meter data: a table of what was (or would be) created,
    found already, held back and why, and cancelled."""
    from collections import defaultdict

    from server.orders import generation
    from server.orders.policy import PolicyError, current_policy

    zone = utility_zone()
    try:
        day = dt.date.fromisoformat(date) if date else local_today(zone=zone)
    except ValueError:
        err.print(f"[red]--date {escape(date)!r} is not a date (YYYY-MM-DD)[/]")
        raise typer.Exit(2) from None
    try:
        policy = current_policy()
        rules = generation.parse_rules(rule)
    except (PolicyError, ValueError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    _migrate()
    with dbmod.session_factory()() as session, _progress() as progress:
        task = progress.add_task(f"rules for {day}", total=len(rules))

        def note(done: int, total: int, message: str = "") -> None:
            progress.update(task, completed=done, total=total, description=f"{day}: {message}")

        result = generation.run(
            session,
            policy=policy,
            run_date=day,
            zone=zone,
            rules=rules,
            dry_run=dry_run,
            actor="cli",
            progress=note,
        )
        session.commit()
        progress.stop()
    verb = "would be" if dry_run else "were"
    table = Table(
        title=f"Run {result.run_id} for {format_day(day)}"
        + (" (dry run: nothing written)" if dry_run else "")
    )
    for col in ("rule", "created", "existing", "held back", "excluded", "cancelled"):
        table.add_column(col, justify="right" if col != "rule" else "left")
    counts = result.counts
    for r in rules:
        c = counts.get(r.value, {})
        table.add_row(
            r.value, *(str(c.get(k, 0)) for k in ("create", "existing", "hold", "excluded", "cancel"))
        )
    console.print(table)
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for a in result.applied:
        key = (a.decision.rule.value, a.outcome.value)
        if len(samples[key]) < show:
            who = (
                f"account {a.decision.account_id}"
                if a.decision.account_id
                else f"meter {a.decision.meter_id}"
            )
            order = f" -> order {a.order_id}" if a.order_id else ""
            samples[key].append(f"{who}{order}: {a.decision.reason}")
    labels = {
        "create": f"{verb} created",
        "existing": "already there",
        "hold": "held back",
        "excluded": "kept off the list by a supervisor's exclusion",
        "cancel": f"{verb} cancelled",
    }
    for (r, outcome), lines in sorted(samples.items()):
        console.print(f"[bold]{r}[/] {labels[outcome]}:")
        for line in lines:
            console.print(f"  {escape(line)}")
    if result.batch_id:
        console.print(
            f"[yellow]shut-off batch {result.batch_id} awaits a supervisor's review[/] "
            f"(POST /api/shutoff-batches/{result.batch_id}/approve)"
        )
    console.print(f"decisions: GET /api/order-generation/runs/{result.run_id}/decisions")


@app.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="CSV files, or a directory holding them", exists=True)],
    actor: Annotated[str, typer.Option(help="who to record in the audit log")] = "cli",
) -> None:
    """Import a CIS extract (see docs/cis-import.md); a bad extract is refused whole, every problem listed."""
    from server.cis.importer import ImportRejected, find_files, import_files

    zone = utility_zone()
    files: list[Path] = []
    for path in paths:
        files.extend(find_files(path, zone) if path.is_dir() else [path])
    _migrate()
    with dbmod.session_factory()() as session, _progress() as progress:
        tasks: dict[str, int] = {}

        def note(name: str, rows: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"import {name}", total=None)
            progress.advance(tasks[name], rows)

        try:
            result = import_files(session, files, zone=zone, actor=actor, progress=note)
        except ImportRejected as exc:
            progress.stop()
            table = Table(
                title=f"Import refused: {len(exc.issues)} problem(s); nothing was applied", show_lines=False
            )
            for col in ("file", "line", "field", "problem"):
                table.add_column(col)
            for issue in exc.issues:
                table.add_row(issue.file, str(issue.line or ""), issue.field, issue.message)
            err.print(table)
            raise typer.Exit(1) from None
    summary = Table(title="Imported")
    summary.add_column("file")
    summary.add_column("rows", justify="right")
    for name, rows in result.rows.items():
        summary.add_row(name, f"{rows:,}")
    console.print(summary)
    if "reads.csv" in result.rows:
        console.print(f"newest reads validated: {result.rereads:,} reread orders raised")


@app.command("export")
def export_cmd(
    since: Annotated[
        str, typer.Option(help="records staged at or after this local day or time (YYYY-MM-DD[THH:MM])")
    ],
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    out: Annotated[Path, typer.Option(help="directory to write the files into")] = Path("export"),
) -> None:
    """Write what goes back to the CIS (docs/cis-export.md): one file per message, each record once by id."""
    from server.cis.export import records_since, write_files

    if fmt not in ("csv", "json"):
        err.print(f"[red]--format: {fmt!r} is not csv or json[/]")
        raise typer.Exit(2)
    try:
        parsed = dt.datetime.fromisoformat(since)
    except ValueError:
        err.print(f"[red]--since: {since!r} is not a day or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)[/]")
        raise typer.Exit(2) from None
    start = parsed if parsed.tzinfo else parsed.replace(tzinfo=utility_zone())
    _migrate()
    with dbmod.session_factory()() as session:
        records = records_since(db_session=session, since=start)
        written = write_files(records, fmt=fmt, out=out)
    console.print(
        f"CIS export since {format_local(start, fmt='%Y-%m-%d %H:%M')}: {len(records):,} record(s)",
        soft_wrap=True,
    )
    for path in written:
        console.print(f"  {path}", soft_wrap=True, highlight=False)


@app.command("create-user")
def create_user_cmd(
    username: str,
    role: Annotated[Role, typer.Option(help="what the user may do")],
    full_name: Annotated[str, typer.Option()] = "",
    password: Annotated[str | None, typer.Option(help="prompted for when omitted")] = None,
) -> None:
    """Add a user who signs in with a password."""
    from server.auth.service import create_user, password_problem

    secret = password or getpass.getpass(f"password for {username}: ")
    problem = password_problem(secret, username=username)
    if problem is not None:
        err.print(f"[red]{escape(problem)}[/]")
        raise typer.Exit(2)
    _migrate()
    with dbmod.session_factory()() as session:
        create_user(db_session=session, username=username, password=secret, role=role, full_name=full_name)
        session.commit()
    console.print(f"[green]created {role.value} {username}[/]")


@app.command("disable-user")
def disable_user_cmd(username: str) -> None:
    """Take a user's access away at once: sign-in tokens, API tokens, browser sessions, tablet sync."""
    from server.auth.models import User
    from server.auth.service import revoke_access

    _migrate()
    with dbmod.session_factory()() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            err.print(f"[red]there is no user {escape(username)!r}[/]")
            raise typer.Exit(2)
        taken = revoke_access(db_session=session, user=user, actor="cli", settings=get_settings())
    console.print(
        f"[green]disabled {escape(username)}[/]: {taken['api_tokens_revoked']} API token(s) revoked, "
        f"{taken['sessions_ended']} browser session(s) ended, CouchDB user: {escape(taken['couchdb_user'])}"
    )


@app.command("enable-user")
def enable_user_cmd(username: str) -> None:
    """Let a disabled user sign in again (what was revoked stays revoked)."""
    from server.auth.models import User
    from server.auth.service import enable_user

    _migrate()
    with dbmod.session_factory()() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            err.print(f"[red]there is no user {escape(username)!r}[/]")
            raise typer.Exit(2)
        enable_user(db_session=session, user=user)
        session.commit()
    console.print(f"[green]enabled {escape(username)}[/]")


@app.command("create-token")
def create_token_cmd(
    name: str, role: Annotated[Role, typer.Option(help="usually station")] = Role.STATION
) -> None:
    """Mint an API token for a machine (a docking station, a CIS feed); it is printed once."""
    from server.auth.service import create_api_token

    _migrate()
    with dbmod.session_factory()() as session:
        token = create_api_token(db_session=session, name=name, role=role)
        session.commit()
    console.print(token)


def _start_dev_couchdb(var_dir: Path) -> subprocess.Popen[str]:
    """Run the bundled pouchdb-server as a separate process (the server does not import the tablet code).

    Its admin password is kept in var/couch-admin so a restarted demo reuses the same data folder.
    """
    import secrets

    secret_file = var_dir / "couch-admin"
    private_dir(var_dir)
    # pouchdb-server writes its config.json (admin credentials) and data here: this user only.
    private_dir(var_dir / "couch")
    for written in (var_dir / "couch" / "config.json", var_dir / "couch" / "log.txt"):
        if written.exists():
            private_file(written)
    if not secret_file.exists():
        private_file(secret_file, secrets.token_urlsafe(18))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mobile.sync.devserver",
            "--dir",
            str(var_dir / "couch"),
            # One argument with "=": a generated secret may begin with "-" (token_urlsafe's alphabet),
            # which argparse would take for an option.
            f"--password={secret_file.read_text().strip()}",
            "--parent-pid",
            str(os.getpid()),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("COUCHDB_URL="):
        proc.terminate()
        raise RuntimeError(f"pouchdb-server did not start (run `make setup`?): {line!r}")
    os.environ["COUCHDB_URL"] = line.split("=", 1)[1]
    get_settings.cache_clear()
    return proc


@app.command()
def sync(
    once: Annotated[bool, typer.Option(help="one pass, then exit")] = False,
    interval_s: Annotated[float, typer.Option(help="seconds between passes")] = 2.0,
) -> None:
    """Provision CSFR databases, publish changed orders and ingest tablet results (COUCHDB_URL)."""
    import time

    from server.sync.runner import admin_from, sync_once

    settings = get_settings()
    admin = admin_from(settings)
    if admin is None:
        err.print("[red]set COUCHDB_URL (http://admin:password@host:5984) to sync[/]")
        raise typer.Exit(2)
    _migrate()
    first = True
    while True:
        counts = sync_once(
            factory=dbmod.session_factory(),
            admin=admin,
            secret=settings.resolved_secret_key(),
            provision=first,
        )
        console.print(", ".join(f"{k} {v}" for k, v in counts.items()))
        first = False
        if once:
            return
        time.sleep(interval_s)


def _sign_in_table(usernames: list[tuple[str, str]], *, password: str) -> Table:
    """Every demo sign-in: who, what role, and where they sign in."""
    table = Table(title=f"Demo sign-ins (password for every one: {password})")
    for col in ("user", "role", "signs in at"):
        table.add_column(col)
    for username, role in usernames:
        where = "field app (tablet)" if role.startswith("csfr") else "office pages, API"
        table.add_row(username, escape(role), where)
    return table


def _demo_orders(zone: ZoneInfo, today: dt.date) -> dt.date:
    """Raise the working day's orders once, so the dispatcher has a day to plan and the supervisor a
    shut-off list to approve; returns that day (today, or the next business day with shut-offs)."""
    from server.demo.workday import choose_day, summarize
    from server.orders import facts, generation
    from server.orders.calendar import Calendar
    from server.orders.models import GenerationRun, ShutoffBatch
    from server.orders.policy import current_policy

    policy = current_policy()
    with dbmod.session_factory()() as session:
        chosen = choose_day(
            today,
            calendar=Calendar.of(policy.calendar, facts.marked_days(session, today)),
            shutoff=policy.shutoff,
        )
        day = chosen.day
        if chosen.why:
            console.print(f"{chosen.why}; the demo works {format_day(day)}")
        done = session.scalar(
            select(GenerationRun.id)
            .where(
                GenerationRun.run_date == day,
                GenerationRun.actor == "demo",
                GenerationRun.dry_run.is_(False),
            )
            .limit(1)
        )
        if done:
            batches = session.scalars(
                select(ShutoffBatch.id).where(
                    ShutoffBatch.service_date == day, ShutoffBatch.status == "proposed"
                )
            ).all()
            console.print(
                f"orders for {format_day(day)} were raised by an earlier demo run (run {done})"
                + (
                    f"; shut-off batch {', '.join(map(str, batches))} awaits the supervisor's approval"
                    if batches
                    else ""
                )
            )
            return day
        result = generation.run(session, policy=policy, run_date=day, zone=zone, actor="demo")
        session.commit()
    console.print(f"orders raised for {format_day(day)}:")
    for line in summarize(result).lines():
        console.print(f"  {escape(line)}")
    return day


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(help="how many accounts the district has")] = 5_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same district")] = 7,
    fresh: Annotated[bool, typer.Option(help="delete var/ state first and generate anew")] = False,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="start the server when ready")
    ] = True,
    port: Annotated[int | None, typer.Option(help="TCP port for the server")] = None,
    today: Annotated[
        str, typer.Option(help="pretend today is this date, YYYY-MM-DD (default: the utility's today)")
    ] = "",
) -> None:
    """Generate a demo district, import it, add the crew and sign-ins, raise a working day's orders,
    and start the server."""
    from server.accounts.models import Account
    from server.cis.importer import find_files, import_files
    from server.demo.district import generate
    from server.demo.handhelds import docking_instructions, seed_handhelds
    from server.demo.seed import DEMO_PASSWORD, seed_people

    settings = get_settings()
    zone = utility_zone(settings)
    try:
        day_now = dt.date.fromisoformat(today) if today else local_today(zone=zone)
    except ValueError:
        err.print(f"[red]--today {escape(today)!r} is not a date (YYYY-MM-DD)[/]")
        raise typer.Exit(2) from None
    demo_dir = settings.var_dir / "demo"
    if fresh:
        dbmod.get_engine().dispose()
        if not settings.database_url:
            for suffix in ("", "-wal", "-shm"):
                (settings.var_dir / f"curbstop.db{suffix}").unlink(missing_ok=True)
        shutil.rmtree(demo_dir, ignore_errors=True)
        dbmod.configure(settings.resolved_database_url())
    _migrate()
    with dbmod.session_factory()() as session:
        have = session.scalar(select(func.count()).select_from(Account)) or 0
    if have == 0:
        with _progress() as progress:
            task = progress.add_task(f"generate {accounts:,} accounts", total=accounts)
            summary = generate(
                demo_dir / "cis",
                accounts=accounts,
                seed=seed,
                today=day_now,
                zone=zone,
                progress=lambda n: progress.advance(task, n),
            )
        with dbmod.session_factory()() as session, _progress() as progress:
            tasks: dict[str, int] = {}

            def note(name: str, rows: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(f"import {name}", total=None)
                progress.advance(tasks[name], rows)

            import_files(session, find_files(demo_dir / "cis", zone), zone=zone, actor="demo", progress=note)
        console.print(
            f"district: {summary.accounts:,} accounts, {summary.reads:,} reads, {summary.leaks} leaks, "
            f"{summary.stuck} stuck meters, {summary.rollovers} rollovers, {summary.delinquent} delinquent, "
            f"{summary.shut_off} shut off, {summary.move_requests} move requests"
        )
    else:
        console.print(f"using the existing district ({have:,} accounts); --fresh generates a new one")
    with dbmod.session_factory()() as session:
        people = seed_people(db_session=session)
    with dbmod.session_factory()() as session:
        handhelds = seed_handhelds(db_session=session)
    work_day = _demo_orders(zone, day_now)
    couch_proc = None
    if not settings.couchdb_url and serve_after:
        couch_proc = _start_dev_couchdb(settings.var_dir)
        settings = get_settings()
    if people.station_token:
        token_file = demo_dir / "station-token.txt"
        private_dir(token_file.parent)
        private_file(token_file, people.station_token + "\n")
    base = f"http://{settings.host}:{port or settings.port}"
    table = Table(title="Curbstop demo")
    table.add_column("what")
    table.add_column("where / how")
    table.add_row("office pages (dispatcher's board)", f"{base}/  (sign in as dispatcher)")
    table.add_row("API docs", f"{base}/docs")
    table.add_row(
        "sign in (API)", f"POST {base}/api/auth/token  (password for every demo user: {DEMO_PASSWORD})"
    )
    table.add_row(
        "working day",
        f"{format_day(work_day)}: `curbstop plan --date {work_day.isoformat()}` plans it",
    )
    table.add_row("time zone", f"{zone.key} ({zone_abbreviation(zone, work_day)}): every time shown is in it")
    table.add_row("station token", str(demo_dir / "station-token.txt"))
    table.add_row("database", _safe_url())
    if settings.couchdb_url:
        from server.sync.couch import CouchConfig

        couch = CouchConfig.from_url(settings.couchdb_url)
        table.add_row(
            "CouchDB (tablets)",
            f"{couch.url}  (admin {couch.username}; password in {settings.var_dir / 'couch-admin'})",
        )
        table.add_row("field app", "uv run curbstop mobile  (sign in as t01..t12)")
    else:
        table.add_row("CouchDB (tablets)", "not started (--no-serve; the demo starts it with the server)")
    console.print(table)
    console.print(_sign_in_table(people.usernames, password=DEMO_PASSWORD))
    for line in docking_instructions(
        handhelds, server_url=base, token_file=demo_dir / "station-token.txt", var_dir=settings.var_dir
    ):
        console.print(escape(line), soft_wrap=True)
    if serve_after:
        try:
            serve(host=None, port=port)
        finally:
            if couch_proc is not None:
                couch_proc.terminate()
                couch_proc.wait(timeout=20)


app.add_typer(adjustments_app, name="adjustments")


def main() -> None:
    """Entry point for `python -m server.cli`."""
    app()


if __name__ == "__main__":
    sys.exit(main())
