"""Photos: plyer's camera on Android; on a desktop, an image file the rep picks or a generated placeholder."""

from __future__ import annotations

import datetime as dt
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from mobile.core.forms import Photo
from mobile.platform import on_android

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def placeholder_png(width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (40, 110, 160)) -> bytes:
    """A small solid-colour PNG with a diagonal stripe, built with zlib only (no imaging library)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type 0 per scanline
        for x in range(width):
            stripe = abs(x * height - y * width) < width * 2
            rows += bytes((255, 255, 255) if stripe else rgb)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


PhotoCallback = Callable[[Photo | None], None]


class DesktopCamera:
    """Desktop fall-back: reads `source` (a file chosen in the app) or makes a placeholder image."""

    def __init__(self, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.clock = clock
        self.count = 0

    def take(self, stem: str, on_done: PhotoCallback, source: Path | None = None) -> None:
        """Call `on_done` with a Photo named '<stem>-<n>.<ext>' (synchronously on a desktop)."""
        self.count += 1
        if source is not None:
            ext = source.suffix.lower()
            data = source.read_bytes()
            content_type = CONTENT_TYPES.get(ext, "application/octet-stream")
        else:
            ext, data, content_type = ".png", placeholder_png(), "image/png"
        on_done(
            Photo(
                name=f"{stem}-{self.count}{ext}", data=data, content_type=content_type, taken_at=self.clock()
            )
        )


class PlyerCamera(DesktopCamera):
    """plyer.camera: the system camera app writes a JPEG; its callback hands the file back."""

    def take(self, stem: str, on_done: PhotoCallback, source: Path | None = None) -> None:
        """Open the camera; `on_done` gets the Photo, or None when the rep backed out."""
        from plyer import camera

        self.count += 1
        path = Path(tempfile.gettempdir()) / f"{stem}-{self.count}.jpg"

        def finished(filename: str) -> bool:
            file = Path(filename)
            if not file.exists():
                on_done(None)
                return False
            on_done(
                Photo(
                    name=file.name, data=file.read_bytes(), content_type="image/jpeg", taken_at=self.clock()
                )
            )
            file.unlink(missing_ok=True)
            return False

        camera.take_picture(filename=str(path), on_complete=finished)


def default_camera() -> DesktopCamera:
    """PlyerCamera on Android, DesktopCamera elsewhere."""
    return PlyerCamera() if on_android() else DesktopCamera()
