"""Generated orders for a demo day, the UI tests and the benchmark (deterministic for a seed)."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from contracts.codes import DEFAULT_PRIORITY, OrderStatus, OrderType
from contracts.couch import GeoPoint, MeterFacts, OrderDoc, ServicePointFacts, TimeWindow
from mobile.core.localtime import UTC

STREETS = ("Main St", "Oak Ave", "Cedar Rd", "Lakeview Dr", "Mill St", "Hillcrest Blvd", "Elm Ct", "River Rd")
NAMES = ("J. Alvarez", "M. Chen", "P. Okafor", "S. Novak", "R. Patel", "L. Moreau", "K. Yamada", "D. Brooks")
SIZES = ("5/8x3/4", "3/4", "1", "1 1/2", "2")
CYCLE = (
    OrderType.REREAD,
    OrderType.TURN_ON,
    OrderType.TURN_OFF,
    OrderType.SHUT_OFF_NONPAY,
    OrderType.RESTORE,
    OrderType.METER_TEST,
    OrderType.LEAK_INVESTIGATION,
)
REASONS = {
    OrderType.REREAD: "Read 41% above the seasonal high limit",
    OrderType.TURN_ON: "Move-in: new customer from 8 am",
    OrderType.TURN_OFF: "Move-out: final read requested",
    OrderType.SHUT_OFF_NONPAY: "60 days delinquent; 48-hour notice delivered",
    OrderType.RESTORE: "Paid in full at the office",
    OrderType.METER_TEST: "Customer dispute: meter accuracy test",
    OrderType.LEAK_INVESTIGATION: "High bill: use 3x the 3-year average",
}


def demo_orders(
    count: int,
    *,
    csfr_id: str = "T05",
    day: dt.date | None = None,
    zone: ZoneInfo = UTC,
    seed: int = 7,
    centre: tuple[float, float] = (39.7817, -89.6501),
) -> list[OrderDoc]:
    """`count` dispatched orders in route order around `centre`, windows from 08:00 through `day`
    (default: today) in the utility's `zone`; times are written in UTC, as the server publishes them."""
    rng = random.Random(seed)
    day = day or dt.datetime.now(zone).date()
    start = dt.datetime.combine(day, dt.time(8, 0), tzinfo=zone).astimezone(dt.UTC)
    orders = []
    lat, lon = centre
    for i in range(count):
        order_type = CYCLE[i % len(CYCLE)]
        lat += rng.uniform(-0.006, 0.006)
        lon += rng.uniform(-0.006, 0.008)
        last = float(rng.randint(1000, 90000))
        arrival = start + dt.timedelta(minutes=int(i * max(480 / max(count, 1), 2)))
        window_start = arrival.replace(minute=0)
        hazards = []
        access = "Meter in front yard, left of driveway"
        if i % 5 == 2:
            hazards.append("dog")
            access = "Dog in back yard; gate code 4512"
        if i % 9 == 4:
            hazards.append("locked gate")
        orders.append(
            OrderDoc(
                order_id=f"O{1000 + i}",
                order_type=order_type,
                status=OrderStatus.DISPATCHED,
                priority=DEFAULT_PRIORITY[order_type],
                csfr_id=csfr_id,
                window=TimeWindow(start_at=window_start, end_at=window_start + dt.timedelta(hours=2)),
                planned_arrival_at=arrival,
                sequence=i,
                account_id=f"A{200000 + i}",
                customer_name=NAMES[i % len(NAMES)],
                service_point=ServicePointFacts(
                    service_point_id=f"SP{5000 + i}",
                    address=f"{100 + 7 * i} {STREETS[i % len(STREETS)]}",
                    position=GeoPoint(lat=lat, lon=lon),
                    curb_stop_location="Parkway, 2 ft from sidewalk",
                ),
                meters=[
                    MeterFacts.model_validate(
                        {
                            "meter_id": f"M{70000 + i}",
                            "serial_number": f"SN{880000 + i}",
                            "size_in": SIZES[i % len(SIZES)]
                            if order_type is OrderType.METER_TEST
                            else "5/8x3/4",
                            "dials": 6,
                            "location": "Front yard pit",
                            "last_read": last,
                            "last_read_at": (start - dt.timedelta(days=30)).isoformat(),
                            "expected_low": last + 500,
                            "expected_high": last + 9000,
                            "last_reads": [
                                {
                                    "value": last,
                                    "read_at": (start - dt.timedelta(days=30)).date().isoformat(),
                                },
                                {
                                    "value": last - 4200,
                                    "read_at": (start - dt.timedelta(days=60)).date().isoformat(),
                                },
                            ],
                        }
                    )
                ],
                access_notes=access,
                hazards=hazards,
                reason=REASONS[order_type],
                version=1,
                published_at=start - dt.timedelta(hours=1),
            )
        )
    return orders
