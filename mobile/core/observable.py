"""A tiny observer base: view models call `changed()`, screens subscribe and redraw."""

from __future__ import annotations

import threading
from collections.abc import Callable

Listener = Callable[[], None]


class Observable:
    """Holds listeners; `changed()` calls each one (on the caller's thread: screens hop to the UI thread)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Register `listener`; return a function that removes it."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def changed(self) -> None:
        """Tell every listener that the model changed."""
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
