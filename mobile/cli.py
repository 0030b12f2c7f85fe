"""`curbstop mobile`: run the field app on a desktop (the lead mounts `mobile_command` on the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def mobile_command(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the tablet keeps its store and settings")
    ] = Path("var/mobile"),
    server: Annotated[str | None, typer.Option("--server", help="Server URL pre-filled on sign-in")] = None,
    demo_orders: Annotated[
        int,
        typer.Option("--demo-orders", help="Put N generated orders in the local store (no server needed)"),
    ] = 0,
) -> None:
    """Run the field app (Kivy) in a desktop window."""
    import os

    os.environ.setdefault("KIVY_NO_ARGS", "1")  # Kivy must not parse the CLI's own arguments
    from mobile.app import run_app

    run_app(data_dir, server_url=server, demo_orders=demo_orders)


def main() -> None:
    """`python -m mobile`."""
    typer.run(mobile_command)
