"""Sign-in screen: server URL, user name, password; the call runs off the UI thread."""

from __future__ import annotations

import threading
from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.screenmanager import Screen

from mobile.screens.common import load_kv
from mobile.services import Services

load_kv(__file__)


class SignInScreen(Screen):
    """Observes `SignInModel`; on success starts sync and shows the route."""

    error = StringProperty("")
    busy = BooleanProperty(False)

    def __init__(self, services: Services, navigator: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.navigator = navigator
        self.model = services.sign_in
        self.ids.server.text = self.model.server_url
        self.ids.username.text = self.model.username

    def enter(self) -> None:
        """Fresh form (keeps server and user name)."""
        self.ids.password.text = ""
        self.error = self.model.error

    def submit(self) -> None:
        """Validate here, call the server on a thread, come back on the UI thread."""
        self.model.server_url = self.ids.server.text
        self.model.username = self.ids.username.text
        password = self.ids.password.text
        problem = self.model.validate(password)
        if problem:
            self.error = problem
            return
        self.busy = True
        self.error = ""

        def work() -> None:
            ok = self.model.sign_in(password)
            Clock.schedule_once(lambda _dt: self._done(ok), 0)

        threading.Thread(target=work, name="sign-in", daemon=True).start()

    def _done(self, ok: bool) -> None:
        self.busy = False
        self.error = self.model.error
        if ok:
            self.ids.password.text = ""
            self.services.start_sync()
            self.navigator.show("route")


def build(services: Services, navigator: Any) -> SignInScreen:
    """The sign-in screen."""
    return SignInScreen(services, navigator)
