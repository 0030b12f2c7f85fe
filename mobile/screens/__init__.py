"""Screens: one `.py` + `.kv` pair each, thin, observing `mobile.core` models; built on first use.

Every module has `build(services, navigator) -> Screen`; `mobile.app.Navigator` imports the module
(which loads its `.kv`) the first time the screen is shown.
"""

SCREENS = (
    "signin",
    "route",
    "route_map",
    "order",
    "reread",
    "service",
    "meter_test",
    "investigation",
    "unable",
)
