"""Business days, holidays and the days a utility must not shut water off (pure; no database)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import holidays

from server.orders.policy import CalendarPolicy, ShutoffPolicy


def years_after(day: dt.date, years: int) -> dt.date:
    """The same date `years` later (earlier when negative); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@lru_cache(maxsize=64)
def public_holidays(country: str, subdivision: str, year: int) -> dict[dt.date, str]:
    """The public holidays of `country` (and its `subdivision`, "" for none) in `year`, date -> name.

    From the maintained `holidays` package, observed-day rules as it defines them (US: a Saturday holiday
    is observed the Friday before, a Sunday one the Monday after; both dates are listed). Several names on
    one day are joined with "; ".
    """
    found = holidays.country_holidays(country, subdiv=subdivision or None, years=year, observed=True)
    return {day: name for day, name in sorted(found.items()) if day.year == year}


def check_region(country: str, subdivision: str) -> None:
    """Raise ValueError naming what is wrong when `holidays` does not know the country or subdivision."""
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(
            f"unknown country {country!r} (an ISO 3166-1 alpha-2 code the holidays package knows)"
        )
    if subdivision and subdivision not in supported[country]:
        raise ValueError(
            f"unknown subdivision {subdivision!r} of {country}; known: {', '.join(sorted(supported[country]))}"
        )


@dataclass(frozen=True)
class Calendar:
    """The utility's working calendar from its policy, plus supervisor-marked no-shut-off days."""

    policy: CalendarPolicy
    marked_days: dict[dt.date, str]  # extreme heat etc.: date -> why

    @classmethod
    def of(cls, policy: CalendarPolicy, marked: Iterable[tuple[dt.date, str]] = ()) -> Calendar:
        return cls(policy, dict(marked))

    def holiday(self, day: dt.date) -> str | None:
        """The holiday's name if `day` is one."""
        if day in self.policy.holidays:
            return "utility holiday"
        if self.policy.public_holidays:
            return public_holidays(self.policy.country, self.policy.subdivision, day.year).get(day)
        return None

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() not in self.policy.weekend_days and self.holiday(day) is None

    def next_business_day(self, day: dt.date) -> dt.date:
        """The first business day after `day`."""
        nxt = day + dt.timedelta(days=1)
        while not self.is_business_day(nxt):
            nxt += dt.timedelta(days=1)
        return nxt

    def business_days_between(self, start: dt.date, end: dt.date) -> int:
        """Whole business days after `start` up to and including `end` (0 when end <= start)."""
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            count += self.is_business_day(day)
        return count

    def shutoff_forbidden(self, day: dt.date, policy: ShutoffPolicy) -> str | None:
        """Why no shut-off may happen on `day`, or None when it may."""
        if day in self.marked_days:
            return f"{day.isoformat()} is marked a no-shut-off day: {self.marked_days[day]}"
        name = self.holiday(day)
        if name:
            return f"{day.isoformat()} is a holiday ({name})"
        if day.weekday() in policy.forbidden_weekdays:
            return f"no shut-offs on a {day.strftime('%A')} (policy shutoff.forbidden_weekdays)"
        if policy.no_shutoff_day_before_holiday:
            closed = self.holiday_before_next_business_day(day)
            if closed:
                after, name = closed
                return (
                    f"{day.isoformat()} is the business day before a holiday ({name}) on {after.isoformat()}"
                )
        return None

    def holiday_before_next_business_day(self, day: dt.date) -> tuple[dt.date, str] | None:
        """The first holiday after `day` and before the next business day (date, name), if any.

        This makes `day` "the business day before a holiday" (shutoff.no_shutoff_day_before_holiday): Friday
        2026-09-04 is, as Labor Day Monday follows the weekend, and so is a Saturday or Sunday before it.
        """
        after = day + dt.timedelta(days=1)
        while not self.is_business_day(after):
            name = self.holiday(after)
            if name:
                return after, name
            after += dt.timedelta(days=1)
        return None
