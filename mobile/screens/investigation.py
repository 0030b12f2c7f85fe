"""Leak / high-bill investigation: findings, leak location, customer informed, photos, notes."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty

from mobile.core.forms import InvestigationForm
from mobile.screens.common import CompletionScreen, load_kv
from mobile.services import Services

load_kv(__file__)


class InvestigationScreen(CompletionScreen):
    """Observes an InvestigationForm."""

    leak_found = BooleanProperty(False)

    def new_form(self, order: Any) -> InvestigationForm:
        """An empty investigation form."""
        return InvestigationForm(order=order)

    def reset_inputs(self) -> None:
        """Clear the inputs."""
        for name in ("findings", "leak_location", "reading", "notes"):
            self.ids[name].text = ""
        self.ids.leak_found.active = False
        self.ids.customer_informed.active = False
        self.ids.leak_repaired.active = False

    def refresh(self) -> None:
        """Show the leak location only when a leak was found."""
        self.leak_found = bool(self.form and self.form.leak_found)


def build(services: Services, navigator: Any) -> InvestigationScreen:
    """The investigation screen."""
    return InvestigationScreen(services, navigator)
