"""order generation

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "no_shutoff_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("marked_by", sa.String(length=64), nullable=False),
        sa.Column("marked_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_no_shutoff_days")),
    )
    op.create_table(
        "generation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column(
            "rules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("policy_source", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_generation_runs_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_runs")),
    )
    with op.batch_alter_table("generation_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generation_runs_run_date"), ["run_date"], unique=False)

    op.create_table(
        "shutoff_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.String(length=64), nullable=False),
        sa.Column("reviewed_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["generation_runs.id"], name=op.f("fk_shutoff_batches_run_id_generation_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shutoff_batches")),
        sa.UniqueConstraint("service_date", "run_id", name=op.f("uq_shutoff_batches_service_date_run_id")),
    )
    with op.batch_alter_table("shutoff_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shutoff_batches_service_date"), ["service_date"], unique=False)

    op.create_table(
        "generation_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("order_type", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_generation_decisions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_generation_decisions_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["work_orders.id"], name=op.f("fk_generation_decisions_order_id_work_orders")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["generation_runs.id"],
            name=op.f("fk_generation_decisions_run_id_generation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_decisions")),
    )
    with op.batch_alter_table("generation_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_generation_decisions_account", ["account_id", "run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_generation_decisions_run_id"), ["run_id"], unique=False)

    op.create_table(
        "meter_test_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_meter_test_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_meter_test_requests_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["work_orders.id"], name=op.f("fk_meter_test_requests_order_id_work_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_test_requests")),
    )
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review_hold", sa.String(length=120), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_work_orders_batch_id"), ["batch_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_work_orders_batch_id_shutoff_batches"), "shutoff_batches", ["batch_id"], ["id"]
        )


def downgrade() -> None:

    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_work_orders_batch_id_shutoff_batches"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_work_orders_batch_id"))
        batch_op.drop_column("batch_id")
        batch_op.drop_column("review_hold")

    op.drop_table("meter_test_requests")
    with op.batch_alter_table("generation_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_decisions_run_id"))
        batch_op.drop_index("ix_generation_decisions_account")

    op.drop_table("generation_decisions")
    with op.batch_alter_table("shutoff_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shutoff_batches_service_date"))

    op.drop_table("shutoff_batches")
    with op.batch_alter_table("generation_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_runs_run_date"))

    op.drop_table("generation_runs")
    op.drop_table("no_shutoff_days")
