"""The CouchDB documents that travel between the server and the tablets (one database per CSFR).

One writer per document, so conflicts are rare and never silent:

| id                            | written by | when                                                  |
|-------------------------------|------------|-------------------------------------------------------|
| ``order:<order_id>``          | server     | dispatched, changed, reassigned, cancelled            |
| ``result:<order_id>:<uuid>``  | tablet     | once, when the CSFR finishes the visit; never edited  |
| ``event:<uuid>``              | tablet     | once per status event (en route, on site, ...)        |

The replication bookkeeping fields (``_id``, ``_rev``, ``_attachments``, ``_deleted``,
``_conflicts``...) are not part of these models: `to_couch` adds ``_id`` and `from_couch` drops the
rest. Photos travel as CouchDB attachments of the result document, described by `photos`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.codes import OrderStatus, OrderType, Priority, ReadCode, UnableCode, VolumeUnit

ORDER_PREFIX = "order:"
RESULT_PREFIX = "result:"
EVENT_PREFIX = "event:"
DOC_SCHEMA_VERSION = 1


def order_doc_id(order_id: str) -> str:
    """``order:<order_id>``."""
    return f"{ORDER_PREFIX}{order_id}"


def result_doc_id(order_id: str, result_uuid: str | None = None) -> str:
    """``result:<order_id>:<uuid>`` (a fresh uuid when none is given)."""
    return f"{RESULT_PREFIX}{order_id}:{result_uuid or uuid.uuid4().hex}"


def event_doc_id(event_uuid: str | None = None) -> str:
    """``event:<uuid>`` (a fresh uuid when none is given)."""
    return f"{EVENT_PREFIX}{event_uuid or uuid.uuid4().hex}"


def tablet_writes(doc_id: str) -> bool:
    """Whether a tablet may create this document (results and events; never orders or design docs)."""
    return doc_id.startswith((RESULT_PREFIX, EVENT_PREFIX))


class CouchDoc(BaseModel):
    """Base of the synced documents: strict, extra fields kept so newer servers do not break old tablets."""

    model_config = ConfigDict(extra="allow", frozen=True)

    doc_type: str
    schema_version: int = DOC_SCHEMA_VERSION

    def doc_id(self) -> str:
        """The CouchDB ``_id`` this document lives under."""
        raise NotImplementedError

    def to_couch(self) -> dict[str, Any]:
        """JSON-ready body with ``_id`` (no ``_rev``: the store adds it)."""
        return {"_id": self.doc_id(), **self.model_dump(mode="json", exclude_none=True)}

    @classmethod
    def from_couch(cls, doc: dict[str, Any]) -> Self:
        """Parse a stored document, ignoring CouchDB's own ``_``-fields."""
        return cls.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})


class GeoPoint(BaseModel):
    """A WGS84 position; accuracy in metres when the GPS gives one."""

    model_config = ConfigDict(frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0)


class TimeWindow(BaseModel):
    """When the visit may happen (promised to the customer)."""

    model_config = ConfigDict(frozen=True)

    start_at: dt.datetime
    end_at: dt.datetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_at < self.start_at:
            raise ValueError(f"time window ends ({self.end_at}) before it starts ({self.start_at})")
        return self


class LastRead(BaseModel):
    """One earlier reading of the meter, as the register displayed it (see `MeterFacts`)."""

    model_config = ConfigDict(frozen=True)

    value: float = Field(ge=0)
    read_at: dt.datetime


class MeterFacts(BaseModel):
    """What the CSFR needs to find and check the meter; nothing about the customer's money.

    Every reading here (`last_read`, `last_reads`, `expected_low`, `expected_high`) and the `Reading.value`
    a tablet sends back are the register as displayed, decimals applied (01234.5 on a 6-dial register
    with 1 decimal is 1234.5), in `unit` before `multiplier`: the same numbers a person types and the
    server stores. `expected_low`/`expected_high` are computed by the server's own validation (a reading
    inside them never raises a reread); None is an open end.
    """

    model_config = ConfigDict(frozen=True)

    meter_id: str
    serial_number: str | None = None
    size_in: str | None = None  # nominal size, e.g. "5/8x3/4"
    dials: int | None = Field(default=None, ge=1, le=12)
    decimals: int = Field(default=0, ge=0, le=9)  # dials right of the point
    multiplier: int = Field(default=1, ge=1)  # the register counts `multiplier` units per step shown
    unit: VolumeUnit = VolumeUnit.GALLON
    location: str | None = None  # "front yard, left of driveway"
    last_read: float | None = None
    last_read_at: dt.datetime | None = None
    last_reads: list[LastRead] = Field(default_factory=list, max_length=12)  # newest first
    expected_low: float | None = Field(default=None, ge=0)
    expected_high: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.dials is not None and self.decimals >= self.dials:
            raise ValueError(f"decimals ({self.decimals}) must be fewer than dials ({self.dials})")
        if (
            self.expected_low is not None
            and self.expected_high is not None
            and self.expected_low > self.expected_high
        ):
            raise ValueError(
                f"expected_low {self.expected_low:g} is above expected_high {self.expected_high:g}"
            )
        return self


class ServicePointFacts(BaseModel):
    """Where the work is, safe for a tablet that may be lost in the field (typed: a key the tablet does
    not know is ignored, never carried along untyped)."""

    model_config = ConfigDict(frozen=True)

    service_point_id: str
    address: str
    position: GeoPoint | None = None
    curb_stop_location: str | None = None


class OrderDoc(CouchDoc):
    """``order:<order_id>``: an order as dispatched to one CSFR (server-written; the tablet reads it)."""

    doc_type: Literal["order"] = "order"
    order_id: str
    order_type: OrderType
    status: OrderStatus
    priority: Priority
    csfr_id: str
    window: TimeWindow | None = None
    planned_arrival_at: dt.datetime | None = None
    sequence: int | None = Field(default=None, ge=0)  # position in the CSFR's route
    account_id: str | None = None
    customer_name: str | None = None
    service_point: ServicePointFacts | None = None
    meters: list[MeterFacts] = Field(default_factory=list)
    access_notes: str | None = None
    hazards: list[str] = Field(default_factory=list)  # "dog", "confined space", ...
    reason: str | None = None  # why the order exists (the rule or the dispatcher's note)
    version: int = Field(ge=0)  # the server's optimistic-concurrency version of the order
    published_at: dt.datetime | None = None

    def doc_id(self) -> str:
        """``order:<order_id>``."""
        return order_doc_id(self.order_id)


class Reading(BaseModel):
    """One register reading taken on site: `value` is the register as displayed, decimals applied, in
    `unit` (the convention of `MeterFacts`; the server refuses a value with more decimals than the
    register shows or in another unit than the meter's)."""

    model_config = ConfigDict(frozen=True)

    meter_id: str
    value: float = Field(ge=0)
    unit: VolumeUnit = VolumeUnit.GALLON
    code: ReadCode = ReadCode.NONE
    read_at: dt.datetime


class PhotoRef(BaseModel):
    """A photo stored as an attachment of the same document under `attachment`."""

    model_config = ConfigDict(frozen=True)

    attachment: str
    caption: str | None = None
    taken_at: dt.datetime | None = None


class ResultDoc(CouchDoc):
    """``result:<order_id>:<uuid>``: the outcome of one visit (tablet-written once, never edited)."""

    doc_type: Literal["result"] = "result"
    result_id: str  # the uuid part of the document id
    order_id: str
    outcome: Literal["completed", "unable_to_complete"]
    unable_code: UnableCode | None = None
    readings: list[Reading] = Field(default_factory=list)
    fields: dict[str, Any] = Field(default_factory=dict)  # per order type: seal number, test accuracy %, ...
    notes: str | None = None
    photos: list[PhotoRef] = Field(default_factory=list)
    csfr_id: str
    device_id: str
    completed_at: dt.datetime
    order_version: int | None = Field(default=None, ge=0)  # the order version the CSFR worked from

    @model_validator(mode="after")
    def _code_matches_outcome(self) -> Self:
        if self.outcome == "unable_to_complete" and self.unable_code is None:
            raise ValueError("unable_code is required when outcome is unable_to_complete")
        if self.outcome == "completed" and self.unable_code is not None:
            raise ValueError("unable_code must be empty when outcome is completed")
        return self

    def doc_id(self) -> str:
        """``result:<order_id>:<result_id>``."""
        return result_doc_id(self.order_id, self.result_id)


EventKind = Literal["en_route", "on_site", "left_site", "paused", "resumed", "note"]


class EventDoc(CouchDoc):
    """``event:<uuid>``: a status event of the CSFR on an order (tablet-written once)."""

    doc_type: Literal["event"] = "event"
    event_id: str
    order_id: str
    kind: EventKind
    at: dt.datetime
    gps: GeoPoint | None = None
    csfr_id: str
    device_id: str

    def doc_id(self) -> str:
        """``event:<event_id>``."""
        return event_doc_id(self.event_id)
