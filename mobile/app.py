"""The field app: wires services and screens; `run_app()` runs it on a desktop (or Android via main.py)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.core.window import Window
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from mobile.background import SyncRunner, remote_for
from mobile.core.settings import SettingsFile
from mobile.core.signin import AuthApi
from mobile.net import HttpAuthApi
from mobile.platform.camera import DesktopCamera, default_camera
from mobile.platform.gps import NoGps, default_gps
from mobile.screens import common  # noqa: F401  (shared widget rules and the colour scheme)
from mobile.services import Services, build_services
from mobile.sync import Store

BACKGROUND = (0.94, 0.95, 0.96, 1)


class Navigator:
    """Shows screens by name, building each on first use, and passes them parameters."""

    def __init__(self, manager: ScreenManager, services: Services) -> None:
        self.manager = manager
        self.services = services
        self.built: dict[str, Screen] = {}
        self.history: list[str] = []

    def screen(self, name: str) -> Screen:
        """The screen called `name`, importing and building it the first time."""
        if name not in self.built:
            module = importlib.import_module(f"mobile.screens.{name}")
            screen = module.build(self.services, self)
            screen.name = name
            self.manager.add_widget(screen)
            self.built[name] = screen
        return self.built[name]

    def show(self, name: str, **params: Any) -> Screen:
        """Build if needed, hand over `params` (`screen.enter(**params)`), switch to it."""
        screen = self.screen(name)
        enter = getattr(screen, "enter", None)
        if enter is not None:
            enter(**params)
        if self.manager.current != name:
            self.history.append(self.manager.current)
        self.manager.current = name
        return screen

    @property
    def current(self) -> Screen:
        """The screen on show."""
        return self.manager.current_screen


def start_sync(services: Services) -> None:
    """Start the background sync thread for the remembered session (no-op without one)."""
    session = services.settings.session
    if session is None or services.runner is not None:
        return
    runner = SyncRunner(
        services.store,
        lambda: remote_for(session),
        services.sync_state,
        on_synced=lambda: services.route.refresh(),
        poll_s=float(os.environ.get("CURBSTOP_SYNC_POLL_S", "20")),
    )
    services.runner = runner
    runner.start()


def stop_sync(services: Services) -> None:
    """Stop the background sync thread."""
    if services.runner is not None:
        services.runner.stop()
        services.runner = None


class FieldApp(App):
    """The Kivy application: one ScreenManager, a Navigator, services handed in."""

    title = "Curbstop field"

    def __init__(self, services: Services, *, autostart_sync: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.autostart_sync = autostart_sync
        self.navigator: Navigator | None = None
        services.start_sync = lambda: start_sync(services)
        services.stop_sync = lambda: stop_sync(services)

    def build(self) -> ScreenManager:
        """The root: a ScreenManager opening on the route when signed in, else on sign-in."""
        Window.clearcolor = BACKGROUND
        manager = ScreenManager(transition=NoTransition())
        self.navigator = Navigator(manager, self.services)
        if self.services.settings.signed_in:
            self.navigator.show("route")
            if self.autostart_sync:
                self.services.start_sync()
        else:
            self.navigator.show("signin")
        return manager

    def on_pause(self) -> bool:
        """Android: keep running in the background (sync goes on)."""
        return True

    def on_stop(self) -> None:
        """Stop sync and the GPS, close the store."""
        self.services.stop_sync()
        self.services.gps.stop()


def make_services(
    data_dir: Path,
    *,
    auth_api: AuthApi | None = None,
    gps: NoGps | None = None,
    camera: DesktopCamera | None = None,
) -> Services:
    """Services over `<data_dir>/tablet.sqlite` and `<data_dir>/settings.json`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return build_services(
        store=Store(data_dir / "tablet.sqlite"),
        settings_file=SettingsFile(data_dir / "settings.json"),
        auth_api=auth_api or HttpAuthApi(),
        gps=gps or default_gps(),
        camera=camera or default_camera(),
    )


def run_app(data_dir: Path | None = None, *, server_url: str | None = None, demo_orders: int = 0) -> None:
    """Run the field app on this machine (a desktop window, or the Android activity)."""
    data_dir = data_dir or Path(os.environ.get("CURBSTOP_MOBILE_DIR", "var/mobile"))
    services = make_services(data_dir)
    if server_url and not services.settings.signed_in:
        services.settings.server_url = server_url
        services.sign_in.server_url = server_url
    if demo_orders:
        from mobile.core.demo import demo_orders as make_demo
        from mobile.core.settings import SyncSession

        if not services.settings.signed_in:
            # demo without a server: a session to nowhere, so the route opens and sync shows "Offline";
            # the zone a server would send (its CURBSTOP_TIMEZONE, the same default).
            services.settings.username = "demo"
            services.settings.session = SyncSession(
                "http://127.0.0.1:9",
                "csfr-t05",
                "demo",
                "demo",
                5,
                "T05",
                os.environ.get("CURBSTOP_TIMEZONE", "America/Los_Angeles"),
            )
            services.settings_file.save(services.settings)

        for order in make_demo(demo_orders, zone=services.zone()):
            if not services.store.all_docs(prefix=order.doc_id()):
                services.store.put(order.to_couch())
    services.gps.start()
    try:
        FieldApp(services).run()
    finally:
        services.store.close()
