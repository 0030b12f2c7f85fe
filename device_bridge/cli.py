"""Command line for the device bridge: `curbstop bridge` and `curbstop simulate-handheld`.

The lead's `server/cli.py` mounts `bridge_app` (``app.add_typer(bridge_app)`` puts both commands at
the top level), or registers `bridge_command` / `simulate_handheld_command` one by one. Both also run
stand-alone: ``python -m device_bridge.station`` and ``python -m device_bridge.simulator``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from device_bridge.simulator import SimConfig, run_simulator
from device_bridge.station import StationConfig, run_station

bridge_app = typer.Typer(help="Docking station and hand-held simulator.", no_args_is_help=True)


@bridge_app.command("bridge")
def bridge_command(
    port: Annotated[
        list[str], typer.Option("--port", "-p", help="Serial port or pyserial URL; repeat for more.")
    ],
    server: Annotated[
        str, typer.Option(envvar="CURBSTOP_SERVER_URL", help="Server base URL.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[str, typer.Option(envvar="CURBSTOP_STATION_TOKEN", help="Station API token.")] = "",
    spool: Annotated[Path, typer.Option(help="SQLite spool file.")] = Path("var/bridge/spool.db"),
    log_file: Annotated[Path, typer.Option("--log", help="Plain log file for a supervisor.")] = Path(
        "var/bridge/bridge.log"
    ),
    baud: Annotated[int, typer.Option(help="Line rate, bits per second.")] = 115_200,
    turnaround_ms: Annotated[float, typer.Option(help="Slowest hand-held's answer delay, ms.")] = 16.0,
    timer_floor_ms: Annotated[float, typer.Option(help="Shortest protocol timer, ms.")] = 250.0,
    retry_base_s: Annotated[float, typer.Option(help="First back-off after a failed post, s.")] = 0.5,
    retry_max_s: Annotated[float, typer.Option(help="Longest back-off, s.")] = 30.0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Watch docking-station ports: unload reads to the spool and server, load routes."""
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
            progress=progress,
        )
    )


@bridge_app.command("simulate-handheld")
def simulate_handheld_command(
    state_dir: Annotated[Path, typer.Option(help="Where reads, routes and status.json live.")] = Path(
        "var/handheld-sim"
    ),
    device_id: Annotated[str, typer.Option(help="Device id reported in IDENT.")] = "HH-0001",
    baud: Annotated[int, typer.Option(help="Simulated line rate, bits per second.")] = 115_200,
    turnaround_ms: Annotated[float, typer.Option(help="Answer delay, ms.")] = 16.0,
    reads: Annotated[int, typer.Option(help="Sample reads to hold when reads.jsonl does not exist.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed for sample data and faults.")] = 0,
    flip: Annotated[float, typer.Option(help="Probability a frame gets a bit flipped.")] = 0.0,
    drop: Annotated[float, typer.Option(help="Probability a frame is dropped.")] = 0.0,
    dup: Annotated[float, typer.Option(help="Probability a sent frame is sent twice.")] = 0.0,
    garbage: Annotated[float, typer.Option(help="Probability of garbage bytes before a sent frame.")] = 0.0,
    hangups: Annotated[int, typer.Option(help="Most hang-ups mid-transfer.")] = 0,
    hangup_prob: Annotated[float, typer.Option(help="Probability of a hang-up per DATA frame.")] = 0.0,
    hangup_ms: Annotated[float, typer.Option(help="How long the line stays dead, ms.")] = 300.0,
    timer_floor_ms: Annotated[float, typer.Option(help="Shortest protocol timer, ms.")] = 250.0,
) -> None:
    """Run a virtual hand-held on a pty; prints the port path to open."""
    run_simulator(
        SimConfig(
            state_dir=state_dir,
            device_id=device_id,
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
    """Entry point of ``python -m device_bridge.station``."""
    typer.run(bridge_command)


def simulator_main() -> None:
    """Entry point of ``python -m device_bridge.simulator``."""
    typer.run(simulate_handheld_command)
