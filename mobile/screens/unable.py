"""Unable to complete: a code and a note; the order goes back to dispatch."""

from __future__ import annotations

from typing import Any

from kivy.properties import ListProperty

from mobile.core.forms import UNABLE_CHOICES, UNABLE_LABEL, UnableForm
from mobile.screens.common import CompletionScreen, load_kv
from mobile.services import Services

load_kv(__file__)

LABEL_TO_CODE = {label: code.value for code, label in UNABLE_LABEL.items()}


class UnableScreen(CompletionScreen):
    """Observes an UnableForm."""

    code_labels = ListProperty([UNABLE_LABEL[c] for c in UNABLE_CHOICES])

    def new_form(self, order: Any) -> UnableForm:
        """An empty unable-to-complete form."""
        return UnableForm(order=order)

    def reset_inputs(self) -> None:
        """Clear the inputs."""
        self.ids.code.text = "Choose a reason"
        self.ids.notes.text = ""

    def choose(self, label: str) -> None:
        """A reason picked in the spinner."""
        self.update("code", LABEL_TO_CODE.get(label, ""))


def build(services: Services, navigator: Any) -> UnableScreen:
    """The unable-to-complete screen."""
    return UnableScreen(services, navigator)
