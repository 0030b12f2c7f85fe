"""The orders on the tablet as the rep sees them: server status plus what this tablet recorded."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import ValidationError

from contracts.codes import OrderStatus, OrderType, Priority
from contracts.couch import EVENT_PREFIX, ORDER_PREFIX, RESULT_PREFIX, EventDoc, OrderDoc, ResultDoc
from contracts.forms import FORM_FOR_TYPE
from mobile.core.docstore import DocStore

ORDER_TYPE_LABEL: dict[OrderType, str] = {
    OrderType.TURN_ON: "Turn on",
    OrderType.TURN_OFF: "Turn off",
    OrderType.SHUT_OFF_NONPAY: "Shut-off (non-pay)",
    OrderType.RESTORE: "Restore",
    OrderType.NOTICE_DELIVERY: "48-h notice",
    OrderType.REREAD: "Reread",
    OrderType.ZERO_USE_CHECK: "Zero-use check",
    OrderType.LEAK_INVESTIGATION: "Leak / high bill",
    OrderType.METER_TEST: "Meter test",
    OrderType.METER_EXCHANGE: "Meter exchange",
    OrderType.THEFT_INVESTIGATION: "Theft check",
    OrderType.EMERGENCY: "Emergency",
}

PRIORITY_LABEL: dict[Priority, str] = {
    Priority.EMERGENCY: "EMERGENCY",
    Priority.RESTORE: "Restore",
    Priority.SHUT_OFF: "Shut-off",
    Priority.INVESTIGATION: "Investigation",
    Priority.REREAD: "Reread",
    Priority.METER_TEST: "Meter test",
}

# Badge colours (RGBA 0..1) the screens use; one place so the list and the map agree.
PRIORITY_COLOUR: dict[Priority, tuple[float, float, float, float]] = {
    Priority.EMERGENCY: (0.85, 0.15, 0.15, 1),
    Priority.RESTORE: (0.9, 0.45, 0.1, 1),
    Priority.SHUT_OFF: (0.75, 0.35, 0.55, 1),
    Priority.INVESTIGATION: (0.2, 0.45, 0.8, 1),
    Priority.REREAD: (0.25, 0.6, 0.45, 1),
    Priority.METER_TEST: (0.45, 0.45, 0.55, 1),
}


class Flow(StrEnum):
    """Which completion form an order type uses."""

    REREAD = "reread"
    SERVICE = "service"  # turn-on, turn-off, shut-off, restore, notice delivery
    METER_TEST = "meter_test"
    INVESTIGATION = "investigation"  # leak / high bill, theft, emergency, exchange: findings and photos


# The contract says which form each order type's result carries (the server checks the same table).
FLOW_FOR_TYPE: dict[OrderType, Flow] = {t: Flow(kind.value) for t, kind in FORM_FOR_TYPE.items()}


class Marker(StrEnum):
    """The sign on a stop in the route list and on the map."""

    TODO = "todo"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    DONE = "done"
    FAILED = "failed"  # unable to complete: back to dispatch
    CANCELLED = "cancelled"


MARKER_LABEL: dict[Marker, str] = {
    Marker.TODO: "",
    Marker.EN_ROUTE: "En route",
    Marker.ON_SITE: "On site",
    Marker.DONE: "Done",
    Marker.FAILED: "Unable",
    Marker.CANCELLED: "Cancelled",
}


@dataclass
class OrderState:
    """One order with this tablet's results and events for it."""

    order: OrderDoc
    results: list[ResultDoc] = field(default_factory=list)
    events: list[EventDoc] = field(default_factory=list)
    local_ids: list[str] = field(default_factory=list)  # result/event doc ids written here

    @property
    def marker(self) -> Marker:
        """Done/failed from a local result first (the server may not have it yet), then events."""
        if self.order.status is OrderStatus.CANCELLED:
            return Marker.CANCELLED
        if self.results:
            latest = max(self.results, key=lambda r: r.completed_at)
            return Marker.DONE if latest.outcome == "completed" else Marker.FAILED
        if self.order.status is OrderStatus.COMPLETED:
            return Marker.DONE
        if self.order.status is OrderStatus.UNABLE_TO_COMPLETE:
            return Marker.FAILED
        kinds = [e.kind for e in sorted(self.events, key=lambda e: e.at)]
        if (kinds and kinds[-1] == "on_site") or self.order.status is OrderStatus.ON_SITE:
            return Marker.ON_SITE
        if (kinds and kinds[-1] == "en_route") or self.order.status is OrderStatus.EN_ROUTE:
            return Marker.EN_ROUTE
        return Marker.TODO

    @property
    def closed(self) -> bool:
        """Nothing more to do on this order from the tablet."""
        return self.marker in (Marker.DONE, Marker.FAILED, Marker.CANCELLED)

    def event_at(self, kind: str) -> dt.datetime | None:
        """When this tablet last recorded `kind` for the order."""
        times = [e.at for e in self.events if e.kind == kind]
        return max(times) if times else None


@dataclass
class LoadedOrders:
    """Every order in the store with its local documents, plus documents that failed to parse."""

    orders: dict[str, OrderState]
    problems: list[str]


def load_orders(store: DocStore) -> LoadedOrders:
    """Read orders, results and events from the store (three prefix scans)."""
    problems: list[str] = []
    orders: dict[str, OrderState] = {}
    for row in store.all_docs(include_docs=True, prefix=ORDER_PREFIX):
        try:
            order = OrderDoc.from_couch(row["doc"])
        except ValidationError as exc:
            problems.append(f"{row['id']}: {exc.errors()[0]['msg']}")
            continue
        orders[order.order_id] = OrderState(order)
    results: dict[str, list[tuple[str, ResultDoc]]] = defaultdict(list)
    for row in store.all_docs(include_docs=True, prefix=RESULT_PREFIX):
        try:
            result = ResultDoc.from_couch(row["doc"])
        except ValidationError as exc:
            problems.append(f"{row['id']}: {exc.errors()[0]['msg']}")
            continue
        results[result.order_id].append((row["id"], result))
    events: dict[str, list[tuple[str, EventDoc]]] = defaultdict(list)
    for row in store.all_docs(include_docs=True, prefix=EVENT_PREFIX):
        try:
            event = EventDoc.from_couch(row["doc"])
        except ValidationError as exc:
            problems.append(f"{row['id']}: {exc.errors()[0]['msg']}")
            continue
        events[event.order_id].append((row["id"], event))
    for order_id, state in orders.items():
        for doc_id, result in results.get(order_id, []):
            state.results.append(result)
            state.local_ids.append(doc_id)
        for doc_id, event in events.get(order_id, []):
            state.events.append(event)
            state.local_ids.append(doc_id)
    return LoadedOrders(orders, problems)


def unsynced_ids(store: DocStore, pushed_seq: int) -> set[str]:
    """Tablet-written document ids changed after the last sequence known to be pushed."""
    rows, _last = store.changes(pushed_seq)
    return {str(r["id"]) for r in rows if str(r["id"]).startswith((RESULT_PREFIX, EVENT_PREFIX))}
