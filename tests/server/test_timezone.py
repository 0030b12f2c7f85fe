"""The utility's time zone helper: what every time shown to a person is converted and labelled with."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from server.config import Settings
from server.timezone import format_day, format_local, local_today, to_local, utility_zone, zone_abbreviation

PACIFIC = ZoneInfo("America/Los_Angeles")


def test_format_local_shows_the_utility_zone_not_utc() -> None:
    """15:00 UTC on a December day is 07:00 PST; in July 14:00 UTC is 07:00 PDT."""
    assert format_local(dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC), PACIFIC) == "07:00 PST"
    assert format_local(dt.datetime(2026, 7, 2, 14, 0, tzinfo=dt.UTC), PACIFIC) == "07:00 PDT"
    assert format_local(dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC), PACIFIC, with_zone=False) == "07:00"
    assert zone_abbreviation(PACIFIC, dt.date(2026, 12, 2)) == "PST"


def test_naive_times_are_refused() -> None:
    """A naive datetime would be read in the machine's zone: refused, naming the value."""
    with pytest.raises(ValueError, match="2026-12-02T15:00:00 has no time zone"):
        to_local(dt.datetime(2026, 12, 2, 15, 0), PACIFIC)


def test_local_today_is_the_utility_date_late_in_the_evening() -> None:
    """At 23:30 Pacific (07:30 UTC the next day) the utility's today is still the Pacific date."""
    late = dt.datetime(2026, 12, 2, 7, 30, tzinfo=dt.UTC)
    assert local_today(zone=PACIFIC, clock=lambda: late) == dt.date(2026, 12, 1)
    assert format_day(dt.date(2026, 12, 1)) == "Tuesday 1 December 2026"


def test_setting_names_the_zone_and_refuses_an_unknown_one() -> None:
    """CURBSTOP_TIMEZONE selects the zone; an unknown name stops start-up with a message naming it."""
    assert utility_zone(Settings(timezone="America/Chicago")).key == "America/Chicago"
    with pytest.raises(ValidationError, match="'Mars/Olympus' is not an IANA time zone name"):
        Settings(timezone="Mars/Olympus")
