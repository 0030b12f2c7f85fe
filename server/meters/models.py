"""Meters and their reads."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Float, ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow


class Meter(Base):
    """A water meter (one register unless noted); readings count in `unit` times `multiplier`."""

    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"), index=True)
    size: Mapped[str] = mapped_column(String(8))  # nominal size: 5/8, 3/4, 1, 1-1/2, 2 ...
    make: Mapped[str] = mapped_column(String(40), default="")
    model: Mapped[str] = mapped_column(String(40), default="")
    dials: Mapped[int] = mapped_column(default=6)  # register digits: it rolls over at 10**dials
    decimals: Mapped[int] = mapped_column(default=0)  # digits right of the point on the register
    multiplier: Mapped[int] = mapped_column(default=1)  # register units per displayed unit
    unit: Mapped[str] = mapped_column(String(4), default="gal")  # contracts.codes.VolumeUnit
    radio_id: Mapped[str] = mapped_column(String(32), default="")  # MXU / endpoint id
    install_date: Mapped[dt.date | None] = mapped_column(Date)
    last_test_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="in_service")  # in_service | removed


class MeterRead(Base):
    """One register reading. `reading` is the register value as displayed (decimals applied), from every
    source: senders that count in dial digits are converted as the read enters (server/meters/intake.py)."""

    __tablename__ = "meter_reads"
    __table_args__ = (
        UniqueConstraint("meter_id", "register", "read_at", "source"),
        # Newest first per register: the order-generation facts walk it without sorting 2 M reads.
        Index("ix_meter_reads_newest", "meter_id", "register", text("read_at DESC"), text("id DESC")),
        # The reads still to derive (server/meters/derive.py): small, so finding them costs nothing.
        Index(
            "ix_meter_reads_underived",
            "meter_id",
            "register",
            postgresql_where=text("NOT derived"),
            sqlite_where=text("NOT derived"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    register: Mapped[int] = mapped_column(default=1)
    read_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reading: Mapped[float] = mapped_column(Numeric(16, 4, asdecimal=False))
    source: Mapped[str] = mapped_column(String(12))  # contracts.codes.ReadSource
    read_code: Mapped[str] = mapped_column(String(24), default="")  # contracts.codes.ReadCode
    estimated: Mapped[bool] = mapped_column(default=False)
    # Validation outcome (server/meters/validation): ok | high | low | zero | negative | rollover ...
    validation: Mapped[str] = mapped_column(String(16), default="")
    validation_reason: Mapped[str] = mapped_column(String(200), default="")
    # Set for hand-held and field reads: device|meter|register|read time, so an upload counts once.
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("meter_reads.id"))
    # A reread's reading answers the read it was sent to check (server/meters/intake.py): it either
    # confirms it (this read is kept on record beside it, the read in question stands for billing) or
    # corrects it (this read replaces it; the read in question gets `superseded_by_id`). Reads that are
    # duplicates, confirmations or superseded stay on record but out of the register's derivation chain.
    confirms_read_id: Mapped[int | None] = mapped_column(ForeignKey("meter_reads.id"))
    corrects_read_id: Mapped[int | None] = mapped_column(ForeignKey("meter_reads.id"))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("meter_reads.id"))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Derived when the read arrives (server/meters/derive.py), from the register's earlier reads: what
    # validation and the order rules need, so a daily run reads a few rows per register, not its history.
    # False until derived; any change to the register's reads sets it back (and the later reads re-derive).
    derived: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    prev_read_id: Mapped[int | None] = mapped_column()  # the read before this one on the register
    use: Mapped[float | None] = mapped_column(Float)  # since prev; None for the first; negative: unexplained
    rolled: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    norm: Mapped[float | None] = mapped_column(Float)  # mean use in this month of the earlier years
    norm_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    history_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))  # usable uses before
    recent_mean: Mapped[float | None] = mapped_column(Float)  # mean usable use of the 12 reads before


class ReadDerivation(Base):
    """The policy values the stored derivations were computed with; a change re-derives every read."""

    __tablename__ = "read_derivation"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200))
