"""Command line for the device bridge: `curbstop bridge [spool ...]` and `curbstop simulate-handheld`.

`curbstop_cli` mounts `bridge_app` as the ``bridge`` group (``curbstop bridge --port ...`` runs the
station; ``curbstop bridge spool list|show|retry|discard`` manages the reads the server refused) and
registers `simulate_handheld_command`. Both also run stand-alone: ``python -m device_bridge.station``
and ``python -m device_bridge.simulator``.
"""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from device_bridge.simulator import SimConfig, run_simulator
from device_bridge.spool import Spool, SpoolError
from device_bridge.station import StationConfig, run_station

DEFAULT_SPOOL = Path("var/bridge/spool.db")

bridge_app = typer.Typer(
    name="bridge",
    help="Docking station: watch ports (--port ...), or manage its spool (bridge spool ...).",
    invoke_without_command=True,
)
spool_app = typer.Typer(
    help="Reads the server refused (dead letters): list, show, retry after a fix, or discard.",
    no_args_is_help=True,
)
bridge_app.add_typer(spool_app, name="spool")
console = Console()
err = Console(stderr=True)

SpoolPath = Annotated[Path, typer.Option("--spool", help="The station's SQLite spool file.")]
Who = Annotated[str, typer.Option("--by", help="Who does this (recorded); default: your login name.")]


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


@bridge_app.callback()
def bridge_command(
    ctx: typer.Context,
    port: Annotated[
        list[str] | None, typer.Option("--port", "-p", help="Serial port or pyserial URL; repeat for more.")
    ] = None,
    server: Annotated[
        str, typer.Option(envvar="CURBSTOP_SERVER_URL", help="Server base URL.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[str, typer.Option(envvar="CURBSTOP_STATION_TOKEN", help="Station API token.")] = "",
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="Read the station API token from this file (the demo writes var/demo/station-token.txt)."
        ),
    ] = None,
    spool: SpoolPath = DEFAULT_SPOOL,
    log_file: Annotated[Path, typer.Option("--log", help="Plain log file for a supervisor.")] = Path(
        "var/bridge/bridge.log"
    ),
    baud: Annotated[int, typer.Option(help="Line rate, bits per second.")] = 115_200,
    turnaround_ms: Annotated[float, typer.Option(help="Slowest hand-held's answer delay, ms.")] = 16.0,
    timer_floor_ms: Annotated[float, typer.Option(help="Shortest protocol timer, ms.")] = 250.0,
    retry_base_s: Annotated[float, typer.Option(help="First back-off after a failed post, s.")] = 0.5,
    retry_max_s: Annotated[float, typer.Option(help="Longest back-off, s.")] = 30.0,
    routes_retry_s: Annotated[
        float,
        typer.Option(
            help="Try again this often to load a docked device's routes the server did not give, s."
        ),
    ] = 30.0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Watch docking-station ports: unload reads to the spool and server, load routes."""
    if ctx.invoked_subcommand is not None:
        return
    if not port or not all(p.strip() for p in port):
        # An empty --port is usually "$(cat <state-dir>/port)" run before the simulator wrote the file.
        err.print(
            "[red]give at least one --port (a serial port or pyserial URL), none empty[/]; see bridge --help"
        )
        raise typer.Exit(2)
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            err.print(f"[red]--token-file {escape(str(token_file))}: {escape(exc.strerror or str(exc))}[/]")
            raise typer.Exit(2) from None
    if not token:
        err.print("[red]no station token[/]: give --token, --token-file or CURBSTOP_STATION_TOKEN")
        raise typer.Exit(2)
    run_station(
        StationConfig(
            ports=port,
            server_url=server,
            token=token,
            spool_path=spool,
            log_path=log_file,
            baud=baud,
            turnaround_s=turnaround_ms / 1000,
            timer_floor_s=timer_floor_ms / 1000,
            retry_base_s=retry_base_s,
            retry_max_s=retry_max_s,
            routes_retry_s=routes_retry_s,
            progress=progress,
        )
    )


def _open(spool: Path) -> Spool:
    if not spool.exists():
        err.print(f"[red]no spool at {escape(str(spool))}[/] (the station's --spool)")
        raise typer.Exit(1)
    return Spool(spool)


def _when(utc_iso: str | None, zone: ZoneInfo) -> str:
    if not utc_iso:
        return ""
    return dt.datetime.fromisoformat(utc_iso).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        err.print(f"[red]--timezone {escape(name)!r} is not a time zone (e.g. America/Los_Angeles)[/]")
        raise typer.Exit(2) from None


TimeZone = Annotated[
    str, typer.Option("--timezone", envvar="CURBSTOP_TIMEZONE", help="Zone to show times in.")
]


@spool_app.command("list")
def spool_list(
    spool: SpoolPath = DEFAULT_SPOOL,
    all_: Annotated[
        bool, typer.Option("--all", help="Also show batches already retried or discarded.")
    ] = False,
    timezone: TimeZone = "UTC",
) -> None:
    """Each dead batch: id, device, reads, the server's first error, when; and what the queue holds."""
    zone = _zone(timezone)
    s = _open(spool)
    try:
        dead = s.dead_batches(include_resolved=all_)
        counts = s.counts()
    finally:
        s.close()
    if not dead:
        console.print(f"no dead batches; {counts.unsent} reads queued for the server, {counts.total} held")
        return
    table = Table(title=f"Reads the server refused ({spool})")
    for col in ("id", "device", "reads", "status", "first error", "set aside"):
        table.add_column(col, justify="right" if col in ("id", "reads", "status") else "left")
    if all_:
        table.add_column("state")
    for d in dead:
        more = f" (+{len(d.errors) - 1} more)" if len(d.errors) > 1 else ""
        row = [str(d.id), d.device_id, str(d.read_count), str(d.http_status), escape(d.error + more)]
        row.append(_when(d.dead_at, zone))
        if all_:
            state = d.state
            if d.state != "dead":
                state += f" by {d.resolved_by} at {_when(d.resolved_at, zone)}"
            if d.export_path:
                state += f"; reads in {d.export_path}"
            row.append(escape(state))
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{counts.dead} reads set aside, {counts.unsent} queued. Fix the cause on the server (register the "
        "hand-held or meter), then `curbstop bridge spool retry ID`; or `curbstop bridge spool discard ID --yes`."
    )


@spool_app.command("show")
def spool_show(
    dead_id: Annotated[int, typer.Argument(help="Dead batch id (from spool list).")],
    spool: SpoolPath = DEFAULT_SPOOL,
    timezone: TimeZone = "UTC",
) -> None:
    """The reads of one dead batch, each with the server's message."""
    zone = _zone(timezone)
    s = _open(spool)
    try:
        d = s.dead_batch(dead_id)
        reads = s.dead_reads(dead_id)
    except SpoolError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    finally:
        s.close()
    table = Table(title=f"Dead batch {d.id}: {d.read_count} reads from {d.device_id}, {d.state}")
    for col in ("route", "seq", "meter", "reading", "read at", "server said"):
        table.add_column(col)
    for read, message in reads:
        reading = str(read.reading) if read.reading is not None else f"skip {read.skip_code}"
        table.add_row(
            read.route_id,
            str(read.sequence),
            read.meter_serial,
            reading,
            _when(read.read_at.isoformat(), zone),
            escape(message),
        )
    console.print(table)


@spool_app.command("retry")
def spool_retry(
    dead_ids: Annotated[list[int], typer.Argument(help="Dead batch id(s) to put back in the queue.")],
    spool: SpoolPath = DEFAULT_SPOOL,
    by: Who = "",
) -> None:
    """Put dead batches back in the queue once the cause is fixed; a running station posts them within seconds."""
    s = _open(spool)
    failed = False
    try:
        for dead_id in dead_ids:
            try:
                moved = s.retry(dead_id, by=by or _login())
            except SpoolError as exc:
                err.print(f"[red]{escape(str(exc))}[/]")
                failed = True
                continue
            console.print(f"dead batch {dead_id}: {moved} reads back in the queue")
    finally:
        s.close()
    if failed:
        raise typer.Exit(1)


@spool_app.command("discard")
def spool_discard(
    dead_id: Annotated[int, typer.Argument(help="Dead batch id (from spool list).")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: these reads will not be billed from here.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why (recorded with who and when).")] = "",
    export_dir: Annotated[
        Path | None, typer.Option(help="Where to write the reads (default: discarded/ beside the spool).")
    ] = None,
    spool: SpoolPath = DEFAULT_SPOOL,
    by: Who = "",
) -> None:
    """Give up on a dead batch: its reads are written to a file and kept in the spool, never silently lost."""
    s = _open(spool)
    try:
        d = s.dead_batch(dead_id)
        if not yes:
            err.print(
                f"dead batch {d.id} holds {d.read_count} reads from {d.device_id} ({escape(d.error)}).\n"
                "They will not reach the server from this station. Add --yes to discard them "
                "(they are written to a file and kept in the spool)."
            )
            raise typer.Exit(2)
        path = s.discard(dead_id, by=by or _login(), reason=reason, export_dir=export_dir)
    except SpoolError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    finally:
        s.close()
    console.print(f"dead batch {dead_id} discarded; its {d.read_count} reads are in {path}")


def simulate_handheld_command(
    state_dir: Annotated[Path, typer.Option(help="Where reads, routes and status.json live.")] = Path(
        "var/handheld-sim"
    ),
    device_id: Annotated[str, typer.Option(help="Device id reported in IDENT.")] = "HH-0001",
    reader_id: Annotated[str, typer.Option(help="Meter reader id written on each read.")] = "RDR1",
    walk: Annotated[
        bool,
        typer.Option(
            help="After a dock that loaded unread route records, leave the cradle, read them, and come back."
        ),
    ] = True,
    walk_s: Annotated[float, typer.Option(help="How long a walk of the route takes, s.")] = 10.0,
    skip_prob: Annotated[
        float, typer.Option(help="Probability a meter is skipped with a code (dog...).")
    ] = 0.03,
    misread_prob: Annotated[
        float, typer.Option(help="Probability a reading is keyed outside the route's limits.")
    ] = 0.0,
    baud: Annotated[int, typer.Option(help="Simulated line rate, bits per second.")] = 115_200,
    turnaround_ms: Annotated[float, typer.Option(help="Answer delay, ms.")] = 16.0,
    reads: Annotated[
        int,
        typer.Option(
            help="Synthetic reads of made-up meters to hold at start (tests against a stub; a real server refuses them)."
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed for readings and faults.")] = 0,
    flip: Annotated[float, typer.Option(help="Probability a frame gets a bit flipped.")] = 0.0,
    drop: Annotated[float, typer.Option(help="Probability a frame is dropped.")] = 0.0,
    dup: Annotated[float, typer.Option(help="Probability a sent frame is sent twice.")] = 0.0,
    garbage: Annotated[float, typer.Option(help="Probability of garbage bytes before a sent frame.")] = 0.0,
    hangups: Annotated[int, typer.Option(help="Most hang-ups mid-transfer.")] = 0,
    hangup_prob: Annotated[float, typer.Option(help="Probability of a hang-up per DATA frame.")] = 0.0,
    hangup_ms: Annotated[float, typer.Option(help="How long the line stays dead, ms.")] = 300.0,
    timer_floor_ms: Annotated[float, typer.Option(help="Shortest protocol timer, ms.")] = 250.0,
) -> None:
    """Run a virtual hand-held on a pty; prints the port path to open (also in <state-dir>/port)."""
    run_simulator(
        SimConfig(
            state_dir=state_dir,
            device_id=device_id,
            reader_id=reader_id,
            walk=walk,
            walk_s=walk_s,
            skip_prob=skip_prob,
            misread_prob=misread_prob,
            baud=baud,
            turnaround_s=turnaround_ms / 1000,
            sample_reads=reads,
            seed=seed,
            flip_prob=flip,
            drop_prob=drop,
            dup_prob=dup,
            garbage_prob=garbage,
            hangups=hangups,
            hangup_prob=hangup_prob,
            hangup_s=hangup_ms / 1000,
            timer_floor_s=timer_floor_ms / 1000,
        )
    )


def station_main() -> None:
    """Entry point of ``python -m device_bridge.station`` (also ``... station spool list``)."""
    bridge_app()


def simulator_main() -> None:
    """Entry point of ``python -m device_bridge.simulator``."""
    typer.run(simulate_handheld_command)
