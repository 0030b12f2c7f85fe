"""UI tier: a private Xvfb display for the session and the real field app driven in-process.

Xvfb runs on a free display number and is killed at teardown. Without Xvfb the tier is skipped
with the reason, except under CI=true, where it fails (CI must run it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KIVY_NO_ARGS", "1")  # Kivy must not parse pytest's arguments
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")

WIDTH, HEIGHT = 1280, 800  # a 10" landscape tablet in dp at density 1


def _free_display() -> int:
    for number in range(91, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number between :91 and :199")


@pytest.fixture(scope="session")
def xvfb() -> Iterator[str]:
    """A private virtual display (':N'), exported as DISPLAY for this process."""
    binary = shutil.which("Xvfb")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is required in CI for the ui tier (scripts/setup.sh installs it)")
        pytest.skip("Xvfb is not installed (apt-get install xvfb, or run scripts/setup.sh)")
    number = _free_display()
    process = subprocess.Popen(
        [binary, f":{number}", "-screen", "0", f"{WIDTH}x{HEIGHT}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 10
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Xvfb :{number} did not start")
        time.sleep(0.05)
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield f":{number}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous


@pytest.fixture(scope="session")
def kivy_window(xvfb: str) -> Any:
    """Kivy's one window for the session, tablet-sized."""
    from kivy.config import Config

    Config.set("graphics", "width", str(WIDTH))
    Config.set("graphics", "height", str(HEIGHT))
    Config.set("input", "mouse", "mouse,disable_multitouch")
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    return EventLoop.window


@pytest.fixture
def make_driver(kivy_window: Any) -> Iterator[Callable[[Any], Any]]:
    """Build a Driver around services; closed at teardown."""
    from tests.mobile.ui.driver import Driver

    drivers: list[Driver] = []

    def make(services: Any) -> Driver:
        driver = Driver(services)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.close()
