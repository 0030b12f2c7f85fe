"""The look-ahead: work spread over the next working days by due day and the crew's hours by skill."""

from __future__ import annotations

from collections import Counter

import pytest

from routing.horizon import assign_days
from tests.routing.conftest import MIN, stop, tech

TESTERS = [tech(f"t{k}", skills=frozenset({"read", "meter_test"})) for k in range(3)]
READERS = [tech(f"r{k}", skills=frozenset({"read"})) for k in range(3)]


def test_periodic_work_fills_today_then_flows_evenly() -> None:
    """Sixty meter tests due within the month, raised on one day: today takes what its three testers
    have room for (6 h each: 24 tests), the other 36 go about nine to each of the next four days,
    rather than all on one day."""
    days = [TESTERS + READERS] * 5
    tests = [
        stop(f"m{k}", k, 0, service_s=45 * MIN, required_skills=frozenset({"meter_test"})) for k in range(60)
    ]
    result = assign_days(days, tests, {s.id: 20 for s in tests})
    per_day = Counter(result.day_of.values())
    assert per_day[0] == 24
    later = [per_day[d] for d in range(1, 5)]
    assert sum(later) == 36 and max(later) - min(later) <= 1
    assert not result.late


def test_work_due_soonest_takes_today() -> None:
    """When today cannot hold everything, the rereads due today stay today and the periodic tests
    that can wait move to later days."""
    days = [TESTERS[:1]] * 3  # one technician: 8 h less the driving share = 6 h a day
    rereads = [
        stop(f"read{k}", k, 1, service_s=30 * MIN, required_skills=frozenset({"read"})) for k in range(8)
    ]
    tests = [
        stop(f"m{k}", k, 0, service_s=45 * MIN, required_skills=frozenset({"meter_test"})) for k in range(8)
    ]
    due = {s.id: 0 for s in rereads} | {s.id: 10 for s in tests}
    result = assign_days(days, tests + rereads, due)
    assert all(result.day_of[s.id] == 0 for s in rereads)
    assert sum(result.day_of[s.id] == 0 for s in tests) <= 2
    assert not result.late


def test_work_that_cannot_make_its_due_day_is_reported_late() -> None:
    """Work that fits no day up to its due day is still placed, and flagged late."""
    days = [TESTERS[:1]] * 2
    tests = [
        stop(f"m{k}", k, 0, service_s=2 * 60 * MIN, required_skills=frozenset({"meter_test"}))
        for k in range(5)
    ]
    result = assign_days(days, tests, {s.id: 0 for s in tests})
    assert result.late and len(result.late) == 2
    assert set(result.day_of) == {s.id for s in tests}


def test_empty_look_ahead_is_refused() -> None:
    """A look-ahead without days is a clear error."""
    with pytest.raises(ValueError, match="days is empty"):
        assign_days([], [], {})
