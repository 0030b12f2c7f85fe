"""Device services: GPS and camera through plyer on Android, desktop fall-backs elsewhere (no kivy here)."""

from __future__ import annotations

import sys


def on_android() -> bool:
    """Whether the app runs on Android (python-for-android sets sys.platform to 'android' or 'linux')."""
    import os

    return sys.platform == "android" or "ANDROID_ARGUMENT" in os.environ
