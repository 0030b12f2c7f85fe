"""Everything the screens are handed (no kivy): built once by `app.py` or by a test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from mobile.core.field import FieldWork
from mobile.core.route import Clock, RouteModel, utc_now
from mobile.core.settings import AppSettings, SettingsFile
from mobile.core.signin import AuthApi, SignInModel
from mobile.core.sync_state import SyncState
from mobile.platform.camera import DesktopCamera
from mobile.platform.gps import NoGps
from mobile.sync import Store


@dataclass
class Services:
    """The app's models and device services; screens receive this instead of looking them up."""

    store: Store
    settings: AppSettings
    settings_file: SettingsFile
    sync_state: SyncState
    sign_in: SignInModel
    route: RouteModel
    gps: NoGps
    camera: DesktopCamera
    clock: Clock = utc_now
    runner: Any = None  # mobile.background.SyncRunner once signed in
    start_sync: Callable[[], None] = lambda: None
    stop_sync: Callable[[], None] = lambda: None
    extra: dict[str, Any] = field(default_factory=dict)

    def zone(self) -> ZoneInfo:
        """The utility's zone, as the server gave it at sign-in."""
        return self.settings.zone

    def work(self) -> FieldWork:
        """A FieldWork for the signed-in CSFR on this device."""
        return FieldWork(
            self.store,
            csfr_id=self.settings.csfr_id,
            device_id=self.settings.device_id,
            clock=self.clock,
            locator=self.gps,
            on_written=lambda: self.route.refresh(),
        )


def build_services(
    *,
    store: Store,
    settings_file: SettingsFile,
    auth_api: AuthApi,
    gps: NoGps | None = None,
    camera: DesktopCamera | None = None,
    clock: Clock = utc_now,
) -> Services:
    """Wire the models together around one store and one settings file."""
    settings = settings_file.load()
    sync_state = SyncState()
    gps = gps or NoGps()
    return Services(
        store=store,
        settings=settings,
        settings_file=settings_file,
        sync_state=sync_state,
        sign_in=SignInModel(auth_api, settings, settings_file),
        route=RouteModel(store, sync_state, zone=lambda: settings.zone, clock=clock, position=gps.current),
        gps=gps,
        camera=camera or DesktopCamera(),
        clock=clock,
    )
