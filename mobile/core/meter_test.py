"""Field meter accuracy test: volumes at three flows against the reference, limits by meter size.

Test flows and limits from DOMAIN.md (Illinois 83 IAC 600.310, AWWA C700). The limits are policy
settings (`AccuracyLimits`), defaulting to the in-service ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class FlowPoint(StrEnum):
    """The three test points."""

    LOW = "low"  # minimum test flow
    INTERMEDIATE = "intermediate"
    HIGH = "high"


@dataclass(frozen=True)
class TestFlows:
    """Test flow rates in gallons per minute for one meter size, and its maximum normal flow."""

    low_gpm: float
    intermediate_gpm: float
    high_gpm: float
    max_normal_gpm: float

    def gpm(self, point: FlowPoint) -> float:
        """The flow rate of a test point."""
        return {
            FlowPoint.LOW: self.low_gpm,
            FlowPoint.INTERMEDIATE: self.intermediate_gpm,
            FlowPoint.HIGH: self.high_gpm,
        }[point]


# DOMAIN.md "Meter accuracy tests" table (displacement meters), keyed by nominal size in inches.
TEST_FLOWS: dict[str, TestFlows] = {
    '5/8"': TestFlows(0.25, 2, 15, 20),
    '3/4"': TestFlows(0.5, 3, 25, 30),
    '1"': TestFlows(0.75, 4, 40, 50),
    '1 1/2"': TestFlows(1.5, 8, 80, 100),
    '2"': TestFlows(2, 15, 120, 160),
}


def normalise_size(size_in: str | None) -> str | None:
    """'5/8x3/4' -> '5/8"' (the first number names the meter), '1-1/2' -> '1 1/2"'; None if unknown."""
    if not size_in:
        return None
    text = size_in.strip().lower().replace('"', "").replace("in", "").strip()
    text = re.split(r"\s*x\s*", text)[0]
    text = re.sub(r"^(\d+)[-\s]+(\d+/\d+)$", r"\1 \2", text)
    text = {"1.5": "1 1/2", "0.625": "5/8", "0.75": "3/4"}.get(text, text)
    key = f'{text}"'
    return key if key in TEST_FLOWS else None


@dataclass(frozen=True)
class AccuracyLimits:
    """Accepted accuracy in percent: one band at the minimum flow, one at the others."""

    low_min_pct: float = 90.0
    low_max_pct: float = 101.5
    other_min_pct: float = 98.5
    other_max_pct: float = 101.5

    def band(self, point: FlowPoint) -> tuple[float, float]:
        """(min %, max %) for a test point."""
        if point is FlowPoint.LOW:
            return self.low_min_pct, self.low_max_pct
        return self.other_min_pct, self.other_max_pct


IN_SERVICE_LIMITS = AccuracyLimits()  # repaired or in-service meters
NEW_METER_LIMITS = AccuracyLimits(low_min_pct=95.0)  # AWWA C700 for new meters


def accuracy_pct(meter_volume: float, reference_volume: float) -> float:
    """100 x meter volume / reference volume."""
    if reference_volume <= 0:
        raise ValueError(f"reference volume must be positive, got {reference_volume}")
    if meter_volume < 0:
        raise ValueError(f"meter volume cannot be negative, got {meter_volume}")
    return 100.0 * meter_volume / reference_volume


@dataclass(frozen=True)
class PointResult:
    """One test point's measured accuracy and verdict."""

    point: FlowPoint
    flow_gpm: float | None
    meter_volume: float
    reference_volume: float
    accuracy_pct: float
    min_pct: float
    max_pct: float

    @property
    def passed(self) -> bool:
        """Inside the band for this point."""
        return self.min_pct <= self.accuracy_pct <= self.max_pct


@dataclass(frozen=True)
class MeterTestOutcome:
    """All three points, the overall verdict and the billing-error average."""

    points: tuple[PointResult, ...]

    @property
    def passed(self) -> bool:
        """Every point inside its band."""
        return all(p.passed for p in self.points)

    @property
    def billing_accuracy_pct(self) -> float:
        """Average accuracy of the intermediate and high points (the minimum flow is left out)."""
        others = [p.accuracy_pct for p in self.points if p.point is not FlowPoint.LOW]
        return sum(others) / len(others)

    @property
    def recommendation(self) -> str:
        """'keep' when it passed, else 'replace'."""
        return "keep" if self.passed else "replace"


def evaluate(
    volumes: dict[FlowPoint, tuple[float, float]],
    size_in: str | None,
    limits: AccuracyLimits = IN_SERVICE_LIMITS,
) -> MeterTestOutcome:
    """Accuracy at each point from (meter volume, reference volume) and the verdict against `limits`."""
    missing = [p.value for p in FlowPoint if p not in volumes]
    if missing:
        raise ValueError(f"missing test point(s): {', '.join(missing)}")
    size = normalise_size(size_in)
    flows = TEST_FLOWS.get(size) if size else None
    results = []
    for point in FlowPoint:
        meter_volume, reference_volume = volumes[point]
        low, high = limits.band(point)
        results.append(
            PointResult(
                point=point,
                flow_gpm=flows.gpm(point) if flows else None,
                meter_volume=meter_volume,
                reference_volume=reference_volume,
                accuracy_pct=accuracy_pct(meter_volume, reference_volume),
                min_pct=low,
                max_pct=high,
            )
        )
    return MeterTestOutcome(tuple(results))
