"""Turn-on, turn-off, non-pay shut-off, restore: reading, curb-stop position, seal, someone home, door hanger."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from contracts.codes import OrderType
from mobile.core.forms import EXPECTED_POSITION, ServiceForm
from mobile.core.orders import ORDER_TYPE_LABEL
from mobile.core.reading import expected_range
from mobile.screens.common import CompletionScreen, load_kv
from mobile.services import Services

load_kv(__file__)


class ServiceScreen(CompletionScreen):
    """Observes a ServiceForm."""

    type_label = StringProperty("Service")
    needs_confirm = BooleanProperty(False)
    reading_hint = StringProperty("")
    position_hint = StringProperty("")
    seal_title = StringProperty("Lock / seal number")

    def new_form(self, order: Any) -> ServiceForm:
        """An empty service form."""
        return ServiceForm(order=order)

    def reset_inputs(self) -> None:
        """Clear the inputs and set the per-type hints."""
        for name in ("reading", "reading_confirm", "seal_number", "notes"):
            self.ids[name].text = ""
        self.ids.position_open.state = "normal"
        self.ids.position_closed.state = "normal"
        self.ids.someone_home.active = False
        self.ids.door_hanger.active = False
        order_type = self.form.order.order_type
        self.type_label = ORDER_TYPE_LABEL.get(order_type, "Service")
        expected = EXPECTED_POSITION.get(order_type)
        self.position_hint = f"Should be left {expected}" if expected else "Not operated on this order"
        self.seal_title = (
            "Lock / seal number (required)"
            if order_type is OrderType.SHUT_OFF_NONPAY
            else "Lock / seal number"
        )
        meter = self.form.order.meters[0] if self.form.order.meters else None
        if meter is not None:
            dials = f"{meter.dials} dials" if meter.dials else "dials unknown"
            self.reading_hint = f"{dials} · expected {expected_range(meter).label()}"

    def refresh(self) -> None:
        """Show the confirmation field once the reading is out of range."""
        meter = self.form.order.meters[0] if self.form and self.form.order.meters else None
        self.needs_confirm = bool(
            meter and self.form.reading.strip() and self.form.check(meter).needs_confirmation
        )


def build(services: Services, navigator: Any) -> ServiceScreen:
    """The service-change screen."""
    return ServiceScreen(services, navigator)
