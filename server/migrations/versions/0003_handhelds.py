"""handhelds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "handheld_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", server.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handheld_devices")),
        sa.UniqueConstraint("device_id", name=op.f("uq_handheld_devices_device_id")),
    )
    op.create_table(
        "reading_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("route_code", sa.String(length=32), nullable=False),
        sa.Column("cycle", sa.String(length=10), nullable=False),
        sa.Column("built_at", server.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_routes")),
        sa.UniqueConstraint("route_code", "cycle", name=op.f("uq_reading_routes_route_code_cycle")),
    )
    op.create_table(
        "handheld_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("received_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["handheld_devices.id"],
            name=op.f("fk_handheld_uploads_device_pk_handheld_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handheld_uploads")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_handheld_uploads_idempotency_key")),
    )
    op.create_table(
        "route_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("downloaded_at", server.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["handheld_devices.id"],
            name=op.f("fk_route_assignments_device_pk_handheld_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["reading_routes.id"],
            name=op.f("fk_route_assignments_route_id_reading_routes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_assignments")),
        sa.UniqueConstraint("route_id", name=op.f("uq_route_assignments_route_id")),
    )
    op.create_table(
        "handheld_skips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=40), nullable=False),
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("read_at", server.db.UTCDateTime(), nullable=False),
        sa.Column("skip_code", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"], ["handheld_devices.id"], name=op.f("fk_handheld_skips_device_pk_handheld_devices")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_handheld_skips_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handheld_skips")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_handheld_skips_idempotency_key")),
    )
    op.create_table(
        "reading_route_stops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("service_point_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_reading_route_stops_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_reading_route_stops_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["reading_routes.id"],
            name=op.f("fk_reading_route_stops_route_id_reading_routes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["service_points.id"],
            name=op.f("fk_reading_route_stops_service_point_id_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_route_stops")),
        sa.UniqueConstraint("route_id", "meter_id", name=op.f("uq_reading_route_stops_route_id_meter_id")),
        sa.UniqueConstraint("route_id", "sequence", name=op.f("uq_reading_route_stops_route_id_sequence")),
    )


def downgrade() -> None:

    op.drop_table("reading_route_stops")
    op.drop_table("handheld_skips")
    op.drop_table("route_assignments")
    op.drop_table("handheld_uploads")
    op.drop_table("reading_routes")
    op.drop_table("handheld_devices")
