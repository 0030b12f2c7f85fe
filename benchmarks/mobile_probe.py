"""One cold start of the field app (run by benchmarks/mobile.py in a fresh process under Xvfb).

argv: data_dir, number of order opens. Prints one JSON line: cold start to the route's first frame,
and the time from tapping an order to the frame that shows its detail, for each open.
"""

from __future__ import annotations

import json
import os
import sys
import time

START = float(os.environ.get("CURBSTOP_BENCH_T0", time.time()))
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")


def main() -> None:
    """Start the app on the prepared data dir and time it."""
    from pathlib import Path

    from kivy.clock import Clock
    from kivy.config import Config

    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    from kivy.core.window import Window

    from mobile.app import FieldApp, make_services

    data_dir = Path(sys.argv[1])
    opens = int(sys.argv[2])
    services = make_services(data_dir)
    app = FieldApp(services, autostart_sync=False)
    out: dict[str, object] = {}
    open_ms: list[float] = []
    order_ids: list[str] = []
    pending: dict[str, float] = {}

    def on_flip(*_args: object) -> None:
        now = time.time()
        if "cold_start_ms" not in out:
            route = services.route
            if app.navigator is not None and app.navigator.current.name == "route" and route.stops:
                out["cold_start_ms"] = (now - START) * 1000
                out["stops"] = len(route.stops)
                order_ids.extend(
                    s.order_id for s in route.stops[:: max(1, len(route.stops) // opens)][:opens]
                )
                Clock.schedule_once(lambda _dt: next_open(), 0)
            return
        if "t" in pending:
            open_ms.append((time.perf_counter() - pending.pop("t")) * 1000)
            Clock.schedule_once(lambda _dt: next_open(), 0)

    def next_open() -> None:
        assert app.navigator is not None
        if not order_ids:
            out["open_ms"] = open_ms
            print(json.dumps(out), flush=True)
            app.stop()
            return
        app.navigator.show("route")
        order_id = order_ids.pop(0)
        pending["t"] = time.perf_counter()
        app.navigator.show("order", order_id=order_id)

    Window.bind(on_flip=on_flip)
    app.run()
    services.store.close()


if __name__ == "__main__":
    main()
