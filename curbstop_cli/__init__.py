"""The `curbstop` command: the server's commands plus the docking station, the simulator and the field app.

It lives outside `server/` because the server must not import the programs that run on other machines
(`device_bridge`, `mobile`); this module only puts their commands side by side.
"""

from __future__ import annotations

from device_bridge.cli import bridge_app, simulate_handheld_command
from mobile.cli import mobile_command
from server.cli import app

app.add_typer(bridge_app, name="bridge")  # `curbstop bridge --port ...` and `curbstop bridge spool ...`
app.command("simulate-handheld")(simulate_handheld_command)
app.command("mobile")(mobile_command)

__all__ = ["app"]
