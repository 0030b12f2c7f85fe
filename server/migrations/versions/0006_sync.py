"""sync

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "sync_checkpoints",
        sa.Column("database", sa.String(length=80), nullable=False),
        sa.Column("last_seq", sa.Text(), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("database", name=op.f("pk_sync_checkpoints")),
    )
    op.create_table(
        "field_results",
        sa.Column("doc_id", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("database", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=False),
        sa.Column("received_at", server.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["work_orders.id"], name=op.f("fk_field_results_order_id_work_orders")
        ),
        sa.PrimaryKeyConstraint("doc_id", name=op.f("pk_field_results")),
    )
    with op.batch_alter_table("field_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_field_results_order_id"), ["order_id"], unique=False)

    op.create_table(
        "order_publications",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("database", sa.String(length=80), nullable=False),
        sa.Column("order_version", sa.Integer(), nullable=False),
        sa.Column("doc_rev", sa.String(length=80), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("published_at", server.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["work_orders.id"], name=op.f("fk_order_publications_order_id_work_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", "database", name=op.f("pk_order_publications")),
    )


def downgrade() -> None:

    op.drop_table("order_publications")
    with op.batch_alter_table("field_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_field_results_order_id"))

    op.drop_table("field_results")
    op.drop_table("sync_checkpoints")
