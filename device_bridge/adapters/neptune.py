"""Neptune EZRoute fixed-width record, onto RouteRecord (load) and ReadRecord (unload).

::

    cols      field               RouteRecord / ReadRecord
    1-10      route               route_id
    11-14     walk sequence       sequence (0-9999)
    15-18     page                (written blank; ignored on read)
    19-20     read sequence       register_number
    21-26     handheld id         device_id (reads); the target hand-held (routes)
    27        read direction      read_direction: L = left to right, R = right to left
    28        number of dials     dials (1-9)
    29-41     expected meter id   meter_serial
    42-54     captured meter id   (reads) meter id the reader keyed; a mismatch is noted
    55-67     meter id override   (reads) replaces the captured id when present
    68        decimal position    decimals
    69-78     reading             reading
    79-88     reading override    (reads) replaces the reading when present
    89-98     high limit          high_limit
    99-108    low limit           low_limit

The issue's layout ends "then dates and notes" without columns. Curbstop's choice for them, to be
checked against a utility's EZRoute configuration before production:

    109-116   read date YYYYMMDD  read_at (UTC)
    117-122   read time HHMMSS    read_at (UTC)
    123-137   account             account (and service_point_id when the caller has no better)
    138-139   skip code           skip_code  (SKIP_CODES)
    140-141   trouble code        trouble_code (TROUBLE_CODES)
    142-181   note                note / location_note
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from contracts.codes import ReadCode, UnableCode
from contracts.handheld import ReadDirection, ReadRecord, RouteRecord
from device_bridge.adapters.fixed_width import Column, FieldError, Kind, format_file, parse_file

RECORD_LENGTH = 181
COLUMNS = (
    Column("route", 1, 10),
    Column("walk_sequence", 11, 14, Kind.NUMBER),
    Column("page", 15, 18, Kind.NUMBER),
    Column("read_sequence", 19, 20, Kind.NUMBER),
    Column("handheld_id", 21, 26),
    Column("read_direction", 27, 27),
    Column("dials", 28, 28, Kind.NUMBER),
    Column("expected_meter_id", 29, 41),
    Column("captured_meter_id", 42, 54),
    Column("meter_id_override", 55, 67),
    Column("decimals", 68, 68, Kind.NUMBER),
    Column("reading", 69, 78, Kind.NUMBER),
    Column("reading_override", 79, 88, Kind.NUMBER),
    Column("high_limit", 89, 98, Kind.NUMBER),
    Column("low_limit", 99, 108, Kind.NUMBER),
    Column("read_date", 109, 116, Kind.NUMBER),
    Column("read_time", 117, 122, Kind.NUMBER),
    Column("account", 123, 137),
    Column("skip_code", 138, 139),
    Column("trouble_code", 140, 141),
    Column("note", 142, 181),
)
_COL = {c.name: c for c in COLUMNS}

DIRECTIONS = {"L": ReadDirection.LEFT_TO_RIGHT, "R": ReadDirection.RIGHT_TO_LEFT}
SKIP_CODES: dict[str, UnableCode] = {
    "DG": UnableCode.DOG,
    "LG": UnableCode.LOCKED_GATE,
    "BB": UnableCode.BURIED_BOX,
    "VO": UnableCode.VEHICLE_OVER_METER,
    "OB": UnableCode.OBSTRUCTED,
    "VG": UnableCode.VEGETATION,
    "CL": UnableCode.CANT_LOCATE,
    "BF": UnableCode.BOX_FLOODED,
    "RF": UnableCode.REGISTER_FOGGED,
    "NH": UnableCode.INSIDE_NOBODY_HOME,
    "CR": UnableCode.CUSTOMER_REFUSED,
    "US": UnableCode.UNSAFE,
    "SI": UnableCode.SNOW_ICE,
    "MM": UnableCode.METER_NUMBER_MISMATCH,
    "DE": UnableCode.DAMAGED_EQUIPMENT,
}
TROUBLE_CODES: dict[str, ReadCode] = {
    "": ReadCode.NONE,
    "RR": ReadCode.REREAD_REQUESTED,
    "TP": ReadCode.TAMPER,
    "LK": ReadCode.LEAK_SUSPECTED,
    "CF": ReadCode.CONTINUOUS_FLOW,
    "RV": ReadCode.REVERSE_FLOW,
    "DD": ReadCode.DIAL_DAMAGED,
    "NR": ReadCode.CANT_READ,
    "ES": ReadCode.ESTIMATED,
}
_SKIP_OUT = {v: k for k, v in SKIP_CODES.items()}
_TROUBLE_OUT = {v: k for k, v in TROUBLE_CODES.items()}


def _code(table: Mapping[str, object], name: str, value: object) -> object:
    if value not in table:
        known = ", ".join(repr(k) for k in table if k)
        col = _COL[name]
        raise FieldError(
            col, f"columns {col.start}-{col.end} ({name}): unknown code {value!r}; known: {known}"
        )
    return table[value]  # type: ignore[index]


def _direction(value: object) -> ReadDirection:
    d = DIRECTIONS.get(str(value or "L"))
    if d is None:
        raise FieldError(_COL["read_direction"], f"column 27 (read_direction): {value!r} is not L or R")
    return d


def read_routes(text: str, *, cycle: str, source: str = "EZRoute file") -> list[RouteRecord]:
    """Parse EZRoute records as routes to load; raise LayoutError naming every bad line and column."""

    def build(_line: int, v: dict[str, str | int | None]) -> RouteRecord:
        account = v["account"] or v["expected_meter_id"]
        return RouteRecord.model_validate(
            {
                "route_id": v["route"],
                "cycle": cycle,
                "sequence": v["walk_sequence"] if v["walk_sequence"] is not None else 0,
                "account": account,
                "service_point_id": account,
                "meter_serial": v["expected_meter_id"],
                "register_number": v["read_sequence"] or 1,
                "dials": v["dials"],
                "decimals": v["decimals"] or 0,
                "read_direction": _direction(v["read_direction"]),
                "high_limit": v["high_limit"],
                "low_limit": v["low_limit"],
                "location_note": v["note"],
            }
        )

    return parse_file(text, source=source, length=RECORD_LENGTH, columns=COLUMNS, build=build)


def write_routes(routes: Sequence[RouteRecord], *, handheld_id: str, source: str = "EZRoute file") -> str:
    """Write routes as EZRoute records for one hand-held; raise LayoutError if a value does not fit."""
    out_dir = {v: k for k, v in DIRECTIONS.items()}
    rows: list[dict[str, str | int | None]] = [
        {
            "route": r.route_id,
            "walk_sequence": r.sequence,
            "read_sequence": r.register_number,
            "handheld_id": handheld_id,
            "read_direction": out_dir[r.read_direction],
            "dials": r.dials,
            "expected_meter_id": r.meter_serial,
            "decimals": r.decimals,
            "high_limit": r.high_limit,
            "low_limit": r.low_limit,
            "account": r.account,
            "note": r.location_note,
        }
        for r in routes
    ]
    return format_file(rows, source=source, length=RECORD_LENGTH, columns=COLUMNS)


def read_reads(
    text: str,
    *,
    cycle: str,
    reader_id: str,
    service_points: Mapping[str, str] | None = None,
    source: str = "EZRoute file",
) -> list[ReadRecord]:
    """Parse EZRoute records unloaded from hand-helds as reads; raise LayoutError naming line and column.

    Parameters
    ----------
    cycle, reader_id
        Not in the layout; the caller knows them.
    service_points
        Account -> service point id, when the caller has it; otherwise the account stands in.
    """
    sps = service_points or {}

    def build(_line: int, v: dict[str, str | int | None]) -> ReadRecord:
        date, time_ = v["read_date"], v["read_time"]
        if date is None or time_ is None:
            col = _COL["read_date"]
            raise FieldError(col, f"columns {col.start}-122 (read_date, read_time): a read needs both")
        try:
            read_at = dt.datetime.strptime(f"{date:08d}{time_:06d}", "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise FieldError(_COL["read_date"], f"columns 109-122 (read_date, read_time): {exc}") from exc
        reading = v["reading_override"] if v["reading_override"] is not None else v["reading"]
        captured = v["meter_id_override"] or v["captured_meter_id"]
        note = str(v["note"] or "")
        if captured and captured != v["expected_meter_id"]:
            note = f"captured meter id {captured}; {note}".strip("; ")
        skip = _code(SKIP_CODES, "skip_code", v["skip_code"]) if v["skip_code"] else None
        account = str(v["account"] or "")
        return ReadRecord.model_validate(
            {
                "device_id": v["handheld_id"],
                "reader_id": reader_id,
                "route_id": v["route"],
                "cycle": cycle,
                "sequence": v["walk_sequence"] if v["walk_sequence"] is not None else 0,
                "account": account,
                "service_point_id": sps.get(account, account),
                "meter_serial": v["expected_meter_id"],
                "register_number": v["read_sequence"] or 1,
                "reading": reading,
                "read_at": read_at,
                "skip_code": skip,
                "trouble_code": _code(TROUBLE_CODES, "trouble_code", v["trouble_code"]),
                "note": note[:200],
            }
        )

    return parse_file(text, source=source, length=RECORD_LENGTH, columns=COLUMNS, build=build)


def write_reads(reads: Sequence[ReadRecord], *, source: str = "EZRoute file") -> str:
    """Write reads as EZRoute records; raise LayoutError if a value does not fit."""
    rows: list[dict[str, str | int | None]] = []
    for r in reads:
        at = r.read_at.astimezone(dt.UTC)
        rows.append(
            {
                "route": r.route_id,
                "walk_sequence": r.sequence,
                "read_sequence": r.register_number,
                "handheld_id": r.device_id,
                "read_direction": "L",
                "expected_meter_id": r.meter_serial,
                "captured_meter_id": r.meter_serial,
                "reading": r.reading,
                "read_date": int(at.strftime("%Y%m%d")),
                "read_time": int(at.strftime("%H%M%S")),
                "account": r.account,
                "skip_code": _SKIP_OUT.get(r.skip_code, "") if r.skip_code else "",
                "trouble_code": _TROUBLE_OUT.get(r.trouble_code, ""),
                "note": r.note,
            }
        )
    return format_file(rows, source=source, length=RECORD_LENGTH, columns=COLUMNS)
