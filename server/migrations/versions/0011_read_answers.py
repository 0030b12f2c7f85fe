"""meter reads: a reread's reading confirms or corrects the read it was sent to check

`confirms_read_id` and `corrects_read_id` on the reread's reading, `superseded_by_id` on a read a
reread corrected (server/meters/intake.py). Reads that are confirmations or superseded stay on record
but leave the register's derivation chain, so the register's reads after them are derived again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("confirms_read_id", "corrects_read_id", "superseded_by_id")


def upgrade() -> None:
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                op.f(f"fk_meter_reads_{column}_meter_reads"), "meter_reads", [column], ["id"]
            )


def downgrade() -> None:
    with op.batch_alter_table("meter_reads", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_constraint(op.f(f"fk_meter_reads_{column}_meter_reads"), type_="foreignkey")
            batch_op.drop_column(column)
