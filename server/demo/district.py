"""A generated demo district, written as a CIS extract so the demo runs through the real import.

The district is a street grid around a yard: avenues run north-south every 200 m, streets east-west
every 100 m, with eight 25 m lots on each side of every block. Accounts get 24 months of monthly
reads with a summer peak; a few have leaks (use several times the norm lately), stuck meters (zero use
while occupied), registers about to roll over, estimated reads; some are delinquent with notices
served, some on payment plans or medical holds; a few are already shut off, some of those still using
water. Everything is drawn from one seeded RNG, so the same seed gives the same district.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

YARD_LAT, YARD_LON = 38.5816, -121.4944  # the utility's yard, in the middle of the grid
M_PER_DEG_LAT = 111_320.0
AVENUES = [
    "Alder",
    "Birch",
    "Cedar",
    "Dogwood",
    "Elm",
    "Fir",
    "Ginkgo",
    "Hawthorn",
    "Ironwood",
    "Juniper",
    "Kapok",
    "Laurel",
    "Maple",
    "Nutmeg",
    "Oak",
    "Pine",
    "Quince",
    "Redwood",
    "Spruce",
    "Tamarack",
    "Umbrella",
    "Valley Oak",
    "Walnut",
    "Xylosma",
    "Yew",
    "Zelkova",
]
STREET_SUFFIX = ("th", "st", "nd", "rd")
FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Eva",
    "Femi",
    "Gus",
    "Hana",
    "Ivan",
    "Jo",
    "Kai",
    "Lena",
    "Marco",
    "Nia",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vic",
    "Wen",
    "Xavi",
    "Yara",
    "Zoe",
]
LAST = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ito",
    "Jones",
    "Khan",
    "Lopez",
    "Moreno",
    "Nguyen",
    "Okafor",
    "Patel",
    "Quiroga",
    "Reyes",
    "Smith",
    "Tanaka",
    "Usman",
    "Vargas",
    "Walker",
    "Xu",
    "Young",
    "Zhang",
]

# (size, share of premises, dials, unit, multiplier, base monthly use in gallons)
METER_MIX = [
    ("5/8", 0.82, 6, "gal", 1, 5_500),
    ("3/4", 0.09, 6, "gal", 1, 8_000),
    ("1", 0.05, 5, "cf", 1, 14_000),
    ("1-1/2", 0.025, 5, "cf", 10, 40_000),
    ("2", 0.015, 6, "cf", 10, 90_000),
]
GAL_PER_CF = 7.48052
TEST_INTERVAL_YEARS = {"5/8": 10, "3/4": 10, "1": 8, "1-1/2": 4, "2": 4}


@dataclass(frozen=True)
class DemoTechnician:
    """A CSFR of the demo crew."""

    code: str
    name: str
    skills: tuple[str, ...]
    shift_start: dt.time
    shift_end: dt.time


CREW = [
    DemoTechnician(
        "T01",
        "Rosa Alvarez",
        ("read", "turn_on_off", "emergency", "investigation"),
        dt.time(7),
        dt.time(15, 30),
    ),
    DemoTechnician("T02", "Ben Okafor", ("read", "turn_on_off"), dt.time(7), dt.time(15, 30)),
    DemoTechnician("T03", "Hana Ito", ("read", "turn_on_off"), dt.time(7, 30), dt.time(16)),
    DemoTechnician(
        "T04", "Marco Reyes", ("read", "meter_test", "meter_exchange"), dt.time(7), dt.time(15, 30)
    ),
    DemoTechnician("T05", "Nia Walker", ("read",), dt.time(6, 30), dt.time(15)),
    DemoTechnician("T06", "Omar Khan", ("read",), dt.time(6, 30), dt.time(15)),
    DemoTechnician("T07", "Lena Fischer", ("read", "investigation"), dt.time(8), dt.time(16, 30)),
    DemoTechnician("T08", "Dev Patel", ("read", "turn_on_off", "investigation"), dt.time(8), dt.time(16, 30)),
    DemoTechnician("T09", "Tara Nguyen", ("read", "meter_test"), dt.time(7, 30), dt.time(16)),
    DemoTechnician(
        "T10",
        "Gus Brooks",
        ("read", "turn_on_off", "meter_exchange", "emergency"),
        dt.time(9),
        dt.time(17, 30),
    ),
    DemoTechnician("T11", "Yara Chen", ("read", "turn_on_off"), dt.time(9), dt.time(17, 30)),
    DemoTechnician(
        "T12", "Ivan Moreno", ("read", "investigation", "meter_test"), dt.time(7), dt.time(15, 30)
    ),
]


@dataclass
class DistrictSummary:
    """What was generated, for the demo's closing message and for tests."""

    accounts: int = 0
    reads: int = 0
    leaks: int = 0
    stuck: int = 0
    rollovers: int = 0
    delinquent: int = 0
    shut_off: int = 0
    move_requests: int = 0
    files: list[Path] = field(default_factory=list)


def _offset(lat_m: float, lon_m: float) -> tuple[float, float]:
    """Metres north/east of the yard to (lat, lon)."""
    lat = YARD_LAT + lat_m / M_PER_DEG_LAT
    lon = YARD_LON + lon_m / (M_PER_DEG_LAT * math.cos(math.radians(YARD_LAT)))
    return round(lat, 6), round(lon, 6)


def _street_name(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix} St"


def _months_back(today: dt.date, count: int) -> list[tuple[int, int]]:
    """(year, month) for the `count` months ending last month, oldest first."""
    year, month = today.year, today.month
    out = []
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append((year, month))
    return out[::-1]


def generate(
    out_dir: Path,
    *,
    accounts: int = 5_000,
    months: int = 24,
    seed: int = 7,
    today: dt.date | None = None,
    zone: ZoneInfo | None = None,
    progress: Callable[[int], None] | None = None,
) -> DistrictSummary:
    """Write a district's CIS extract into `out_dir` and return what it holds."""
    rng = random.Random(seed)
    today = today or dt.date.today()
    zone = zone or ZoneInfo("America/Los_Angeles")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = DistrictSummary(accounts=accounts)
    lots_per_block_side = 8
    blocks = math.ceil(accounts / (2 * lots_per_block_side))
    grid = math.ceil(math.sqrt(blocks * 2))  # avenues are twice as far apart as streets
    n_avenues = max(2, grid // 2 + 1)
    n_streets = max(2, math.ceil(blocks / (n_avenues - 1)))
    month_list = _months_back(today, months)

    files = {
        name: (out_dir / name).open("w", newline="")
        for name in (
            "service_points.csv",
            "accounts.csv",
            "meters.csv",
            "reads.csv",
            "balances.csv",
            "payments.csv",
            "arrangements.csv",
            "holds.csv",
            "notices.csv",
            "move_requests.csv",
        )
    }
    writers = {name: csv.writer(f) for name, f in files.items()}
    writers["service_points.csv"].writerow(
        [
            "service_point_id",
            "address",
            "city",
            "postal_code",
            "lat",
            "lon",
            "access_notes",
            "hazards",
            "service_area",
            "route",
        ]
    )
    writers["accounts.csv"].writerow(
        [
            "account_number",
            "customer_id",
            "customer_name",
            "phone",
            "low_income",
            "service_point_id",
            "status",
            "occupied",
            "service_class",
            "billing_cycle",
            "opened_date",
        ]
    )
    writers["meters.csv"].writerow(
        [
            "serial",
            "service_point_id",
            "size",
            "make",
            "model",
            "dials",
            "multiplier",
            "unit",
            "radio_id",
            "install_date",
            "last_test_date",
        ]
    )
    writers["reads.csv"].writerow(["meter_serial", "read_at", "reading", "source", "read_code", "estimated"])
    writers["balances.csv"].writerow(
        ["account_number", "balance", "past_due", "oldest_past_due_date", "as_of"]
    )
    writers["payments.csv"].writerow(["payment_id", "account_number", "amount", "paid_at", "method"])
    writers["arrangements.csv"].writerow(
        ["arrangement_id", "account_number", "status", "made_date", "end_date", "total", "down_payment"]
    )
    writers["holds.csv"].writerow(["hold_id", "account_number", "kind", "start_date", "end_date", "note"])
    writers["notices.csv"].writerow(["notice_id", "account_number", "kind", "served_at"])
    writers["move_requests.csv"].writerow(
        ["request_id", "service_point_id", "account_number", "kind", "requested_date", "customer_name"]
    )

    made = 0
    try:
        for s in range(n_streets):
            for a in range(n_avenues - 1):
                for side in (0, 1):
                    for lot in range(lots_per_block_side):
                        if made >= accounts:
                            break
                        made += 1
                        _one_premise(
                            rng,
                            writers,
                            made,
                            s,
                            a,
                            side,
                            lot,
                            n_streets,
                            n_avenues,
                            month_list,
                            today,
                            zone,
                            summary,
                        )
                        if progress and made % 500 == 0:
                            progress(500)
        if progress:
            progress(made % 500)
        _move_requests(rng, writers, accounts, today, summary)
    finally:
        for f in files.values():
            f.close()
    summary.files = [out_dir / name for name in files]
    summary.files += write_bills(out_dir, seed=seed)
    return summary


def _one_premise(
    rng, writers, n, s, a, side, lot, n_streets, n_avenues, month_list, today, zone, summary
) -> None:
    sp_id = f"SP{n:07d}"
    acct = f"{100000000 + n * 7}"
    north_m = (s - n_streets / 2) * 100 + (12 if side else -12)
    east_m = (a - (n_avenues - 1) / 2) * 200 + 12 + lot * 25
    lat, lon = _offset(north_m, east_m)
    house = (a + 1) * 100 + lot * 2 + side
    address = f"{house} {_street_name(s + 1)}"
    area = ("N" if north_m >= 0 else "S") + ("E" if east_m >= 0 else "W")
    hazards = []
    notes = ""
    roll = rng.random()
    if roll < 0.06:
        hazards.append("dog")
        notes = "Dog in yard; call ahead."
    elif roll < 0.09:
        hazards.append("locked_gate")
        notes = f"Gate code {rng.randint(1000, 9999)}."
    elif roll < 0.10:
        hazards.append("meter_under_vehicle")
    if rng.random() < 0.15:
        notes = (notes + " Meter box at left of driveway.").strip()
    writers["service_points.csv"].writerow(
        [sp_id, address, "Riverside", "95814", lat, lon, notes, ";".join(hazards), area, f"R{s + 1:03d}"]
    )

    size, _, dials, unit, mult, base_gal = _pick_meter(rng)
    serial = f"{rng.choice('NSBE')}{70000000 + n * 13}"
    install = today - dt.timedelta(days=rng.randint(200, 365 * 18))
    interval = TEST_INTERVAL_YEARS[size]
    last_test = (
        install
        if rng.random() < 0.7
        else install + dt.timedelta(days=rng.randint(0, max(1, (today - install).days)))
    )
    writers["meters.csv"].writerow(
        [
            serial,
            sp_id,
            size,
            rng.choice(["Neptune", "Sensus", "Badger", "Itron"]),
            "T-10",
            dials,
            mult,
            unit,
            f"MXU{n:08d}",
            install.isoformat(),
            last_test.isoformat(),
        ]
    )
    del interval

    # Who lives here and how they pay.
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    occupied = rng.random() > 0.03
    status = "active"
    kind = rng.random()
    leak = stuck = shutoff_using = False
    if kind < 0.015:
        leak = True
        summary.leaks += 1
    elif kind < 0.025:
        stuck = True
        summary.stuck += 1
    shut_off = rng.random() < 0.006
    if shut_off:
        status = "shut_off"
        summary.shut_off += 1
        shutoff_using = rng.random() < 0.4
    cycle = rng.randint(1, 20)
    writers["accounts.csv"].writerow(
        [
            acct,
            f"C{n:07d}",
            name,
            f"916-555-{n % 10000:04d}",
            "yes" if rng.random() < 0.12 else "no",
            sp_id,
            status,
            "yes" if occupied else "no",
            "commercial" if size in ("1-1/2", "2") else "residential",
            f"{cycle:02d}",
            (today - dt.timedelta(days=rng.randint(400, 6000))).isoformat(),
        ]
    )

    # Reads: monthly on the cycle day, summer peak, in the meter's own unit.
    per_unit = GAL_PER_CF if unit == "cf" else 1.0
    top = 10**dials
    base = base_gal * rng.lognormvariate(0, 0.35) * (1 if occupied else 0.02)
    reading_units = rng.uniform(0, top * 0.6)
    if rng.random() < 0.02:
        reading_units = top - base / per_unit / mult * rng.uniform(3, 12)  # will roll over in the window
        summary.rollovers += 1
    last_two = len(month_list) - 2
    est_prev = False
    bill_cents = 0
    for i, (year, month) in enumerate(month_list):
        season = 1 + 0.45 * math.sin((month - 4) / 12 * 2 * math.pi)  # peak in July
        use_gal = max(0.0, base * season * rng.lognormvariate(0, 0.12))
        if leak and i >= last_two - 1:
            use_gal *= rng.uniform(3, 5)
        if stuck and i >= last_two:
            use_gal = 0.0
        if shut_off and i >= last_two and not shutoff_using:
            use_gal = 0.0
        use_units = use_gal / per_unit / mult
        reading_units = (reading_units + use_units) % top
        estimated = not est_prev and rng.random() < 0.015
        est_prev = estimated
        code = "reread_requested" if rng.random() < 0.002 else ""
        day = min(cycle + 7, 28)
        local = dt.datetime(year, month, day, rng.randint(8, 14), rng.randint(0, 59), tzinfo=zone)
        writers["reads.csv"].writerow(
            [
                serial,
                local.isoformat(timespec="minutes"),
                f"{math.floor(reading_units)}",
                "cis",
                code,
                "yes" if estimated else "no",
            ]
        )
        summary.reads += 1
        bill_cents = int(1800 + use_gal * 0.55)  # $18 service charge + $5.50 per 1,000 gal

    # Money.
    delinquent = status == "active" and rng.random() < 0.05
    past_due = 0
    oldest = ""
    if delinquent or shut_off:
        summary.delinquent += delinquent
        days = rng.randint(35, 130)
        past_due = bill_cents * max(1, days // 30)
        oldest = (today - dt.timedelta(days=days)).isoformat()
        if days >= 45:
            # Notices at every stage of the pipeline: some written notices still running their
            # business days, most past them; final notices just posted (48 hours not over) or posted
            # days ago, so a working day has a real shut-off list as well as accounts held back.
            served = dt.datetime.combine(
                today - dt.timedelta(days=rng.randint(3, 28)), dt.time(10), tzinfo=zone
            )
            writers["notices.csv"].writerow([f"N{n:07d}W", acct, "written", served.isoformat()])
            if rng.random() < 0.8:
                final = dt.datetime.combine(
                    today - dt.timedelta(days=rng.choice((0, 1, 2, 3, 4, 5))), dt.time(11), tzinfo=zone
                )
                writers["notices.csv"].writerow([f"N{n:07d}F", acct, "final", final.isoformat()])
        if rng.random() < 0.15:
            writers["arrangements.csv"].writerow(
                [
                    f"PA{n:07d}",
                    acct,
                    "active",
                    (today - dt.timedelta(days=rng.randint(0, 20))).isoformat(),
                    (today + dt.timedelta(days=120)).isoformat(),
                    f"{past_due / 100:.2f}",
                    f"{past_due / 300:.2f}",
                ]
            )
        if rng.random() < 0.06:
            writers["holds.csv"].writerow(
                [
                    f"H{n:07d}",
                    acct,
                    "medical_certificate",
                    (today - dt.timedelta(days=10)).isoformat(),
                    (today + dt.timedelta(days=80)).isoformat(),
                    "Primary-care provider certificate on file",
                ]
            )
        elif rng.random() < 0.05:
            writers["holds.csv"].writerow(
                [
                    f"H{n:07d}",
                    acct,
                    "dispute",
                    (today - dt.timedelta(days=5)).isoformat(),
                    "",
                    "Bill dispute pending",
                ]
            )
    balance = bill_cents + past_due
    as_of = dt.datetime.combine(today, dt.time(6), tzinfo=zone)
    writers["balances.csv"].writerow(
        [acct, f"{balance / 100:.2f}", f"{past_due / 100:.2f}", oldest, as_of.isoformat()]
    )
    if not delinquent and not shut_off:
        for k in (1, 2):
            paid = dt.datetime.combine(
                today - dt.timedelta(days=30 * k - rng.randint(0, 9)), dt.time(12), tzinfo=zone
            )
            writers["payments.csv"].writerow(
                [f"P{n:07d}{k}", acct, f"{bill_cents / 100:.2f}", paid.isoformat(), "ach"]
            )


def write_bills(out_dir: Path, *, seed: int = 7) -> list[Path]:
    """Bill every meter of the extract in `out_dir` from its reads (one bill between each two reads) by the
    built-in rate schedule; write bills.csv and bill_lines.csv there. A few bills carry a late fee."""
    import itertools
    from fractions import Fraction

    from server.adjustments.rates import load_rates
    from server.adjustments.rating import rate_period

    book = load_rates()
    rng = random.Random(seed + 16)
    with (out_dir / "accounts.csv").open(newline="") as f:
        account_at = {
            r["service_point_id"]: (r["account_number"], r["service_class"]) for r in csv.DictReader(f)
        }
    with (out_dir / "meters.csv").open(newline="") as f:
        meters = {r["serial"]: r for r in csv.DictReader(f)}
    reads: dict[str, list[dict[str, str]]] = {}
    with (out_dir / "reads.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            reads.setdefault(r["meter_serial"], []).append(r)
    bills_path, lines_path = out_dir / "bills.csv", out_dir / "bill_lines.csv"
    with bills_path.open("w", newline="") as bf, lines_path.open("w", newline="") as lf:
        bills, lines = csv.writer(bf), csv.writer(lf)
        bills.writerow(
            [
                "bill_id",
                "account_number",
                "meter_serial",
                "period_start",
                "period_end",
                "start_read_at",
                "start_reading",
                "end_read_at",
                "end_reading",
                "consumption",
                "unit",
                "estimated",
                "total",
            ]
        )
        lines.writerow(["bill_id", "component", "amount", "quantity"])
        for serial, meter in meters.items():
            account = account_at.get(meter["service_point_id"])
            if account is None:
                continue
            number, service_class = account
            top, mult = 10 ** int(meter["dials"]), int(meter["multiplier"])
            history = reads.get(serial, [])
            for before, after in itertools.pairwise(history):
                start = dt.datetime.fromisoformat(before["read_at"]).date()
                end = dt.datetime.fromisoformat(after["read_at"]).date()
                use = (Fraction(after["reading"]) - Fraction(before["reading"])) % top * mult
                rated = rate_period(
                    book,
                    customer_class=service_class,
                    meter_size=meter["size"],
                    start=start,
                    end=end,
                    consumption=use,
                    unit=meter["unit"],
                )
                bill_id = f"BL{number}-{end:%Y%m}"
                charges = rated.by_component()
                if rng.random() < 0.03:
                    charges["late_fee"] = 1000
                total = sum(charges.values())
                bills.writerow(
                    [
                        bill_id,
                        number,
                        serial,
                        start.isoformat(),
                        end.isoformat(),
                        before["read_at"],
                        before["reading"],
                        after["read_at"],
                        after["reading"],
                        str(use),
                        meter["unit"],
                        after["estimated"],
                        f"{total / 100:.2f}",
                    ]
                )
                quantities: dict[str, Fraction] = {}
                for line in rated.lines:
                    if line.component != "fixed":
                        quantities[line.component] = (
                            quantities.get(line.component, Fraction(0)) + line.quantity
                        )
                for component, cents in charges.items():
                    quantity = quantities.get(component)
                    shown = "" if quantity is None else f"{float(quantity):.4f}"
                    lines.writerow([bill_id, component, f"{cents / 100:.2f}", shown])
    return [bills_path, lines_path]


def _pick_meter(rng: random.Random) -> tuple[str, float, int, str, int, int]:
    roll = rng.random()
    acc = 0.0
    for spec in METER_MIX:
        acc += spec[1]
        if roll < acc:
            return spec
    return METER_MIX[0]


def _move_requests(rng, writers, accounts, today, summary) -> None:
    count = max(4, accounts // 200)
    for i in range(count):
        n = rng.randint(1, accounts)
        kind = "move_in" if i % 2 == 0 else "move_out"
        when = today + dt.timedelta(days=rng.randint(0, 4))
        writers["move_requests.csv"].writerow(
            [
                f"MR{i + 1:06d}",
                f"SP{n:07d}",
                f"{100000000 + n * 7}" if kind == "move_out" else "",
                kind,
                when.isoformat(),
                f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            ]
        )
        summary.move_requests += 1
