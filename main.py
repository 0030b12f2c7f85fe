"""Android entry point (buildozer/python-for-android runs main.py): the field app with its data in the app's storage."""

from pathlib import Path

from mobile.app import run_app

if __name__ == "__main__":
    try:
        from android.storage import app_storage_path  # type: ignore[import-not-found]

        data_dir = Path(app_storage_path()) / "curbstop"
    except ImportError:
        data_dir = Path("var/mobile")
    run_app(data_dir)
