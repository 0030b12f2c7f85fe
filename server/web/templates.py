"""The office pages' Jinja2 environment: every time a person sees is formatted here, in the utility's zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from contracts.codes import Role
from server.adjustments.calculators import money
from server.auth.service import Principal
from server.timezone import format_day, format_local, utility_zone, zone_abbreviation

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")


def _moment(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def local_time(value: dt.datetime | str | None, with_zone: bool = False) -> str:
    """'07:00' (or '07:00 PST'): a stored UTC time, or an ISO string with an offset, in the utility's zone."""
    moment = _moment(value)
    return "" if moment is None else format_local(moment, utility_zone(), with_zone=with_zone)


def local_datetime(value: dt.datetime | str | None) -> str:
    """'Tue 1 Dec 07:00 PST' in the utility's zone."""
    moment = _moment(value)
    return "" if moment is None else format_local(moment, utility_zone(), fmt="%a %-d %b %H:%M")


def minutes(seconds: int | float | None) -> str:
    """'1 h 05 min' / '12 min' from seconds."""
    if not seconds:
        return "0 min"
    total = round(seconds / 60)
    return f"{total // 60} h {total % 60:02d} min" if total >= 60 else f"{total} min"


def dollars(cents: int | None) -> str:
    """-1234 -> '-$12.34' (integer cents to dollars, as the adjustments' working writes them)."""
    return "" if cents is None else money(cents)


def label(code: str | None) -> str:
    """'shut_off_nonpay' -> 'shut off nonpay': a code as words."""
    return (code or "").replace("_", " ")


def zone_name(day: dt.date | None = None) -> str:
    """'PST (America/Los_Angeles)' for the day shown."""
    zone = utility_zone()
    return f"{zone_abbreviation(zone, day or dt.date.today())} ({zone.key})"


templates.env.filters.update(
    local_time=local_time,
    local_datetime=local_datetime,
    minutes=minutes,
    label=label,
    dollars=dollars,
    day=format_day,
)
templates.env.globals.update(zone_name=zone_name, timedelta=dt.timedelta)


@dataclass(frozen=True)
class PageLink:
    """An office page in the navigation: its title, path and who may open it."""

    title: str
    path: str
    roles: frozenset[Role]
    home: frozenset[Role] = frozenset()  # roles that land here after signing in, before any earlier page


# Every office page registers here (web.pages.register), in the order of the navigation bar; `/` sends a
# signed-in person to the first one their role may open.
PAGES: list[PageLink] = []


def register(title: str, path: str, roles: tuple[Role, ...], *, home: tuple[Role, ...] = ()) -> PageLink:
    """Add a page to the navigation (idempotent by path); `home`: the roles whose start page it is."""
    link = PageLink(title=title, path=path, roles=frozenset(roles), home=frozenset(home))
    if all(p.path != path for p in PAGES):
        PAGES.append(link)
    return link


def home_for(principal: Principal) -> str | None:
    """The page that is `principal`'s role's home, else the first page the role may open, or None."""
    own = next((p.path for p in PAGES if principal.role in p.home and principal.role in p.roles), None)
    return own or next((p.path for p in PAGES if principal.role in p.roles), None)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a template with the caller, the navigation and the CSRF token in its context."""
    principal: Principal | None = getattr(request.state, "principal", None)
    nav = [p for p in PAGES if principal is not None and principal.role in p.roles]
    full = {
        "principal": principal,
        "nav": nav,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)
