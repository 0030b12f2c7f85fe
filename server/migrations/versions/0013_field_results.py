"""field results: typed outcomes, review items, result photos, CIS export records (issue 16)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "field_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("service_point_id", sa.Integer(), nullable=True),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("unable_code", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("read_ids", JSON, nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"], name=op.f("fk_field_outcomes_order_id_work_orders")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_field_outcomes_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["service_point_id"], ["service_points.id"], name=op.f("fk_field_outcomes_service_point_id_service_points")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_field_outcomes_meter_id_meters")),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["technicians.id"], name=op.f("fk_field_outcomes_technician_id_technicians")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_outcomes")),
        sa.UniqueConstraint("source_key", name=op.f("uq_field_outcomes_source_key")),
    )
    op.create_index(op.f("ix_field_outcomes_order_id"), "field_outcomes", ["order_id"])
    op.create_index(op.f("ix_field_outcomes_account_id"), "field_outcomes", ["account_id"])
    op.create_index(op.f("ix_field_outcomes_meter_id"), "field_outcomes", ["meter_id"])
    op.create_index("ix_field_outcomes_kind_at", "field_outcomes", ["kind", "occurred_at"])

    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("adjustment_kind", sa.String(length=32), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("working", JSON, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("next_step", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("adjustment_id", sa.Integer(), nullable=True),
        sa.Column("new_order_id", sa.Integer(), nullable=True),
        sa.Column("arrangement_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"], ["field_outcomes.id"], name=op.f("fk_review_items_result_id_field_outcomes")
        ),
        sa.ForeignKeyConstraint(
            ["new_order_id"], ["work_orders.id"], name=op.f("fk_review_items_new_order_id_work_orders")
        ),
        sa.ForeignKeyConstraint(
            ["arrangement_id"],
            ["payment_arrangements.id"],
            name=op.f("fk_review_items_arrangement_id_payment_arrangements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        sa.UniqueConstraint("result_id", name=op.f("uq_review_items_result_id")),
    )
    op.create_index("ix_review_items_status_created", "review_items", ["status", "created_at"])

    op.create_table(
        "result_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("database", sa.String(length=80), nullable=False),
        sa.Column("doc_id", sa.String(length=120), nullable=False),
        sa.Column("attachment", sa.String(length=200), nullable=False),
        sa.Column("caption", sa.String(length=400), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=True),
        sa.Column("content_type", sa.String(length=80), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("digest", sa.String(length=120), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=True),
        sa.Column("fetch_error", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"], ["field_outcomes.id"], name=op.f("fk_result_photos_result_id_field_outcomes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_photos")),
    )
    op.create_index(op.f("ix_result_photos_result_id"), "result_photos", ["result_id"])

    op.create_table(
        "cis_export_records",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("message", sa.String(length=40), nullable=False),
        sa.Column("source_type", sa.String(length=24), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("staged_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cis_export_records")),
        sa.UniqueConstraint("record_id", name=op.f("uq_cis_export_records_record_id")),
    )
    op.create_index("ix_cis_export_records_staged_at", "cis_export_records", ["staged_at"])


def downgrade() -> None:
    op.drop_table("cis_export_records")
    op.drop_table("result_photos")
    op.drop_table("review_items")
    op.drop_table("field_outcomes")
