"""Today's route: the stops in planned order with everything the list and the map show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from contracts.codes import OrderType, Priority
from contracts.couch import GeoPoint
from mobile.core.docstore import DocStore
from mobile.core.geo import format_distance, haversine_m
from mobile.core.localtime import abbreviation, day_label, hm, local_date
from mobile.core.observable import Observable
from mobile.core.orders import (
    MARKER_LABEL,
    ORDER_TYPE_LABEL,
    PRIORITY_LABEL,
    Marker,
    OrderState,
    load_orders,
    unsynced_ids,
)
from mobile.core.sync_state import SyncState

Clock = Callable[[], dt.datetime]
ZoneSource = Callable[[], ZoneInfo]  # the utility's zone, read when needed (it arrives with sign-in)


def utc_now() -> dt.datetime:
    """The real clock (timezone-aware UTC)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Stop:
    """One row of the route list (and one dot on the map)."""

    order_id: str
    sequence_no: int  # 1-based position shown to the rep
    order_type: OrderType
    type_label: str
    priority: Priority
    priority_label: str
    address: str
    customer_name: str
    window_label: str  # '08:00-10:00' in the utility's zone (the route header names it), '' without one
    planned_label: str
    distance_m: float | None  # from the previous stop (the first: from the rep's position when known)
    distance_label: str
    marker: Marker
    marker_label: str
    unsynced: bool  # this tablet wrote something for the order that the server has not got yet
    position: GeoPoint | None
    hazards: tuple[str, ...]


def _sort_key(state: OrderState) -> tuple[int, str, str]:
    order = state.order
    seq = order.sequence if order.sequence is not None else 1_000_000
    planned = order.planned_arrival_at.isoformat() if order.planned_arrival_at else "~"
    return (seq, planned, order.order_id)


def work_day(order_state: OrderState, zone: ZoneInfo) -> dt.date | None:
    """The utility's date the order is planned for (arrival, else window start); None when unplanned."""
    order = order_state.order
    when = order.planned_arrival_at or (order.window.start_at if order.window else None)
    return local_date(when, zone) if when is not None else None


def shown_on(order_state: OrderState, today: dt.date, zone: ZoneInfo) -> bool:
    """Whether today's route lists the order: open work of today or earlier (overdue stays visible) or
    unplanned, today's closed and cancelled stops, and anything this tablet worked; never a later day's."""
    day = work_day(order_state, zone)
    if order_state.results:
        return True
    if day is not None and day > today:
        return False
    if not order_state.closed:
        return True
    return day == today


class RouteModel(Observable):
    """Loads the route from the local store; `refresh()` after any change (sync, a result written)."""

    def __init__(
        self,
        store: DocStore,
        sync_state: SyncState,
        *,
        zone: ZoneSource,
        clock: Clock = utc_now,
        position: Callable[[], GeoPoint | None] = lambda: None,
    ) -> None:
        super().__init__()
        self.store = store
        self.sync_state = sync_state
        self.zone = zone
        self.clock = clock
        self.position = position
        self.day: dt.date = local_date(clock(), zone())  # the utility's today at the last load
        self.later = 0  # open orders planned for a later day (not on today's route)
        self.stops: list[Stop] = []
        self.states: dict[str, OrderState] = {}
        self.problems: list[str] = []
        self.loaded_seq = -1

    def refresh(self, *, force: bool = False) -> bool:
        """Reload when the store changed since the last load; True when the stops were rebuilt."""
        seq = self.store.update_seq
        zone = self.zone()
        today = local_date(self.clock(), zone)
        if seq == self.loaded_seq and today == self.day and not force:
            return False
        loaded = load_orders(self.store)
        self.states = loaded.orders
        self.problems = loaded.problems
        pending = unsynced_ids(self.store, self.sync_state.pushed_seq)
        shown = [s for s in loaded.orders.values() if shown_on(s, today, zone)]
        self.later = sum(1 for s in loaded.orders.values() if not s.closed and not shown_on(s, today, zone))
        self.day = today
        shown.sort(key=_sort_key)
        here = self.position()
        previous: tuple[float, float] | None = (here.lat, here.lon) if here else None
        stops: list[Stop] = []
        for number, state in enumerate(shown, start=1):
            order = state.order
            sp = order.service_point
            point = sp.position if sp else None
            distance: float | None = None
            if point is not None:
                if previous is not None:
                    distance = haversine_m(previous[0], previous[1], point.lat, point.lon)
                previous = (point.lat, point.lon)
            window = (
                f"{hm(order.window.start_at, zone)}-{hm(order.window.end_at, zone)}" if order.window else ""
            )
            marker = state.marker
            stops.append(
                Stop(
                    order_id=order.order_id,
                    sequence_no=number,
                    order_type=order.order_type,
                    type_label=ORDER_TYPE_LABEL.get(order.order_type, order.order_type.value),
                    priority=order.priority,
                    priority_label=PRIORITY_LABEL.get(order.priority, order.priority.value),
                    address=sp.address if sp else "(no address)",
                    customer_name=order.customer_name or "",
                    window_label=window,
                    planned_label=hm(order.planned_arrival_at, zone) if order.planned_arrival_at else "",
                    distance_m=distance,
                    distance_label=format_distance(distance),
                    marker=marker,
                    marker_label=MARKER_LABEL[marker],
                    unsynced=any(doc_id in pending for doc_id in state.local_ids),
                    position=point,
                    hazards=tuple(order.hazards),
                )
            )
        self.stops = stops
        self.loaded_seq = seq
        self.changed()
        return True

    @property
    def heading(self) -> str:
        """The route header: "Today's route · Tuesday 1 December 2026" (the utility's today)."""
        return f"Today's route · {day_label(self.day)}"

    @property
    def zone_label(self) -> str:
        """'Times in PST (America/Los_Angeles)': which zone every time on the tablet is in."""
        zone = self.zone()
        return f"Times in {abbreviation(zone, self.day)} ({zone.key})"

    @property
    def summary(self) -> str:
        """'12 stops · 4 done · 1 unable · 2 not synced · 18.3 km'."""
        done = sum(1 for s in self.stops if s.marker is Marker.DONE)
        failed = sum(1 for s in self.stops if s.marker is Marker.FAILED)
        unsynced = sum(1 for s in self.stops if s.unsynced)
        total_m = sum(s.distance_m or 0.0 for s in self.stops)
        parts = [f"{len(self.stops)} stops", f"{done} done"]
        if failed:
            parts.append(f"{failed} unable")
        if unsynced:
            parts.append(f"{unsynced} not synced")
        if total_m:
            parts.append(format_distance(total_m))
        if self.later:
            parts.append(f"{self.later} on later days")
        return " · ".join(parts)

    def next_stop(self) -> Stop | None:
        """The first stop still to work."""
        return next(
            (s for s in self.stops if s.marker not in (Marker.DONE, Marker.FAILED, Marker.CANCELLED)), None
        )
