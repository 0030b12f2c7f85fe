"""Recording the work: status events and results become documents in the local store, written once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

from contracts.couch import EventDoc, EventKind, GeoPoint, OrderDoc, PhotoRef, Reading, ResultDoc
from mobile.core.docstore import DocStore
from mobile.core.forms import CompletionForm, Photo
from mobile.core.route import Clock, utc_now


class Locator(Protocol):
    """Where the tablet is (`mobile.platform.gps`); None when no fix is available."""

    def current(self) -> GeoPoint | None:
        """The latest position fix, or None."""
        ...


class NoLocation:
    """A locator for a device without GPS."""

    def current(self) -> GeoPoint | None:
        """Always None."""
        return None


class AlreadyClosed(Exception):
    """The order already has a result on this tablet (or was cancelled): nothing more may be written."""


class FieldWork:
    """Writes EventDocs and ResultDocs for the signed-in CSFR on this device."""

    def __init__(
        self,
        store: DocStore,
        *,
        csfr_id: str,
        device_id: str,
        clock: Clock = utc_now,
        locator: Locator | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.csfr_id = csfr_id
        self.device_id = device_id
        self.clock = clock
        self.locator: Locator = locator or NoLocation()
        self.new_id = new_id
        self.on_written = on_written

    def record_event(self, order: OrderDoc, kind: EventKind) -> EventDoc:
        """Write an event (time and GPS when there is a fix)."""
        event = EventDoc(
            event_id=self.new_id(),
            order_id=order.order_id,
            kind=kind,
            at=self.clock(),
            gps=self.locator.current(),
            csfr_id=self.csfr_id,
            device_id=self.device_id,
        )
        self.store.put(event.to_couch())
        self.on_written()
        return event

    def complete(self, order: OrderDoc, form: CompletionForm, *, already_closed: bool = False) -> ResultDoc:
        """Validate the form and write its result with photos as attachments in one revision."""
        if already_closed:
            raise AlreadyClosed(f"order {order.order_id} is already closed on this tablet")
        payload = form.payload()  # raises FormInvalid with field messages
        now = self.clock()
        photos = self._photo_names(payload.photos)
        result = ResultDoc(
            result_id=self.new_id(),
            order_id=order.order_id,
            outcome="completed" if payload.outcome == "completed" else "unable_to_complete",
            unable_code=payload.unable_code,
            readings=[
                Reading(meter_id=meter.meter_id, value=value, unit=meter.unit, read_at=now)
                for meter, value in payload.readings
            ],
            # The form's typed fields (contracts.forms) with where the tablet was.
            fields=payload.fields.model_copy(update={"gps": self.locator.current()}).model_dump(
                mode="json", exclude_none=True
            ),
            notes=payload.notes,
            photos=[
                PhotoRef(attachment=name, caption=p.caption or None, taken_at=p.taken_at)
                for name, p in photos
            ],
            csfr_id=self.csfr_id,
            device_id=self.device_id,
            completed_at=now,
            order_version=order.version,
        )
        doc: dict[str, Any] = result.to_couch()
        if photos:
            doc["_attachments"] = {
                name: {"content_type": photo.content_type, "data": photo.data} for name, photo in photos
            }
        self.store.put(doc)
        self.on_written()
        return result

    @staticmethod
    def _photo_names(photos: list[Photo]) -> list[tuple[str, Photo]]:
        """Unique attachment names (a repeated name gets -2, -3 ...)."""
        seen: set[str] = set()
        out: list[tuple[str, Photo]] = []
        for photo in photos:
            name = photo.name
            stem, dot, ext = name.rpartition(".")
            n = 2
            while name in seen:
                name = f"{stem}-{n}.{ext}" if dot else f"{photo.name}-{n}"
                n += 1
            seen.add(name)
            out.append((name, photo))
        return out
