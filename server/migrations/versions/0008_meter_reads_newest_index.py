"""meter reads: a newest-first index per register

The order-generation facts read every register's history newest first (one window, LEAD and
ROW_NUMBER); this index hands the reads over in that order, so PostgreSQL does not sort 2 M rows.
It replaces ix_meter_reads_meter_time (meter, time): look-ups by meter still use its leading column.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_reads_meter_time")
        batch_op.create_index(
            "ix_meter_reads_newest",
            ["meter_id", "register", sa.text("read_at DESC"), sa.text("id DESC")],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_reads_newest")
        batch_op.create_index("ix_meter_reads_meter_time", ["meter_id", "read_at"], unique=False)
