"""Today's route: the stops in planned order with everything the list and the map show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from contracts.codes import OrderType, Priority
from contracts.couch import GeoPoint
from mobile.core.docstore import DocStore
from mobile.core.geo import format_distance, haversine_m
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
    window_label: str  # '08:00-10:00' in the tablet's local time, '' without a window
    planned_label: str
    distance_m: float | None  # from the previous stop (the first: from the rep's position when known)
    distance_label: str
    marker: Marker
    marker_label: str
    unsynced: bool  # this tablet wrote something for the order that the server has not got yet
    position: GeoPoint | None
    hazards: tuple[str, ...]


def _local_hm(value: dt.datetime) -> str:
    return value.astimezone().strftime("%H:%M")


def _sort_key(state: OrderState) -> tuple[int, str, str]:
    order = state.order
    seq = order.sequence if order.sequence is not None else 1_000_000
    planned = order.planned_arrival_at.isoformat() if order.planned_arrival_at else "~"
    return (seq, planned, order.order_id)


def _on_day(order_state: OrderState, day: dt.date) -> bool:
    order = order_state.order
    when = order.planned_arrival_at or (order.window.start_at if order.window else None)
    return when is not None and when.astimezone().date() == day


class RouteModel(Observable):
    """Loads the route from the local store; `refresh()` after any change (sync, a result written)."""

    def __init__(
        self,
        store: DocStore,
        sync_state: SyncState,
        *,
        clock: Clock = utc_now,
        position: Callable[[], GeoPoint | None] = lambda: None,
    ) -> None:
        super().__init__()
        self.store = store
        self.sync_state = sync_state
        self.clock = clock
        self.position = position
        self.stops: list[Stop] = []
        self.states: dict[str, OrderState] = {}
        self.problems: list[str] = []
        self.loaded_seq = -1

    def refresh(self, *, force: bool = False) -> bool:
        """Reload when the store changed since the last load; True when the stops were rebuilt."""
        seq = self.store.update_seq
        if seq == self.loaded_seq and not force:
            return False
        loaded = load_orders(self.store)
        self.states = loaded.orders
        self.problems = loaded.problems
        pending = unsynced_ids(self.store, self.sync_state.pushed_seq)
        today = self.clock().astimezone().date()
        shown = [
            s
            for s in loaded.orders.values()
            # open work of any day (overdue stays visible), plus today's closed and cancelled stops
            if (not s.closed and s.marker is not Marker.CANCELLED) or _on_day(s, today) or s.results
        ]
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
                f"{_local_hm(order.window.start_at)}-{_local_hm(order.window.end_at)}" if order.window else ""
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
                    planned_label=_local_hm(order.planned_arrival_at) if order.planned_arrival_at else "",
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
        return " · ".join(parts)

    def next_stop(self) -> Stop | None:
        """The first stop still to work."""
        return next(
            (s for s in self.stops if s.marker not in (Marker.DONE, Marker.FAILED, Marker.CANCELLED)), None
        )
