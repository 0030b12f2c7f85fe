"""Business days, holidays and the days a utility must not shut water off (pure; no database)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from server.orders.policy import CalendarPolicy, ShutoffPolicy


def years_after(day: dt.date, years: int) -> dt.date:
    """The same date `years` later (earlier when negative); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based; -1 = last) `weekday` (Monday 0) of the month."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    """A fixed-date holiday on Saturday is observed Friday, on Sunday the Monday after."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def us_federal_holidays(year: int) -> dict[dt.date, str]:
    """The observed US federal holidays of `year` (5 U.S.C. 6103), date -> name."""
    days = {
        _observed(dt.date(year, 1, 1)): "New Year's Day",
        _nth_weekday(year, 1, 0, 3): "Birthday of Martin Luther King, Jr.",
        _nth_weekday(year, 2, 0, 3): "Washington's Birthday",
        _nth_weekday(year, 5, 0, -1): "Memorial Day",
        _observed(dt.date(year, 6, 19)): "Juneteenth National Independence Day",
        _observed(dt.date(year, 7, 4)): "Independence Day",
        _nth_weekday(year, 9, 0, 1): "Labor Day",
        _nth_weekday(year, 10, 0, 2): "Columbus Day",
        _observed(dt.date(year, 11, 11)): "Veterans Day",
        _nth_weekday(year, 11, 3, 4): "Thanksgiving Day",
        _observed(dt.date(year, 12, 25)): "Christmas Day",
    }
    # Next year's New Year's Day observed on Friday Dec 31 belongs to this calendar year.
    following = _observed(dt.date(year + 1, 1, 1))
    if following.year == year:
        days[following] = "New Year's Day (observed)"
    return days


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
        if self.policy.us_federal_holidays:
            return us_federal_holidays(day.year).get(day)
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
