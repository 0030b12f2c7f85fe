"""Hand-held meter-reading records: routes loaded into a device and reads unloaded from it.

These records cross three boundaries: server -> docking station (HTTP), station <-> hand-held (serial,
see docs/handheld-protocol.md) and station -> server (HTTP). On the serial line and in HTTP bodies they
travel as JSON; a batch on the serial line is JSON Lines (one record per line, UTF-8, LF-terminated),
see `encode_lines` / `decode_routes` / `decode_reads`.

Readings are integers of the register's dial digits, exactly as the reader sees them: a 6-dial register
with 1 decimal showing 01234.5 is ``reading=12345, dials=6, decimals=1``. The volume is
``reading / 10**decimals * multiplier`` in ``unit``. High and low limits are readings in the same digits,
computed by the server's own read validation: a reading within ``low_limit``..``high_limit`` never raises
a reread (either may be absent: an open end). The server stores every read as the displayed value
(``reading / 10**decimals``), the same numbers a tablet sends. No floats for readings, ever.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from contracts.codes import ReadCode, ReadSource, UnableCode, VolumeUnit

Text = Annotated[str, Field(max_length=200)]
Id = Annotated[str, Field(min_length=1, max_length=40)]


class ReadDirection(StrEnum):
    """Order in which the reader keys the dial digits (Neptune's 'read direction')."""

    LEFT_TO_RIGHT = "left_to_right"
    RIGHT_TO_LEFT = "right_to_left"


class ReadType(StrEnum):
    """Why the read was taken."""

    REGULAR = "regular"  # the cycle read
    REREAD = "reread"
    CHECK = "check"  # a check read asked for by the office
    FINAL = "final"
    INITIAL = "initial"


class ReadMethod(StrEnum):
    """How the reading got into the hand-held."""

    KEYED = "keyed"  # reader looked at the register and typed it
    PROBE = "probe"  # touch-pad / inductive probe
    RADIO = "radio"  # walk-by or drive-by radio (MXU / MIU / ERT)
    OPTICAL = "optical"  # camera / OCR
    ESTIMATED = "estimated"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RouteRecord(_Record):
    """One meter register to read, as loaded into a hand-held."""

    route_id: Id  # route / book
    cycle: Annotated[str, Field(min_length=1, max_length=10)]
    sequence: Annotated[int, Field(ge=0, le=999_999)]  # walk sequence within the route
    account: Id
    service_point_id: Id
    customer_name: Text = ""
    address: Text = ""  # service address
    address2: Text = ""  # second address line, as vendor layouts carry it
    meter_serial: Id
    endpoint_id: Annotated[str, Field(max_length=20)] = ""  # radio / MXU / ERT id; empty for keyed-only
    endpoint_type: Annotated[str, Field(max_length=4)] = ""
    meter_type: Annotated[str, Field(max_length=4)] = ""
    register_number: Annotated[int, Field(ge=1, le=9)] = 1
    dials: Annotated[int, Field(ge=1, le=10)]
    decimals: Annotated[int, Field(ge=0, le=9)] = 0
    multiplier: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    unit: VolumeUnit = VolumeUnit.GALLON
    read_direction: ReadDirection = ReadDirection.LEFT_TO_RIGHT
    previous_read: Annotated[int, Field(ge=0)] | None = None
    low_limit: Annotated[int, Field(ge=0)] | None = None
    high_limit: Annotated[int, Field(ge=0)] | None = None
    location_note: Text = ""  # e.g. "left side of drive, under bush"
    hazard_note: Text = ""  # e.g. "dog", "box lid broken"

    @model_validator(mode="after")
    def _readings_fit_the_register(self) -> Self:
        if self.decimals >= self.dials:
            raise ValueError(f"decimals ({self.decimals}) must be fewer than dials ({self.dials})")
        top = 10**self.dials
        for name in ("previous_read", "low_limit", "high_limit"):
            value = getattr(self, name)
            if value is not None and value >= top:
                raise ValueError(f"{name} {value} does not fit on {self.dials} dials (max {top - 1})")
        if self.low_limit is not None and self.high_limit is not None and self.low_limit > self.high_limit:
            raise ValueError(f"low_limit {self.low_limit} is above high_limit {self.high_limit}")
        return self


class ReadRecord(_Record):
    """One read (or skip) of one register, as unloaded from a hand-held."""

    device_id: Id
    reader_id: Id
    route_id: Id
    cycle: Annotated[str, Field(min_length=1, max_length=10)]
    sequence: Annotated[int, Field(ge=0, le=999_999)]
    account: Id
    service_point_id: Id
    meter_serial: Id
    register_number: Annotated[int, Field(ge=1, le=9)] = 1
    reading: Annotated[int, Field(ge=0, lt=10**10)] | None = None  # None when skipped
    read_at: dt.datetime
    read_type: ReadType = ReadType.REGULAR
    read_method: ReadMethod = ReadMethod.KEYED
    skip_code: UnableCode | None = None  # why there is no reading
    trouble_code: ReadCode = ReadCode.NONE
    note: Text = ""
    tamper: bool = False
    leak: bool = False
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    gps_accuracy_m: Annotated[float, Field(ge=0)] | None = None
    source: ReadSource = ReadSource.HANDHELD

    @model_validator(mode="before")
    @classmethod
    def _drop_derived_key(cls, data: object) -> object:
        # idempotency_key is derived from other fields; JSON bodies carry it for the server's
        # convenience, so accept it on input and recompute rather than trust it.
        if isinstance(data, dict) and "idempotency_key" in data:
            data = {k: v for k, v in data.items() if k != "idempotency_key"}
        return data

    @field_validator("read_at")
    @classmethod
    def _aware_utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("read_at must carry a time zone (hand-helds send UTC)")
        return value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _reading_or_skip(self) -> Self:
        if self.reading is None and self.skip_code is None:
            raise ValueError("a read needs either a reading or a skip_code")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude come together or not at all")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def idempotency_key(self) -> str:
        """Stable key per (device, meter, register, read time): the same read uploaded twice is one read."""
        return read_idempotency_key(self.device_id, self.meter_serial, self.register_number, self.read_at)


def read_idempotency_key(device_id: str, meter_serial: str, register: int, read_at: dt.datetime) -> str:
    """Hex SHA-256 (first 32 chars) of ``device|meter|register|read_at as UTC ISO-8601 to the microsecond``."""
    stamp = read_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raw = f"{device_id}|{meter_serial}|{register}|{stamp}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class HandheldUpload(_Record):
    """Body of ``POST /api/handhelds/uploads`` (see docs/device-bridge.md)."""

    device_id: Id
    reads: list[ReadRecord]

    @model_validator(mode="after")
    def _reads_belong_to_device(self) -> Self:
        for i, read in enumerate(self.reads):
            if read.device_id != self.device_id:
                raise ValueError(f"reads[{i}].device_id {read.device_id!r} is not {self.device_id!r}")
        return self


class UploadResult(_Record):
    """Reply to an upload: how many reads were new and how many the server already had."""

    accepted: Annotated[int, Field(ge=0)]
    duplicates: Annotated[int, Field(ge=0)]


class RecordLineError(ValueError):
    """A JSON Lines batch held bad records; `errors` names every bad line (1-based)."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def encode_lines(records: Iterable[BaseModel]) -> bytes:
    """Encode records as JSON Lines (UTF-8, one compact object per LF-terminated line)."""
    # Defaults are left out (the receiver fills them in) and the idempotency key is derived, so
    # neither is sent: a typical route record is ~250 bytes instead of ~450.
    return b"".join(
        r.model_dump_json(exclude={"idempotency_key"}, exclude_defaults=True).encode() + b"\n"
        for r in records
    )


_M = TypeVar("_M", bound=BaseModel)


def _decode_lines(model: type[_M], data: bytes) -> list[_M]:
    out: list[_M] = []
    errors: list[str] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}" for e in exc.errors()
            )
            errors.append(f"line {number}: {detail}")
    if errors:
        raise RecordLineError(errors)
    return out


def decode_routes(data: bytes) -> list[RouteRecord]:
    """Decode a JSON Lines route batch; raise RecordLineError naming every bad line, returning nothing."""
    return _decode_lines(RouteRecord, data)


def decode_reads(data: bytes) -> list[ReadRecord]:
    """Decode a JSON Lines read batch; raise RecordLineError naming every bad line, returning nothing."""
    return _decode_lines(ReadRecord, data)
