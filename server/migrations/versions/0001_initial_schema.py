"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", server.db.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_entity", ["entity_type", "entity_id"], unique=False)

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_customer_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=120), nullable=False),
        sa.Column("mailing_address", sa.String(length=200), nullable=False),
        sa.Column("low_income", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("cis_customer_id", name=op.f("uq_customers_cis_customer_id")),
    )
    op.create_table(
        "service_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_service_point_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=80), nullable=False),
        sa.Column("postal_code", sa.String(length=16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("access_notes", sa.Text(), nullable=False),
        sa.Column("hazards", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("service_area", sa.String(length=32), nullable=False),
        sa.Column("route", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_points")),
        sa.UniqueConstraint("cis_service_point_id", name=op.f("uq_service_points_cis_service_point_id")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("authority_limit_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_number", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("service_point_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occupied", sa.Boolean(), nullable=False),
        sa.Column("service_class", sa.String(length=16), nullable=False),
        sa.Column("billing_cycle", sa.String(length=8), nullable=False),
        sa.Column("opened_date", sa.Date(), nullable=True),
        sa.Column("closed_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_accounts_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["service_points.id"],
            name=op.f("fk_accounts_service_point_id_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("account_number", name=op.f("uq_accounts_account_number")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_service_point_id"), ["service_point_id"], unique=False)
        batch_op.create_index("ix_accounts_status", ["status"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", server.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", server.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "meters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("service_point_id", sa.Integer(), nullable=True),
        sa.Column("size", sa.String(length=8), nullable=False),
        sa.Column("make", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("dials", sa.Integer(), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("multiplier", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=4), nullable=False),
        sa.Column("radio_id", sa.String(length=32), nullable=False),
        sa.Column("install_date", sa.Date(), nullable=True),
        sa.Column("last_test_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["service_points.id"],
            name=op.f("fk_meters_service_point_id_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meters")),
        sa.UniqueConstraint("serial", name=op.f("uq_meters_serial")),
    )
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meters_service_point_id"), ["service_point_id"], unique=False)

    op.create_table(
        "technicians",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("skills", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("depot_lat", sa.Float(), nullable=False),
        sa.Column("depot_lon", sa.Float(), nullable=False),
        sa.Column("start_at_home", sa.Boolean(), nullable=False),
        sa.Column("home_lat", sa.Float(), nullable=True),
        sa.Column("home_lon", sa.Float(), nullable=True),
        sa.Column("shift_start", sa.Time(), nullable=False),
        sa.Column("shift_end", sa.Time(), nullable=False),
        sa.Column("break_earliest", sa.Time(), nullable=False),
        sa.Column("break_latest", sa.Time(), nullable=False),
        sa.Column("break_minutes", sa.Integer(), nullable=False),
        sa.Column("max_hours", sa.Float(), nullable=False),
        sa.Column("overtime_cost_cents_per_hour", sa.BigInteger(), nullable=False),
        sa.Column("service_area", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_technicians_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technicians")),
        sa.UniqueConstraint("code", name=op.f("uq_technicians_code")),
        sa.UniqueConstraint("user_id", name=op.f("uq_technicians_user_id")),
    )
    op.create_table(
        "balances",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("past_due_cents", sa.BigInteger(), nullable=False),
        sa.Column("oldest_past_due_date", sa.Date(), nullable=True),
        sa.Column("as_of", server.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_balances_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_balances")),
    )
    op.create_table(
        "meter_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("register", sa.Integer(), nullable=False),
        sa.Column("read_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("reading", sa.Numeric(precision=16, scale=4, asdecimal=False), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("read_code", sa.String(length=24), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("validation", sa.String(length=16), nullable=False),
        sa.Column("validation_reason", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=True),
        sa.Column("duplicate_of_id", sa.Integer(), nullable=True),
        sa.Column("received_at", server.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"], ["meter_reads.id"], name=op.f("fk_meter_reads_duplicate_of_id_meter_reads")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_meter_reads_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_reads")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_meter_reads_idempotency_key")),
        sa.UniqueConstraint(
            "meter_id",
            "register",
            "read_at",
            "source",
            name=op.f("uq_meter_reads_meter_id_register_read_at_source"),
        ),
    )
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        batch_op.create_index("ix_meter_reads_meter_time", ["meter_id", "read_at"], unique=False)

    op.create_table(
        "move_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_request_id", sa.String(length=40), nullable=False),
        sa.Column("service_point_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("requested_date", sa.Date(), nullable=False),
        sa.Column("customer_name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_move_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["service_points.id"],
            name=op.f("fk_move_requests_service_point_id_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_move_requests")),
        sa.UniqueConstraint("cis_request_id", name=op.f("uq_move_requests_cis_request_id")),
    )
    with op.batch_alter_table("move_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_move_requests_requested_date"), ["requested_date"], unique=False)

    op.create_table(
        "payment_arrangements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_arrangement_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("made_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("down_payment_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_payment_arrangements_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_arrangements")),
        sa.UniqueConstraint("cis_arrangement_id", name=op.f("uq_payment_arrangements_cis_arrangement_id")),
    )
    with op.batch_alter_table("payment_arrangements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_arrangements_account_id"), ["account_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_payment_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_payments_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("cis_payment_id", name=op.f("uq_payments_cis_payment_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_account_id"), ["account_id"], unique=False)

    op.create_table(
        "shutoff_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_hold_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_shutoff_holds_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shutoff_holds")),
        sa.UniqueConstraint("cis_hold_id", name=op.f("uq_shutoff_holds_cis_hold_id")),
    )
    with op.batch_alter_table("shutoff_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shutoff_holds_account_id"), ["account_id"], unique=False)

    op.create_table(
        "shutoff_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_notice_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("served_at", server.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_shutoff_notices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shutoff_notices")),
        sa.UniqueConstraint("cis_notice_id", name=op.f("uq_shutoff_notices_cis_notice_id")),
    )
    with op.batch_alter_table("shutoff_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shutoff_notices_account_id"), ["account_id"], unique=False)

    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("service_point_id", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("scheduled_date", sa.Date(), nullable=True),
        sa.Column("window_start", server.db.UTCDateTime(), nullable=True),
        sa.Column("window_end", server.db.UTCDateTime(), nullable=True),
        sa.Column(
            "required_skills", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("estimated_minutes", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("planned_arrival_at", server.db.UTCDateTime(), nullable=True),
        sa.Column("route_sequence", sa.Integer(), nullable=True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("completed_at", server.db.UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_work_orders_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_work_orders_meter_id_meters")),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["service_points.id"],
            name=op.f("fk_work_orders_service_point_id_service_points"),
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["technicians.id"], name=op.f("fk_work_orders_technician_id_technicians")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_work_orders_idempotency_key")),
    )
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.create_index("ix_work_orders_account_type", ["account_id", "order_type"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_work_orders_service_point_id"), ["service_point_id"], unique=False
        )
        batch_op.create_index("ix_work_orders_status_date", ["status", "scheduled_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_orders_technician_id"), ["technician_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_orders_technician_id"))
        batch_op.drop_index("ix_work_orders_status_date")
        batch_op.drop_index(batch_op.f("ix_work_orders_service_point_id"))
        batch_op.drop_index("ix_work_orders_account_type")

    op.drop_table("work_orders")
    with op.batch_alter_table("shutoff_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shutoff_notices_account_id"))

    op.drop_table("shutoff_notices")
    with op.batch_alter_table("shutoff_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shutoff_holds_account_id"))

    op.drop_table("shutoff_holds")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_account_id"))

    op.drop_table("payments")
    with op.batch_alter_table("payment_arrangements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_arrangements_account_id"))

    op.drop_table("payment_arrangements")
    with op.batch_alter_table("move_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_move_requests_requested_date"))

    op.drop_table("move_requests")
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_reads_meter_time")

    op.drop_table("meter_reads")
    op.drop_table("balances")
    op.drop_table("technicians")
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meters_service_point_id"))

    op.drop_table("meters")
    op.drop_table("api_tokens")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_status")
        batch_op.drop_index(batch_op.f("ix_accounts_service_point_id"))

    op.drop_table("accounts")
    op.drop_table("users")
    op.drop_table("service_points")
    op.drop_table("customers")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_entity")

    op.drop_table("audit_events")
