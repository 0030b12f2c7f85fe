"""The vocabulary of results and review items: kinds, actions, statuses, and what each unable code asks for."""

from __future__ import annotations

from enum import StrEnum

from contracts.codes import UnableCode


class ResultKind(StrEnum):
    """What a field outcome is (one typed result each)."""

    READ = "read"  # a hand-held route read
    SKIP = "skip"  # a hand-held route stop with no reading (the skip code says why)
    REREAD = "reread"  # a tablet reread or zero-use check
    SERVICE_CHANGE = "service_change"  # turn-on, turn-off, shut-off, restore, notice delivery
    METER_TEST = "meter_test"
    INVESTIGATION = "investigation"  # leak / high bill, emergency, meter exchange
    THEFT_TAMPER = "theft_tamper"  # theft investigation, a tamper flag on a read, a cut lock found
    UNABLE = "unable"  # a tablet visit that could not be completed
    PAYMENT_ARRANGEMENT = "payment_arrangement"  # a plan the customer offered at the door


class Action(StrEnum):
    """What a review item recommends."""

    ADJUST = "adjust"  # a billing adjustment (computed by server.adjustments, with its working)
    NONE = "none"  # nothing to do: the read stands, the meter is inside its limits
    DISPATCH = "dispatch"  # back to dispatch: a new visit, with the code and a next step
    ARRANGEMENT = "arrangement"  # approve the payment plan offered at the door (pulls the pending shut-off)


class ReviewStatus(StrEnum):
    """Where a review item stands; only `open` items can be decided."""

    OPEN = "open"
    ACCEPTED = "accepted"  # the recommendation was carried out
    CHANGED = "changed"  # an adjustment of another amount or kind was proposed instead
    DISMISSED = "dismissed"  # nothing done, with a reason
    DISPATCHED = "dispatched"  # a new order went to dispatch
    AUTO_CLOSED = "auto_closed"  # a plain in-limits hand-held read: nothing to review, kept for the record


class NextStep(StrEnum):
    """What dispatch should do next with a visit that could not be completed."""

    REVISIT_WITH_APPOINTMENT = "revisit_with_appointment"  # call the customer, book a window
    NOTIFY_CUSTOMER = "notify_customer"  # ask the customer to clear access, then revisit
    ESCALATE = "escalate"  # a supervisor or specialist crew: safety, equipment, tamper
    NONE = "none"  # nothing for dispatch (paid on site, already on/off)


# Each unable / skip code: the next step and the sentence that goes with it (one place for the rule).
NEXT_STEP: dict[UnableCode, tuple[NextStep, str]] = {
    UnableCode.DOG: (NextStep.REVISIT_WITH_APPOINTMENT, "ask the customer to secure the dog; book a window"),
    UnableCode.LOCKED_GATE: (
        NextStep.REVISIT_WITH_APPOINTMENT,
        "book a window with the customer to open the gate",
    ),
    UnableCode.INSIDE_NOBODY_HOME: (NextStep.REVISIT_WITH_APPOINTMENT, "inside meter: book a window"),
    UnableCode.CUSTOMER_NO_SHOW: (
        NextStep.REVISIT_WITH_APPOINTMENT,
        "the customer missed the window: rebook",
    ),
    UnableCode.CUSTOMER_REFUSED: (NextStep.ESCALATE, "customer refused access: a supervisor calls"),
    UnableCode.BURIED_BOX: (NextStep.NOTIFY_CUSTOMER, "ask the customer to uncover the meter box"),
    UnableCode.VEHICLE_OVER_METER: (NextStep.NOTIFY_CUSTOMER, "ask the customer to move the vehicle"),
    UnableCode.OBSTRUCTED: (NextStep.NOTIFY_CUSTOMER, "ask the customer to clear the meter"),
    UnableCode.VEGETATION: (NextStep.NOTIFY_CUSTOMER, "ask the customer to cut back the vegetation"),
    UnableCode.SNOW_ICE: (NextStep.NOTIFY_CUSTOMER, "revisit after the thaw; ask the customer to clear it"),
    UnableCode.BOX_FLOODED: (NextStep.ESCALATE, "flooded box: send a crew with a pump"),
    UnableCode.REGISTER_FOGGED: (NextStep.ESCALATE, "fogged register: send a meter exchange"),
    UnableCode.CANT_LOCATE: (NextStep.ESCALATE, "meter not found: check the records, send a locator"),
    UnableCode.UNSAFE: (NextStep.ESCALATE, "unsafe site: a supervisor decides how to return"),
    UnableCode.METER_NUMBER_MISMATCH: (NextStep.ESCALATE, "meter number differs from the records: verify"),
    UnableCode.DAMAGED_EQUIPMENT: (NextStep.ESCALATE, "damaged meter, module or wire: send a repair"),
    UnableCode.CURB_STOP_INOPERABLE: (NextStep.ESCALATE, "curb stop will not turn: send a valve crew"),
    UnableCode.TAMPER_CUT_LOCK: (NextStep.ESCALATE, "tamper or cut lock: revenue protection"),
    UnableCode.ALREADY_ON_OFF: (NextStep.NONE, "service already in the requested state"),
    UnableCode.PAID_ON_SITE: (NextStep.NONE, "paid on site: the payment pulls the order"),
    UnableCode.MEDICAL_CERTIFICATE_SHOWN: (NextStep.ESCALATE, "medical certificate shown: record the hold"),
    UnableCode.DISPUTE_PENDING: (NextStep.ESCALATE, "dispute pending: record the hold"),
    UnableCode.ARRANGEMENT_OFFERED: (NextStep.NONE, "payment plan offered: an advisor decides"),
}
