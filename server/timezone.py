"""The utility's time zone (`CURBSTOP_TIMEZONE`): every time a person sees is shown in it; storage is UTC.

One place for the fact: CLI tables, the demo's summary and the web pages' zone (`GET /api/time-zone`)
come from here. API JSON stays ISO-8601 with an offset (machine-readable), so it needs none of this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.config import Settings, get_settings

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The real clock (timezone-aware UTC)."""
    return dt.datetime.now(dt.UTC)


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError naming it when the tz database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {name!r} is not an IANA zone name (e.g. America/Los_Angeles, America/Chicago)"
        ) from None


def utility_zone(settings: Settings | None = None) -> ZoneInfo:
    """The utility's zone from the settings (`CURBSTOP_TIMEZONE`, default America/Los_Angeles)."""
    return zone_named((settings or get_settings()).timezone)


def to_local(moment: dt.datetime, zone: ZoneInfo | None = None) -> dt.datetime:
    """`moment` in the utility's zone; a naive datetime is refused (stored times are UTC-aware)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; stored times are timezone-aware UTC")
    return moment.astimezone(zone or utility_zone())


def zone_abbreviation(zone: ZoneInfo, at: dt.datetime | dt.date) -> str:
    """The zone's short name in effect at `at` ('PST' in winter, 'PDT' in summer)."""
    moment = at if isinstance(at, dt.datetime) else dt.datetime.combine(at, dt.time(12))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone).tzname() or zone.key


def format_local(
    moment: dt.datetime, zone: ZoneInfo | None = None, *, fmt: str = "%H:%M", with_zone: bool = True
) -> str:
    """'07:00 PST': `moment` in the utility's zone, formatted, followed by the zone's abbreviation."""
    local = to_local(moment, zone)
    text = local.strftime(fmt)
    return f"{text} {local.tzname()}" if with_zone else text


def format_day(day: dt.date) -> str:
    """'Tuesday 1 December 2026' (a date as a person reads it)."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def local_today(*, zone: ZoneInfo | None = None, clock: Clock = utc_now) -> dt.date:
    """The utility's date now (at 23:30 Pacific it is still that Pacific day, though UTC is the next)."""
    return clock().astimezone(zone or utility_zone()).date()
