"""Position fixes: plyer's GPS on Android; on a desktop there is none (or a fixed one for demos and tests)."""

from __future__ import annotations

import threading
from typing import Any

from contracts.couch import GeoPoint
from mobile.platform import on_android


class NoGps:
    """Desktop fall-back: no fix, events are recorded without GPS."""

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""

    def current(self) -> GeoPoint | None:
        """Always None."""
        return None


class FixedGps(NoGps):
    """A fixed position (demo mode and tests)."""

    def __init__(self, point: GeoPoint) -> None:
        self.point = point

    def current(self) -> GeoPoint | None:
        """The fixed point."""
        return self.point


class PlyerGps(NoGps):
    """plyer.gps: keeps the latest fix from the platform's location callbacks."""

    def __init__(self, min_time_ms: int = 5000, min_distance_m: float = 5.0) -> None:
        self._lock = threading.Lock()
        self._latest: GeoPoint | None = None
        self.min_time_ms = min_time_ms
        self.min_distance_m = min_distance_m
        self._started = False

    def _on_location(self, **kwargs: Any) -> None:
        try:
            point = GeoPoint(
                lat=float(kwargs["lat"]), lon=float(kwargs["lon"]), accuracy_m=kwargs.get("accuracy")
            )
        except (KeyError, TypeError, ValueError):
            return
        with self._lock:
            self._latest = point

    def start(self) -> None:
        """Ask the platform for updates (the app must hold the location permission)."""
        from plyer import gps  # imported here: plyer picks its platform backend on import

        gps.configure(on_location=self._on_location)
        gps.start(minTime=self.min_time_ms, minDistance=self.min_distance_m)
        self._started = True

    def stop(self) -> None:
        """Stop location updates (on pause)."""
        if self._started:
            from plyer import gps

            gps.stop()
            self._started = False

    def current(self) -> GeoPoint | None:
        """The latest fix, or None before the first one."""
        with self._lock:
            return self._latest


def default_gps() -> NoGps:
    """PlyerGps on Android, NoGps on a desktop."""
    return PlyerGps() if on_android() else NoGps()
