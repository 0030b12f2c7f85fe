"""Reread (and zero-use check): the reading that respects the dials, confirmation when out of range, a photo."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from mobile.core.forms import RereadForm
from mobile.core.reading import expected_range
from mobile.screens.common import CompletionScreen, load_kv
from mobile.services import Services

load_kv(__file__)


class RereadScreen(CompletionScreen):
    """Observes a RereadForm."""

    needs_confirm = BooleanProperty(False)
    reading_hint = StringProperty("")

    def new_form(self, order: Any) -> RereadForm:
        """An empty reread form."""
        return RereadForm(order=order)

    def reset_inputs(self) -> None:
        """Clear the inputs."""
        for name in ("reading", "reading_confirm", "notes"):
            self.ids[name].text = ""
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


def build(services: Services, navigator: Any) -> RereadScreen:
    """The reread screen."""
    return RereadScreen(services, navigator)
