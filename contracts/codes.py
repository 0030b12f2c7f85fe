"""Shared vocabulary: order types, lifecycle states, field codes, roles and skills.

One place for each code (house rule 4). Server, field app and device bridge import these; the
string values are what goes over the wire and into the database, so never rename a value.
"""

from __future__ import annotations

from enum import StrEnum


class OrderType(StrEnum):
    """What the CSFR is sent to do."""

    TURN_ON = "turn_on"  # move-in: open the curb stop, initial read
    TURN_OFF = "turn_off"  # move-out: final read, close the curb stop
    SHUT_OFF_NONPAY = "shut_off_nonpay"  # cut for non-payment: read, lock, seal, door hanger
    RESTORE = "restore"  # reconnect after payment
    NOTICE_DELIVERY = "notice_delivery"  # 48-hour door-hanger notice before a cut
    REREAD = "reread"
    ZERO_USE_CHECK = "zero_use_check"
    LEAK_INVESTIGATION = "leak_investigation"  # also high-bill investigations
    METER_TEST = "meter_test"
    METER_EXCHANGE = "meter_exchange"  # change-out after a failed test
    THEFT_INVESTIGATION = "theft_investigation"  # use on a shut-off or locked account
    EMERGENCY = "emergency"


class OrderStatus(StrEnum):
    """Work-order lifecycle; see ORDER_TRANSITIONS for the legal moves."""

    NEW = "new"
    SCHEDULED = "scheduled"
    ASSIGNED = "assigned"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    COMPLETED = "completed"
    UNABLE_TO_COMPLETE = "unable_to_complete"
    CANCELLED = "cancelled"


OPEN_STATUSES: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.SCHEDULED,
        OrderStatus.ASSIGNED,
        OrderStatus.DISPATCHED,
        OrderStatus.EN_ROUTE,
        OrderStatus.ON_SITE,
    }
)
CLOSED_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.COMPLETED, OrderStatus.UNABLE_TO_COMPLETE, OrderStatus.CANCELLED}
)

# The forward path, plus: cancel from any open state; a dispatcher may pull an order back from
# scheduled/assigned/dispatched to new (re-plan); unable_to_complete may be re-opened as new
# ("goes back to dispatch").
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.SCHEDULED, OrderStatus.ASSIGNED, OrderStatus.CANCELLED}),
    OrderStatus.SCHEDULED: frozenset({OrderStatus.ASSIGNED, OrderStatus.NEW, OrderStatus.CANCELLED}),
    OrderStatus.ASSIGNED: frozenset(
        {OrderStatus.DISPATCHED, OrderStatus.SCHEDULED, OrderStatus.NEW, OrderStatus.CANCELLED}
    ),
    OrderStatus.DISPATCHED: frozenset(
        {
            OrderStatus.EN_ROUTE,
            OrderStatus.ON_SITE,
            OrderStatus.COMPLETED,
            OrderStatus.UNABLE_TO_COMPLETE,
            OrderStatus.ASSIGNED,
            OrderStatus.NEW,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.EN_ROUTE: frozenset(
        {OrderStatus.ON_SITE, OrderStatus.COMPLETED, OrderStatus.UNABLE_TO_COMPLETE, OrderStatus.CANCELLED}
    ),
    OrderStatus.ON_SITE: frozenset(
        {OrderStatus.COMPLETED, OrderStatus.UNABLE_TO_COMPLETE, OrderStatus.CANCELLED}
    ),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.UNABLE_TO_COMPLETE: frozenset({OrderStatus.NEW}),
    OrderStatus.CANCELLED: frozenset(),
}


def transition_error(current: OrderStatus, target: OrderStatus) -> str | None:
    """Return why current -> target is illegal, or None when it is allowed."""
    if target in ORDER_TRANSITIONS[current]:
        return None
    if current in CLOSED_STATUSES and current is not OrderStatus.UNABLE_TO_COMPLETE:
        return f"order is {current.value}; a closed order cannot move to {target.value}"
    allowed = ", ".join(sorted(s.value for s in ORDER_TRANSITIONS[current])) or "nothing"
    return f"cannot move an order from {current.value} to {target.value}; from {current.value} it may go to: {allowed}"


class Priority(StrEnum):
    """Dispatch priority classes, highest first (routing weights them; configurable)."""

    EMERGENCY = "emergency"
    RESTORE = "restore"  # restore and turn-on: a customer is without water
    SHUT_OFF = "shut_off"
    INVESTIGATION = "investigation"
    REREAD = "reread"
    METER_TEST = "meter_test"


PRIORITY_RANK: dict[Priority, int] = {p: i for i, p in enumerate(Priority)}  # 0 = most urgent

DEFAULT_PRIORITY: dict[OrderType, Priority] = {
    OrderType.EMERGENCY: Priority.EMERGENCY,
    OrderType.RESTORE: Priority.RESTORE,
    OrderType.TURN_ON: Priority.RESTORE,
    OrderType.TURN_OFF: Priority.SHUT_OFF,
    OrderType.SHUT_OFF_NONPAY: Priority.SHUT_OFF,
    OrderType.NOTICE_DELIVERY: Priority.SHUT_OFF,
    OrderType.LEAK_INVESTIGATION: Priority.INVESTIGATION,
    OrderType.THEFT_INVESTIGATION: Priority.INVESTIGATION,
    OrderType.ZERO_USE_CHECK: Priority.REREAD,
    OrderType.REREAD: Priority.REREAD,
    OrderType.METER_TEST: Priority.METER_TEST,
    OrderType.METER_EXCHANGE: Priority.METER_TEST,
}


class Skill(StrEnum):
    """What a technician is qualified for; orders require a set of these."""

    READ = "read"  # reading and rereads
    TURN_ON_OFF = "turn_on_off"  # operate curb stops, lock and seal
    METER_TEST = "meter_test"  # field accuracy test rig
    METER_EXCHANGE = "meter_exchange"  # change-out, larger meters
    INVESTIGATION = "investigation"  # leak, high-bill, theft
    EMERGENCY = "emergency"


DEFAULT_SKILLS: dict[OrderType, frozenset[Skill]] = {
    OrderType.TURN_ON: frozenset({Skill.TURN_ON_OFF}),
    OrderType.TURN_OFF: frozenset({Skill.TURN_ON_OFF}),
    OrderType.SHUT_OFF_NONPAY: frozenset({Skill.TURN_ON_OFF}),
    OrderType.RESTORE: frozenset({Skill.TURN_ON_OFF}),
    OrderType.NOTICE_DELIVERY: frozenset(),
    OrderType.REREAD: frozenset({Skill.READ}),
    OrderType.ZERO_USE_CHECK: frozenset({Skill.READ}),
    OrderType.LEAK_INVESTIGATION: frozenset({Skill.INVESTIGATION}),
    OrderType.THEFT_INVESTIGATION: frozenset({Skill.INVESTIGATION}),
    OrderType.METER_TEST: frozenset({Skill.METER_TEST}),
    OrderType.METER_EXCHANGE: frozenset({Skill.METER_EXCHANGE}),
    OrderType.EMERGENCY: frozenset({Skill.EMERGENCY}),
}

# Default on-site minutes by order type (a policy setting can override).
DEFAULT_SERVICE_MIN: dict[OrderType, int] = {
    OrderType.TURN_ON: 15,
    OrderType.TURN_OFF: 15,
    OrderType.SHUT_OFF_NONPAY: 20,
    OrderType.RESTORE: 15,
    OrderType.NOTICE_DELIVERY: 5,
    OrderType.REREAD: 8,
    OrderType.ZERO_USE_CHECK: 12,
    OrderType.LEAK_INVESTIGATION: 30,
    OrderType.THEFT_INVESTIGATION: 30,
    OrderType.METER_TEST: 45,
    OrderType.METER_EXCHANGE: 60,
    OrderType.EMERGENCY: 45,
}


class UnableCode(StrEnum):
    """Why a field visit could not be completed (DOMAIN.md, 'Order types and codes')."""

    DOG = "dog"
    LOCKED_GATE = "locked_gate"
    BURIED_BOX = "buried_box"
    VEHICLE_OVER_METER = "vehicle_over_meter"
    OBSTRUCTED = "obstructed"
    VEGETATION = "vegetation"
    CANT_LOCATE = "cant_locate"
    BOX_FLOODED = "box_flooded"
    REGISTER_FOGGED = "register_fogged"
    INSIDE_NOBODY_HOME = "inside_nobody_home"
    CUSTOMER_REFUSED = "customer_refused"
    UNSAFE = "unsafe"
    SNOW_ICE = "snow_ice"
    METER_NUMBER_MISMATCH = "meter_number_mismatch"
    DAMAGED_EQUIPMENT = "damaged_equipment"
    CURB_STOP_INOPERABLE = "curb_stop_inoperable"
    TAMPER_CUT_LOCK = "tamper_cut_lock"
    ALREADY_ON_OFF = "already_on_off"
    PAID_ON_SITE = "paid_on_site"
    MEDICAL_CERTIFICATE_SHOWN = "medical_certificate_shown"
    DISPUTE_PENDING = "dispute_pending"
    CUSTOMER_NO_SHOW = "customer_no_show"
    # The customer offered a payment plan at the door instead of the cut: the result carries the
    # payment-arrangement form (contracts.forms.PaymentArrangementFields) for an advisor to approve.
    ARRANGEMENT_OFFERED = "arrangement_offered"


class ReadSource(StrEnum):
    """Where a meter read came from."""

    CIS = "cis"  # imported from the billing system
    HANDHELD = "handheld"  # uploaded from a hand-held via a docking station
    FIELD = "field"  # entered on the tablet while working an order
    AMR = "amr"  # drive-by / fixed network radio
    ESTIMATE = "estimate"
    CUSTOMER = "customer"


class ReadCode(StrEnum):
    """Reader comment / trouble codes that travel with a read."""

    NONE = ""
    REREAD_REQUESTED = "reread_requested"  # the reader asks for a reread
    TAMPER = "tamper"
    LEAK_SUSPECTED = "leak_suspected"
    CONTINUOUS_FLOW = "continuous_flow"  # radio module's continuous-flow flag
    REVERSE_FLOW = "reverse_flow"
    DIAL_DAMAGED = "dial_damaged"
    CANT_READ = "cant_read"
    ESTIMATED = "estimated"


class Role(StrEnum):
    """Who a caller is; every endpoint names the roles it admits."""

    DISPATCHER = "dispatcher"
    CSFR = "csfr"
    ADVISOR = "advisor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    STATION = "station"


class VolumeUnit(StrEnum):
    """Units a register counts in; volumes always travel with one."""

    GALLON = "gal"
    CUBIC_FOOT = "cf"
    HUNDRED_CUBIC_FEET = "ccf"
    CUBIC_METRE = "m3"


# Gallons per unit, for normalising volumes when comparing across meters.
GALLONS_PER_UNIT: dict[VolumeUnit, float] = {
    VolumeUnit.GALLON: 1.0,
    VolumeUnit.CUBIC_FOOT: 7.48052,
    VolumeUnit.HUNDRED_CUBIC_FEET: 748.052,
    VolumeUnit.CUBIC_METRE: 264.172,
}
