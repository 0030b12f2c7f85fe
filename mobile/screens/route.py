"""Today's route: stops in planned order with badges, markers and the sync state; opens an order."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from mobile.core.orders import PRIORITY_COLOUR, Marker
from mobile.core.route import Stop
from mobile.screens.common import load_kv, on_ui_thread
from mobile.services import Services

load_kv(__file__)

MARKER_COLOUR = {
    Marker.TODO: (0.6, 0.62, 0.66, 1),
    Marker.EN_ROUTE: (0.12, 0.42, 0.75, 1),
    Marker.ON_SITE: (0.55, 0.3, 0.75, 1),
    Marker.DONE: (0.16, 0.6, 0.3, 1),
    Marker.FAILED: (0.85, 0.4, 0.1, 1),
    Marker.CANCELLED: (0.45, 0.45, 0.45, 1),
}


class StopRow(ButtonBehavior, BoxLayout):
    """One stop in the list (a RecycleView view class)."""

    order_id = StringProperty("")
    number = NumericProperty(0)
    type_label = StringProperty("")
    priority_label = StringProperty("")
    priority_colour = ColorProperty((0.5, 0.5, 0.5, 1))
    address = StringProperty("")
    customer = StringProperty("")
    window = StringProperty("")
    distance = StringProperty("")
    marker_label = StringProperty("")
    marker_colour = ColorProperty((0.6, 0.6, 0.6, 1))
    unsynced = BooleanProperty(False)
    closed = BooleanProperty(False)
    hazards = StringProperty("")
    open_order: Any = None

    def on_release(self) -> None:
        """Open the order (the screen hands each row its opener)."""
        if self.open_order is not None:
            self.open_order(self.order_id)


def row_data(stop: Stop, opener: Any) -> dict[str, Any]:
    """A Stop as RecycleView data."""
    return {
        "order_id": stop.order_id,
        "number": stop.sequence_no,
        "type_label": stop.type_label,
        "priority_label": stop.priority_label,
        "priority_colour": PRIORITY_COLOUR[stop.priority],
        "address": stop.address,
        "customer": stop.customer_name,
        "window": stop.window_label or stop.planned_label,
        "distance": stop.distance_label,
        "marker_label": stop.marker_label or "To do",
        "marker_colour": MARKER_COLOUR[stop.marker],
        "unsynced": stop.unsynced,
        "closed": stop.marker in (Marker.DONE, Marker.FAILED, Marker.CANCELLED),
        "hazards": ", ".join(stop.hazards),
        "open_order": opener,
    }


class RouteScreen(Screen):
    """Observes RouteModel and SyncState."""

    summary = StringProperty("")
    sync_label = StringProperty("")
    who = StringProperty("")
    heading = StringProperty("Today's route")  # names the utility's date

    def __init__(self, services: Services, navigator: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.navigator = navigator
        self.model = services.route
        self.model.subscribe(on_ui_thread(self.redraw))
        services.sync_state.subscribe(on_ui_thread(self.redraw_sync))
        Clock.schedule_interval(lambda _dt: self.tick(), 5.0)

    def enter(self) -> None:
        """Reload from the store (cheap when nothing changed) and draw."""
        session = self.services.settings.session
        who = f"{session.technician_code} · {self.services.settings.username}" if session else ""
        self.who = f"{who} · {self.model.zone_label}" if who else self.model.zone_label
        if not self.model.refresh():
            self.redraw()
        self.redraw_sync()

    def tick(self) -> None:
        """Pick up synced orders and age the 'last sync' label."""
        if self.manager is not None and self.manager.current == self.name:
            self.model.refresh()
            self.redraw_sync()

    def redraw(self) -> None:
        """Rebuild the list data from the model."""
        self.summary = self.model.summary
        self.heading = self.model.heading
        self.ids.stops.data = [row_data(stop, self.open_order) for stop in self.model.stops]

    def redraw_sync(self) -> None:
        """The sync line."""
        self.sync_label = self.services.sync_state.label(self.services.clock(), self.services.zone())

    def open_order(self, order_id: str) -> None:
        """Show the order detail."""
        self.navigator.show("order", order_id=order_id)

    def sync_now(self) -> None:
        """Manual 'sync now' (starts the thread if it is not running)."""
        if self.services.runner is None:
            self.services.start_sync()
        else:
            self.services.runner.sync_now()

    def sign_out(self) -> None:
        """Stop sync, forget the session, back to sign-in."""
        self.services.stop_sync()
        self.services.sign_in.sign_out()
        self.navigator.show("signin")


def build(services: Services, navigator: Any) -> RouteScreen:
    """The route screen."""
    return RouteScreen(services, navigator)
