"""meter reads: derived at arrival

Each read carries what validation and the order rules need from the register's earlier reads (the read
before it, interval use and rollover, seasonal norm, history count, recent mean), computed when it
arrives (server/meters/derive.py). Existing reads start underived; the first order-generation run or
read intake derives them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("derived", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("prev_read_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("use", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("rolled", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("norm", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("norm_count", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(
            sa.Column("history_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("recent_mean", sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_meter_reads_underived",
            ["meter_id", "register"],
            unique=False,
            postgresql_where=sa.text("NOT derived"),
            sqlite_where=sa.text("NOT derived"),
        )
    op.create_table(
        "read_derivation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_read_derivation")),
    )


def downgrade() -> None:
    op.drop_table("read_derivation")
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_reads_underived")
        for column in (
            "recent_mean",
            "history_count",
            "norm_count",
            "norm",
            "rolled",
            "use",
            "prev_read_id",
            "derived",
        ):
            batch_op.drop_column(column)
