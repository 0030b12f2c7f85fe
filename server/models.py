"""Import every feature's models so Base.metadata knows all tables (Alembic and tests use this)."""

from server.accounts.models import (
    Account,
    Balance,
    Customer,
    MoveRequest,
    Payment,
    PaymentArrangement,
    ServicePoint,
    ShutoffHold,
    ShutoffNotice,
)
from server.adjustments.models import Adjustment, Bill, BillLine
from server.audit.models import AuditEvent
from server.auth.models import ApiToken, User
from server.db import Base
from server.dispatch.models import DispatchPlan
from server.handhelds.models import (
    HandheldDevice,
    HandheldSkip,
    HandheldUploadBatch,
    ReadingRoute,
    ReadingRouteStop,
    RouteAssignment,
)
from server.jobs.models import Job
from server.meters.models import Meter, MeterRead
from server.orders.models import (
    GenerationDecision,
    GenerationRun,
    MeterTestRequest,
    NoShutoffDay,
    ShutoffBatch,
    ShutoffExclusion,
    WorkOrder,
)
from server.results.models import CisExportRecord, FieldOutcome, ResultPhoto, ReviewItem
from server.sync.models import FieldResult, OrderPublication, SyncCheckpoint
from server.technicians.models import Technician
from server.web.models import WebSession

__all__ = [
    "Account",
    "Adjustment",
    "ApiToken",
    "AuditEvent",
    "Balance",
    "Base",
    "Bill",
    "BillLine",
    "CisExportRecord",
    "Customer",
    "DispatchPlan",
    "FieldOutcome",
    "FieldResult",
    "GenerationDecision",
    "GenerationRun",
    "HandheldDevice",
    "HandheldSkip",
    "HandheldUploadBatch",
    "Job",
    "Meter",
    "MeterRead",
    "MeterTestRequest",
    "MoveRequest",
    "NoShutoffDay",
    "OrderPublication",
    "Payment",
    "PaymentArrangement",
    "ReadingRoute",
    "ReadingRouteStop",
    "ResultPhoto",
    "ReviewItem",
    "RouteAssignment",
    "ServicePoint",
    "ShutoffBatch",
    "ShutoffExclusion",
    "ShutoffHold",
    "ShutoffNotice",
    "SyncCheckpoint",
    "Technician",
    "User",
    "WebSession",
    "WorkOrder",
]
