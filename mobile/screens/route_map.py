"""The route on a map: stops and the route line drawn on a canvas (lat/lon projection, no tiles)."""

from __future__ import annotations

from typing import Any

from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Ellipse, Line, Rectangle
from kivy.metrics import dp
from kivy.properties import StringProperty
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from mobile.core.geo import Projection
from mobile.core.route import RouteModel, Stop
from mobile.screens.common import load_kv, on_ui_thread
from mobile.screens.route import MARKER_COLOUR
from mobile.services import Services

load_kv(__file__)


class RouteCanvas(Widget):
    """Draws the stops of a RouteModel; a tap on a stop calls `on_stop(order_id)`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model: RouteModel | None = None
        self.on_stop: Any = None
        self._placed: list[tuple[Stop, float, float]] = []
        self.bind(pos=lambda *_: self.redraw(), size=lambda *_: self.redraw())

    def redraw(self) -> None:
        """Project the stops into this widget and draw grid, route line, stops and numbers."""
        self.canvas.clear()
        if self.model is None:
            return
        stops = [s for s in self.model.stops if s.position is not None]
        here = self.model.position()
        points = [(s.position.lat, s.position.lon) for s in stops if s.position]
        if here is not None:
            points.append((here.lat, here.lon))
        projection = Projection.fit(points, self.width, self.height, margin_px=dp(40))
        self._placed = []
        radius = dp(13)
        with self.canvas:
            Color(0.98, 0.98, 0.96, 1)
            Rectangle(pos=self.pos, size=self.size)
            Color(0.88, 0.89, 0.9, 1)  # a light grid so distances read at a glance
            step = dp(80)
            x = self.x
            while x < self.right:
                Line(points=[x, self.y, x, self.top], width=1)
                x += step
            y = self.y
            while y < self.top:
                Line(points=[self.x, y, self.right, y], width=1)
                y += step
            line: list[float] = []
            for stop in stops:
                assert stop.position is not None
                px, py = projection.to_px(stop.position.lat, stop.position.lon)
                line += [self.x + px, self.y + py]
                self._placed.append((stop, self.x + px, self.y + py))
            if len(line) >= 4:
                Color(0.12, 0.42, 0.75, 0.8)
                Line(points=line, width=dp(2.2), joint="round", cap="round")
            if here is not None:
                hx, hy = projection.to_px(here.lat, here.lon)
                Color(0.1, 0.7, 0.9, 1)
                Ellipse(pos=(self.x + hx - dp(8), self.y + hy - dp(8)), size=(dp(16), dp(16)))
            for stop, cx, cy in self._placed:
                Color(1, 1, 1, 1)
                Ellipse(pos=(cx - radius - dp(2), cy - radius - dp(2)), size=(2 * radius + dp(4),) * 2)
                Color(*MARKER_COLOUR[stop.marker])
                Ellipse(pos=(cx - radius, cy - radius), size=(2 * radius, 2 * radius))
                label = CoreLabel(text=str(stop.sequence_no), font_size=dp(12), bold=True)
                label.refresh()
                texture = label.texture
                Color(1, 1, 1, 1)
                Rectangle(
                    texture=texture, pos=(cx - texture.width / 2, cy - texture.height / 2), size=texture.size
                )

    def on_touch_down(self, touch: Any) -> bool:
        """Open the stop under the finger."""
        if not self.collide_point(*touch.pos):
            return False
        for stop, cx, cy in self._placed:
            if (touch.x - cx) ** 2 + (touch.y - cy) ** 2 <= dp(18) ** 2:
                if self.on_stop is not None:
                    self.on_stop(stop.order_id)
                return True
        return False


class RouteMapScreen(Screen):
    """The map of today's route with a legend."""

    summary = StringProperty("")

    def __init__(self, services: Services, navigator: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.navigator = navigator
        canvas: RouteCanvas = self.ids.canvas
        canvas.model = services.route
        canvas.on_stop = lambda order_id: navigator.show("order", order_id=order_id)
        services.route.subscribe(on_ui_thread(self.redraw))

    def enter(self) -> None:
        """Draw the current route."""
        self.services.route.refresh()
        self.redraw()

    def redraw(self) -> None:
        """Redraw the canvas and the summary."""
        self.summary = self.services.route.summary
        self.ids.canvas.redraw()


def build(services: Services, navigator: Any) -> RouteMapScreen:
    """The route map screen."""
    return RouteMapScreen(services, navigator)
