"""Sensus AutoRead import record (155 characters): route file for Sensus hand-helds, onto RouteRecord.

::

    cols      field             RouteRecord
    1-20      service address   address
    21-28     meter id          service_point_id
    29-43     account           account
    44-58     comment           location_note
    59-78     address           address2
    79-103    name              customer_name
    104       meter type        meter_type
    105-114   previous read     previous_read
    115-124   low limit         low_limit
    125-134   high limit        high_limit
    135-144   MXU id            endpoint_id
    145       MXU type          endpoint_type
    146-155   meter serial      meter_serial

The layout carries no route, cycle, walk sequence or register geometry: the caller names the route
and cycle, the sequence is the line's position (10, 20, 30, ...) and dials/decimals come in as defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.handheld import RouteRecord
from device_bridge.adapters.fixed_width import Column, Kind, format_file, parse_file

RECORD_LENGTH = 155
COLUMNS = (
    Column("address", 1, 20),
    Column("service_point_id", 21, 28),
    Column("account", 29, 43),
    Column("location_note", 44, 58),
    Column("address2", 59, 78),
    Column("customer_name", 79, 103),
    Column("meter_type", 104, 104),
    Column("previous_read", 105, 114, Kind.NUMBER),
    Column("low_limit", 115, 124, Kind.NUMBER),
    Column("high_limit", 125, 134, Kind.NUMBER),
    Column("endpoint_id", 135, 144),
    Column("endpoint_type", 145, 145),
    Column("meter_serial", 146, 155),
)


def read_routes(
    text: str,
    *,
    route_id: str,
    cycle: str,
    dials: int = 6,
    decimals: int = 0,
    source: str = "sensus import file",
) -> list[RouteRecord]:
    """Parse a Sensus AutoRead import file; raise LayoutError naming every bad line and column.

    Parameters
    ----------
    text
        File contents (ASCII; LF or CRLF line ends).
    route_id, cycle
        Route and cycle the file is for (the layout has neither).
    dials, decimals
        Register geometry for every meter in the file.
    """
    sequence = 0

    def build(_line: int, v: dict[str, str | int | None]) -> RouteRecord:
        nonlocal sequence
        sequence += 10
        return RouteRecord.model_validate(
            {
                **v,
                "route_id": route_id,
                "cycle": cycle,
                "sequence": sequence,
                "dials": dials,
                "decimals": decimals,
            }
        )

    return parse_file(text, source=source, length=RECORD_LENGTH, columns=COLUMNS, build=build)


def write_routes(routes: Sequence[RouteRecord], *, source: str = "sensus import file") -> str:
    """Write routes as Sensus AutoRead import records (CRLF line ends); raise LayoutError if one does not fit."""
    rows = [{c.name: getattr(r, c.name) for c in COLUMNS} for r in routes]
    return format_file(rows, source=source, length=RECORD_LENGTH, columns=COLUMNS)
