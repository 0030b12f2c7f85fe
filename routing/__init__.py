"""Curbstop routing: plain data in, a plan out (``solve(problem, params) -> Plan``)."""

from routing.model import (
    Bottleneck,
    Break,
    BreakSlot,
    IdleCapacity,
    Location,
    Plan,
    Problem,
    Route,
    SolveParams,
    Stop,
    Technician,
    TimeWindow,
    Unassigned,
    UnassignedReason,
    Visit,
)
from routing.replan import EmergencyInsertion, TechnicianState, insert_emergency, replan
from routing.solver import solve, travel_matrix
from routing.travel import EuclideanTravel, HaversineTravel, OsrmError, OsrmTravel, TravelTimeSource

__all__ = [
    "Bottleneck",
    "Break",
    "BreakSlot",
    "EmergencyInsertion",
    "EuclideanTravel",
    "HaversineTravel",
    "IdleCapacity",
    "Location",
    "OsrmError",
    "OsrmTravel",
    "Plan",
    "Problem",
    "Route",
    "SolveParams",
    "Stop",
    "Technician",
    "TechnicianState",
    "TimeWindow",
    "TravelTimeSource",
    "Unassigned",
    "UnassignedReason",
    "Visit",
    "insert_emergency",
    "replan",
    "solve",
    "travel_matrix",
]
