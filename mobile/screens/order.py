"""Order detail: hazards, account and meter facts, reason; en route / on site; open the completion flow."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen

from mobile.core.detail import OrderDetailModel
from mobile.screens.common import load_kv, on_ui_thread
from mobile.services import Services

load_kv(__file__)


class FactLabel(Label):
    """A label that wraps to its width (rows of the facts grids)."""


class OrderScreen(Screen):
    """Observes an OrderDetailModel (one per opened order)."""

    title = StringProperty("")
    subtitle = StringProperty("")
    message = StringProperty("")
    hazards = StringProperty("")
    can_act = BooleanProperty(True)

    def __init__(self, services: Services, navigator: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.navigator = navigator
        self.model: OrderDetailModel | None = None
        self._unsubscribe: Any = None

    def enter(self, order_id: str | None = None) -> None:
        """Open `order_id` (or re-show the current one)."""
        route = self.services.route
        route.refresh()
        if order_id is not None or self.model is None:
            state = route.states[order_id or ""]
            if self._unsubscribe is not None:
                self._unsubscribe()
            self.model = OrderDetailModel(state, self.services.work(), zone=self.services.zone())
            self._unsubscribe = self.model.subscribe(on_ui_thread(self.redraw))
        else:
            self.model.state = route.states[self.model.order_id]
            self.model.message = ""
        self.redraw()

    def redraw(self) -> None:
        """Fill the labels and grids from the model."""
        model = self.model
        assert model is not None
        self.title = model.title
        self.subtitle = f"Order {model.order_id} · {model.state.order.reason or ''}"
        self.message = model.message
        self.hazards = "  ·  ".join(model.hazards())
        self.can_act = model.can_change_status()
        facts = self.ids.facts
        facts.clear_widgets()
        for label, value in model.facts() + model.status_times():
            facts.add_widget(FactLabel(text=label, bold=True, size_hint_x=0.3))
            facts.add_widget(FactLabel(text=value, size_hint_x=0.7))
        meters = self.ids.meters
        meters.clear_widgets()
        for meter in model.meters():
            rows = [
                ("Meter", meter.meter_id),
                ("Serial", meter.serial),
                ("Size", meter.size),
                ("Dials", meter.dials),
                ("Location", meter.location),
                ("Last reads", "\n".join(meter.last_reads) or "-"),
                ("Expected", meter.expected),
            ]
            for label, value in rows:
                meters.add_widget(FactLabel(text=label, bold=True, size_hint_x=0.35))
                meters.add_widget(FactLabel(text=value, size_hint_x=0.65))

    def mark(self, kind: str) -> None:
        """En route / on site."""
        assert self.model is not None
        self.model.mark(kind)

    def complete(self) -> None:
        """Open this order type's completion flow."""
        assert self.model is not None
        self.navigator.show(self.model.flow.value, detail=self.model)

    def unable(self) -> None:
        """Open the unable-to-complete flow."""
        assert self.model is not None
        self.navigator.show("unable", detail=self.model)


def build(services: Services, navigator: Any) -> OrderScreen:
    """The order detail screen."""
    return OrderScreen(services, navigator)
