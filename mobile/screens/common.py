"""Shared widgets and helpers for the screens (a top bar, badges, form rows, thread hops)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import ColorProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen

HERE = Path(__file__).parent


def load_kv(module_file: str) -> None:
    """Load the `.kv` next to a screen module once (screens call this at import: on first use)."""
    path = str(Path(module_file).with_suffix(".kv"))
    if path not in Builder.files:
        Builder.load_file(path)


def on_ui_thread(fn: Callable[[], None]) -> Callable[[], None]:
    """Wrap a model listener so it runs on Kivy's thread (models may change on the sync thread)."""

    def hop() -> None:
        Clock.schedule_once(lambda _dt: fn(), 0)

    return hop


class Badge(Label):
    """A coloured pill with short text (order type, priority, marker)."""

    bg = ColorProperty((0.4, 0.4, 0.45, 1))


class TopBar(BoxLayout):
    """The dark bar across the top of every screen."""

    title = StringProperty("")
    subtitle = StringProperty("")


class FormRow(BoxLayout):
    """A titled form field with an error line under it; the input goes inside in the screen's kv."""

    title = StringProperty("")
    hint = StringProperty("")
    error = StringProperty("")


def set_errors(rows: dict[str, Any], errors: dict[str, str]) -> None:
    """Put each error message on its row (a row's `error` is cleared when the field is fine)."""
    for name, row in rows.items():
        row.error = errors.get(name, "")


class CompletionScreen(Screen):
    """Base of the completion flows: a form from `mobile.core.forms`, rows with errors, photos, submit."""

    order_title = StringProperty("")
    banner = StringProperty("")
    photo_count = NumericProperty(0)
    flow_title = "Complete"

    def __init__(self, services: Any, navigator: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.navigator = navigator
        self.detail: Any = None
        self.form: Any = None

    def new_form(self, order: Any) -> Any:
        """The flow's empty form for `order`."""
        raise NotImplementedError

    def reset_inputs(self) -> None:
        """Clear the screen's inputs for a new form (subclasses clear their own widgets)."""

    def enter(self, detail: Any = None) -> None:
        """Start a fresh form for the order the detail model holds."""
        if detail is not None:
            self.detail = detail
        self.form = self.new_form(self.detail.state.order)
        self.order_title = self.detail.title
        self.banner = ""
        self.photo_count = 0
        self.reset_inputs()
        self.show_errors({})
        self.refresh()

    def update(self, name: str, value: Any) -> None:
        """An input changed: copy it into the form and refresh what depends on it."""
        if self.form is None:
            return
        setattr(self.form, name, value)
        self.refresh()

    def refresh(self) -> None:
        """Live parts of the screen (computed values, conditional rows)."""

    def rows(self) -> dict[str, Any]:
        """Error key -> FormRow, from ids named row_<key with dots as underscores>."""
        return {key[4:]: widget for key, widget in self.ids.items() if key.startswith("row_")}

    def show_errors(self, errors: dict[str, str]) -> None:
        """Put messages on their rows and a summary in the banner."""
        keyed = {k.replace(".", "_"): v for k, v in errors.items()}
        set_errors(self.rows(), keyed)
        self.banner = f"{len(errors)} thing(s) to fix before saving" if errors else ""

    def take_photo(self) -> None:
        """Camera (or the desktop fall-back); the photo joins the form."""
        stem = f"{self.detail.order_id}-{self.name}"

        def done(photo: Any) -> None:
            if photo is not None and self.form is not None:
                self.form.photos.append(photo)
                self.photo_count = len(self.form.photos)
                self.refresh()

        self.services.camera.take(stem, done)

    def submit(self) -> bool:
        """Validate; write the result once; back to the route. False when the form has errors."""
        errors = self.form.errors()
        self.show_errors(errors)
        if errors:
            return False
        self.detail.work.complete(self.detail.state.order, self.form)
        self.services.route.refresh()
        self.form = None
        self.navigator.show("route")
        return True

    def cancel(self) -> None:
        """Back to the order without saving."""
        self.navigator.show("order")


load_kv(__file__)
