"""Order detail: the facts the rep needs at the door, safe for a tablet that may be lost."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from contracts.couch import MeterFacts
from mobile.core.field import FieldWork
from mobile.core.localtime import hm, hm_zone, local_date
from mobile.core.observable import Observable
from mobile.core.orders import (
    FLOW_FOR_TYPE,
    MARKER_LABEL,
    ORDER_TYPE_LABEL,
    PRIORITY_LABEL,
    Flow,
    Marker,
    OrderState,
)
from mobile.core.reading import expected_range, format_reading

HAZARD_WORDS = ("dog", "gate", "unsafe", "aggressive", "confined", "traffic", "bees", "snake")


@dataclass(frozen=True)
class MeterView:
    """One meter's facts as shown."""

    meter_id: str
    serial: str
    size: str
    location: str
    dials: str
    last_reads: list[str]
    expected: str


def _meter_view(meter: MeterFacts, zone: ZoneInfo) -> MeterView:
    # Last reads in the same units the rep types (the register as displayed, decimals included), dated
    # by the utility's calendar (a read at 19:00 Pacific is that day's, though UTC is the next).
    reads = [
        f"{format_reading(item.value, meter)} {local_date(item.read_at, zone).isoformat()}"
        for item in meter.last_reads
    ]
    if not reads and meter.last_read is not None:
        when = local_date(meter.last_read_at, zone).isoformat() if meter.last_read_at else ""
        reads.append(f"{format_reading(meter.last_read, meter)} {when}".strip())
    return MeterView(
        meter_id=meter.meter_id,
        serial=meter.serial_number or "-",
        size=f'{meter.size_in}"'
        if meter.size_in and not meter.size_in.endswith('"')
        else (meter.size_in or "-"),
        location=meter.location or "-",
        dials=str(meter.dials) if meter.dials else "-",
        last_reads=reads[:3],
        expected=expected_range(meter).label(),
    )


class OrderDetailModel(Observable):
    """One order opened from the route: facts, status buttons, which completion flow to open."""

    def __init__(self, state: OrderState, work: FieldWork, *, zone: ZoneInfo) -> None:
        super().__init__()
        self.state = state
        self.work = work
        self.zone = zone  # the utility's: every time shown is in it, its abbreviation named
        self.message = ""

    @property
    def order_id(self) -> str:
        """The order's id."""
        return self.state.order.order_id

    @property
    def title(self) -> str:
        """'Reread · 123 Main St'."""
        order = self.state.order
        address = order.service_point.address if order.service_point else "(no address)"
        return f"{ORDER_TYPE_LABEL.get(order.order_type, order.order_type.value)} · {address}"

    @property
    def flow(self) -> Flow:
        """The completion flow of this order's type."""
        return FLOW_FOR_TYPE[self.state.order.order_type]

    @property
    def marker(self) -> Marker:
        """Where the order is, as this tablet knows it."""
        return self.state.marker

    def facts(self) -> list[tuple[str, str]]:
        """(label, value) rows: account and customer facts safe for the field, where, access, why."""
        order = self.state.order
        sp = order.service_point
        rows = [
            ("Order", order.order_id),
            ("Priority", PRIORITY_LABEL.get(order.priority, order.priority.value)),
            ("Status", MARKER_LABEL[self.marker] or order.status.value.replace("_", " ")),
            ("Customer", order.customer_name or "-"),
            ("Account", order.account_id or "-"),
            ("Address", sp.address if sp else "-"),
        ]
        if sp and sp.curb_stop_location:
            rows.append(("Curb stop", sp.curb_stop_location))
        if order.window:
            start = hm(order.window.start_at, self.zone)
            rows.append(("Window", f"{start}-{hm_zone(order.window.end_at, self.zone)}"))
        rows.append(("Reason", order.reason or "-"))
        rows.append(("Access", order.access_notes or "-"))
        return rows

    def hazards(self) -> list[str]:
        """Hazards first and loud: the listed ones plus hazard words found in the access notes."""
        found = [h for h in self.state.order.hazards]
        notes = (self.state.order.access_notes or "").lower()
        for word in HAZARD_WORDS:
            if word in notes and not any(word in h.lower() for h in found):
                found.append(f"{word} (see access notes)")
        return found

    def meters(self) -> list[MeterView]:
        """Every meter on the order."""
        return [_meter_view(m, self.zone) for m in self.state.order.meters]

    def status_times(self) -> list[tuple[str, str]]:
        """When this tablet recorded en route / on site."""
        out = []
        for kind, label in (("en_route", "En route"), ("on_site", "On site")):
            at = self.state.event_at(kind)
            if at is not None:
                gps = next((e.gps for e in self.state.events if e.kind == kind and e.at == at), None)
                where = f" at {gps.lat:.5f}, {gps.lon:.5f}" if gps else " (no GPS fix)"
                out.append((label, hm_zone(at, self.zone) + where))
        return out

    def can_change_status(self) -> bool:
        """En route / on site may still be recorded."""
        return not self.state.closed

    def mark(self, kind: str) -> None:
        """Record en route or on site; a closed order refuses with a message."""
        if self.state.closed:
            self.message = f"This order is {MARKER_LABEL[self.marker].lower()}: no more status changes"
            self.changed()
            return
        if kind not in ("en_route", "on_site"):
            raise ValueError(f"unknown status event {kind!r}")
        event = self.work.record_event(self.state.order, "en_route" if kind == "en_route" else "on_site")
        self.state.events.append(event)
        self.message = f"{'En route' if kind == 'en_route' else 'On site'} at {hm_zone(event.at, self.zone)}"
        self.changed()

    def now(self) -> dt.datetime:
        """The model's clock."""
        return self.work.clock()
