"""Drives the real field app inside the test process: one Kivy window, frames pumped by hand.

Kivy opens one window per process, so the driver builds `FieldApp`'s root into the shared window
(as Kivy's own GraphicUnitTest does) and pumps `EventLoop.idle()` instead of `App.run()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.base import EventLoop
from kivy.core.window import Window

from mobile.app import FieldApp
from mobile.services import Services

SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


class Driver:
    """Taps, types and screenshots the running app."""

    def __init__(self, services: Services) -> None:
        self.services = services
        EventLoop.ensure_window()
        for child in list(Window.children):
            Window.remove_widget(child)
        self.app = FieldApp(services, autostart_sync=False)
        self.root = self.app.build()
        self.app.root = self.root
        Window.add_widget(self.root)
        self.pump(5)

    @property
    def nav(self) -> Any:
        """The app's navigator."""
        return self.app.navigator

    @property
    def screen(self) -> Any:
        """The screen on show."""
        return self.root.current_screen

    def pump(self, frames: int = 3) -> None:
        """Let Kivy run `frames` frames (layout, clock callbacks, drawing)."""
        for _ in range(frames):
            EventLoop.idle()

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Pump frames until `condition()` holds."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {condition}")
            self.pump(1)
            time.sleep(0.01)

    def tap(self, widget: Any) -> None:
        """Press and release a button the way a finger would (its on_press/on_release handlers run)."""
        assert not widget.disabled, f"{widget} is disabled"
        widget.trigger_action(duration=0)
        self.pump(3)

    def type(self, widget: Any, text: str) -> None:
        """Type into a TextInput (through its filter, as the keyboard would)."""
        widget.text = ""
        widget.insert_text(text)
        self.pump(2)

    def shot(self, name: str) -> Path:
        """Screenshot the window to test-artifacts/screenshots/<name>.png."""
        self.pump(4)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        written = Window.screenshot(name=str(SCREENSHOTS / f"{name}.png"))
        target = SCREENSHOTS / f"{name}.png"
        Path(written).replace(target)
        return target

    def close(self) -> None:
        """Detach the app from the window and stop its services."""
        self.services.stop_sync()
        Window.remove_widget(self.root)
        self.pump(1)
