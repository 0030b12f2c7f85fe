"""Travel-time sources behind one interface: straight-line estimates or a road network (OSRM).

A source turns a list of locations into a square matrix of whole seconds; entry [i][j] is the
time to drive from locations[i] to locations[j].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import httpx
import numpy as np

from routing.model import Location

EARTH_RADIUS_M = 6_371_008.8


@runtime_checkable
class TravelTimeSource(Protocol):
    """Anything that gives travel seconds between locations."""

    def matrix(self, locations: Sequence[Location]) -> list[list[int]]:
        """Square matrix of travel seconds, ``[i][j]`` from ``locations[i]`` to ``locations[j]``."""
        ...


class HaversineTravel:
    """Great-circle distance times a circuity factor, driven at an average speed.

    Parameters
    ----------
    speed_kmh
        Average door-to-door driving speed.
    circuity
        Road distance over straight-line distance (1.3 is typical for a street grid).
    """

    def __init__(self, *, speed_kmh: float = 30.0, circuity: float = 1.3) -> None:
        if not speed_kmh > 0:
            raise ValueError(f"HaversineTravel.speed_kmh must be > 0, got {speed_kmh!r}")
        if not circuity >= 1:
            raise ValueError(f"HaversineTravel.circuity must be >= 1, got {circuity!r}")
        self.speed_kmh = speed_kmh
        self.circuity = circuity

    def distance_m(self, locations: Sequence[Location]) -> np.ndarray:
        """Matrix of road-estimate metres (great circle times circuity)."""
        lat = np.radians(np.array([p.lat for p in locations], dtype=float))
        lon = np.radians(np.array([p.lon for p in locations], dtype=float))
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
        great_circle = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        result: np.ndarray = great_circle * self.circuity
        return result

    def matrix(self, locations: Sequence[Location]) -> list[list[int]]:
        """Travel seconds, rounded to the nearest second."""
        if not locations:
            return []
        seconds = np.rint(self.distance_m(locations) / (self.speed_kmh / 3.6)).astype(np.int64)
        out: list[list[int]] = seconds.tolist()
        return out


class EuclideanTravel:
    """Planar distance between (lon, lat) read as (x, y), for test instances such as Solomon's.

    ``scale`` multiplies the distance before it is truncated to an integer, so ``scale=10`` is the
    DIMACS convention (one decimal, truncated).
    """

    def __init__(self, *, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"EuclideanTravel.scale must be > 0, got {scale!r}")
        self.scale = scale

    def matrix(self, locations: Sequence[Location]) -> list[list[int]]:
        """Truncated scaled Euclidean distances."""
        if not locations:
            return []
        x = np.array([p.lon for p in locations], dtype=float)
        y = np.array([p.lat for p in locations], dtype=float)
        d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) * self.scale
        # A tiny epsilon keeps exact values such as 10 * 2.3 from truncating to 22.
        out: list[list[int]] = np.floor(d + 1e-9).astype(np.int64).tolist()
        return out


class OsrmError(RuntimeError):
    """The OSRM table service refused or answered something unusable."""


class OsrmTravel:
    """Road-network travel times from an OSRM server's table API.

    Parameters
    ----------
    base_url
        Server root, e.g. ``http://osrm:5000``.
    profile
        Routing profile in the URL (``driving``).
    client
        An ``httpx.Client`` to use; pass one with ``transport=httpx.MockTransport(...)`` in tests.
    max_table_size
        Largest number of sources (and of destinations) per request; OSRM's default limit is 100.
    unreachable_s
        Seconds used where OSRM reports no route (``null``), large enough that no plan uses it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        profile: str = "driving",
        client: httpx.Client | None = None,
        max_table_size: int = 100,
        unreachable_s: int = 10 * 24 * 3600,
        timeout_s: float = 30.0,
    ) -> None:
        if max_table_size < 1:
            raise ValueError(f"OsrmTravel.max_table_size must be >= 1, got {max_table_size}")
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.client = client if client is not None else httpx.Client(timeout=timeout_s)
        self.max_table_size = max_table_size
        self.unreachable_s = unreachable_s

    def _table(self, coords: str, sources: list[int], destinations: list[int]) -> list[list[float | None]]:
        url = f"{self.base_url}/table/v1/{self.profile}/{coords}"
        params = {
            "sources": ";".join(map(str, sources)),
            "destinations": ";".join(map(str, destinations)),
            "annotations": "duration",
        }
        try:
            response = self.client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise OsrmError(f"OSRM table request to {self.base_url} failed: {exc}") from exc
        if response.status_code != 200:
            raise OsrmError(f"OSRM table request answered HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        if body.get("code") != "Ok":
            raise OsrmError(
                f"OSRM table request answered code {body.get('code')!r}: {body.get('message', '')}"
            )
        durations = body.get("durations")
        if not isinstance(durations, list) or len(durations) != len(sources):
            raise OsrmError("OSRM table answer has no durations matrix of the requested size")
        result: list[list[float | None]] = durations
        return result

    def matrix(self, locations: Sequence[Location]) -> list[list[int]]:
        """Travel seconds from OSRM, rounded; unreachable pairs get ``unreachable_s``."""
        n = len(locations)
        if n == 0:
            return []
        # OSRM wants lon,lat pairs; 6 decimals is 0.1 m.
        coords = ";".join(f"{p.lon:.6f},{p.lat:.6f}" for p in locations)
        out = [[0] * n for _ in range(n)]
        step = self.max_table_size
        for i0 in range(0, n, step):
            sources = list(range(i0, min(n, i0 + step)))
            for j0 in range(0, n, step):
                destinations = list(range(j0, min(n, j0 + step)))
                rows = self._table(coords, sources, destinations)
                for si, row in zip(sources, rows, strict=True):
                    if len(row) != len(destinations):
                        raise OsrmError(f"OSRM table row for source {si} has {len(row)} entries")
                    for dj, value in zip(destinations, row, strict=True):
                        out[si][dj] = self.unreachable_s if value is None else math.floor(value + 0.5)
        return out
