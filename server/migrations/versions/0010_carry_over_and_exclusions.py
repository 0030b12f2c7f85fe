"""carried-over orders and shut-off exclusions

A plan that offers orders due on an earlier day counts them (`dispatch_plans.carried_over`); an order
carried to a later day keeps the day it was first due (`work_orders.original_scheduled_date`). A
supervisor's exclusion of an account from a shut-off list is a row of its own (`shutoff_exclusions`)
with its note, who made it, how long it holds and the balance it was made against.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_scheduled_date", sa.Date(), nullable=True))
    with op.batch_alter_table("dispatch_plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("carried_over", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.create_table(
        "shutoff_exclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("excluded_by", sa.String(length=64), nullable=False),
        sa.Column("excluded_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until_date", sa.Date(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("past_due_cents", sa.BigInteger(), nullable=False),
        sa.Column("last_payment_id", sa.Integer(), nullable=True),
        sa.Column("lifted_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=64), nullable=False),
        sa.Column("lift_note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_shutoff_exclusions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["shutoff_batches.id"], name=op.f("fk_shutoff_exclusions_batch_id_shutoff_batches")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["work_orders.id"], name=op.f("fk_shutoff_exclusions_order_id_work_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shutoff_exclusions")),
    )
    with op.batch_alter_table("shutoff_exclusions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shutoff_exclusions_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shutoff_exclusions_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shutoff_exclusions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shutoff_exclusions_batch_id"))
        batch_op.drop_index(batch_op.f("ix_shutoff_exclusions_account_id"))
    op.drop_table("shutoff_exclusions")
    with op.batch_alter_table("dispatch_plans", schema=None) as batch_op:
        batch_op.drop_column("carried_over")
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_column("original_scheduled_date")
