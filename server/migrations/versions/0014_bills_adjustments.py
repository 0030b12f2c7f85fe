"""bills and their charge lines (CIS import), billing adjustments with their approvals (server/adjustments)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
READING = sa.Numeric(16, 4, asdecimal=False)


def upgrade() -> None:
    op.create_table(
        "bills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cis_bill_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("period_start_date", sa.Date(), nullable=False),
        sa.Column("period_end_date", sa.Date(), nullable=False),
        sa.Column("start_read_at", UTCDateTime(), nullable=True),
        sa.Column("start_reading", READING, nullable=True),
        sa.Column("end_read_at", UTCDateTime(), nullable=True),
        sa.Column("end_reading", READING, nullable=True),
        sa.Column("consumption", READING, nullable=False),
        sa.Column("unit", sa.String(length=4), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_bills_account_id_accounts")),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_bills_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("cis_bill_id", name=op.f("uq_bills_cis_bill_id")),
    )
    op.create_index("ix_bills_account_period", "bills", ["account_id", "period_start_date"], unique=False)
    op.create_index(op.f("ix_bills_meter_id"), "bills", ["meter_id"], unique=False)
    op.create_index(op.f("ix_bills_end_read_at"), "bills", ["end_read_at"], unique=False)
    op.create_table(
        "bill_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=16), nullable=False),
        sa.Column("quantity", READING, nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_bill_lines_bill_id_bills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_lines")),
        sa.UniqueConstraint("bill_id", "component", name=op.f("uq_bill_lines_bill_id_component")),
    )
    op.create_table(
        "adjustments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("source_result_id", sa.Integer(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("working", JSON, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=True),
        sa.Column("change_reason", sa.Text(), nullable=False),
        sa.Column("approvals", JSON, nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_adjustments_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustments")),
    )
    op.create_index(op.f("ix_adjustments_kind"), "adjustments", ["kind"], unique=False)
    op.create_index(op.f("ix_adjustments_account_id"), "adjustments", ["account_id"], unique=False)
    op.create_index(
        op.f("ix_adjustments_source_result_id"), "adjustments", ["source_result_id"], unique=False
    )
    op.create_index("ix_adjustments_status_created", "adjustments", ["status", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("adjustments")
    op.drop_table("bill_lines")
    op.drop_table("bills")
