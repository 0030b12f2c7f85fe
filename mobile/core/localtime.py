"""The utility's time zone on the tablet: every time the rep sees, and what "today" is.

The zone comes from the server with the sync session (`SyncSession.time_zone`, the server's
`CURBSTOP_TIMEZONE`), never from the tablet's own clock settings: a tablet set to UTC or to another
zone still shows the utility's times and the utility's day. Needs the IANA tz database: the system's on
a desktop, the `tzdata` package on Android (buildozer.spec lists it).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = ZoneInfo("UTC")


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError naming it when this tablet's tz database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {name!r} is unknown on this tablet (not an IANA name, or no tz database: install tzdata)"
        ) from None


def local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """`moment` in `zone` (a naive time is taken as UTC: every document time is written in UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zone)


def hm(moment: dt.datetime, zone: ZoneInfo) -> str:
    """'06:30' in the utility's zone."""
    return local(moment, zone).strftime("%H:%M")


def hm_zone(moment: dt.datetime, zone: ZoneInfo) -> str:
    """'06:30 PST': the time and the zone's abbreviation in effect then."""
    at = local(moment, zone)
    return f"{at:%H:%M} {at.tzname() or zone.key}"


def local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The utility's date at `moment` (23:30 Pacific is still that day, though UTC is the next)."""
    return local(moment, zone).date()


def abbreviation(zone: ZoneInfo, day: dt.date) -> str:
    """The zone's short name on `day` ('PST' in winter, 'PDT' in summer)."""
    return dt.datetime.combine(day, dt.time(12), tzinfo=zone).tzname() or zone.key


def day_label(day: dt.date) -> str:
    """'Tuesday 1 December 2026'."""
    return f"{day:%A} {day.day} {day:%B %Y}"
