"""Distances and the flat projection the route map draws with (no tiles: the tablet may be offline)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_000.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def format_distance(distance_m: float | None) -> str:
    """'350 m', '2.4 km' or '' when unknown."""
    if distance_m is None:
        return ""
    if distance_m < 1000:
        return f"{distance_m:.0f} m"
    return f"{distance_m / 1000:.1f} km"


@dataclass(frozen=True)
class Projection:
    """Equirectangular projection of a lat/lon box onto a width x height pixel area (y grows upwards)."""

    min_lat: float
    min_lon: float
    scale_px_per_deg_lat: float
    lon_factor: float  # cos(mean latitude): a degree of longitude is shorter than one of latitude
    offset_x: float
    offset_y: float

    @classmethod
    def fit(
        cls, points: Sequence[tuple[float, float]], width: float, height: float, margin_px: float = 24.0
    ) -> Projection:
        """The projection that fits every (lat, lon) in `points` inside the area, keeping the aspect ratio."""
        if not points:
            return cls(0.0, 0.0, 1.0, 1.0, width / 2, height / 2)
        lats = [p[0] for p in points]
        lons = [p[1] for p in points]
        lon_factor = math.cos(math.radians((min(lats) + max(lats)) / 2))
        span_y = max(max(lats) - min(lats), 1e-6)
        span_x = max((max(lons) - min(lons)) * lon_factor, 1e-6)
        usable_w = max(width - 2 * margin_px, 1.0)
        usable_h = max(height - 2 * margin_px, 1.0)
        scale = min(usable_w / span_x, usable_h / span_y)
        # centre the drawing in the area
        offset_x = margin_px + (usable_w - span_x * scale) / 2
        offset_y = margin_px + (usable_h - span_y * scale) / 2
        return cls(min(lats), min(lons), scale, lon_factor, offset_x, offset_y)

    def to_px(self, lat: float, lon: float) -> tuple[float, float]:
        """Pixel (x, y) of a point, relative to the area's lower-left corner."""
        x = self.offset_x + (lon - self.min_lon) * self.lon_factor * self.scale_px_per_deg_lat
        y = self.offset_y + (lat - self.min_lat) * self.scale_px_per_deg_lat
        return x, y
