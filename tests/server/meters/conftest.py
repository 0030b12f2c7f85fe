"""Meter fixtures: a premise with an active, occupied account and a meter whose history is given."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy.orm import Session

from server.meters.models import Meter, MeterRead


@pytest.fixture
def metered(db_session: Session, make_account, make_meter) -> Callable[..., Meter]:
    """A meter at a premise with an active, occupied account (unless told otherwise), with reads
    `history` = [(read_at, reading displayed)] stored as CIS reads."""

    def make(history: Sequence[tuple[dt.datetime, float]] = (), *, occupied: bool = True, **kw: Any) -> Meter:
        account = make_account(status="active", occupied=occupied)
        meter = make_meter(service_point_id=account.service_point_id, **kw)
        db_session.add_all(
            MeterRead(meter_id=meter.id, read_at=at, reading=reading, source="cis") for at, reading in history
        )
        db_session.flush()
        return meter

    return make


def monthly(
    start: dt.datetime, uses: Sequence[float], first: float = 1000.0
) -> list[tuple[dt.datetime, float]]:
    """Reads a month apart (the 5th, 16:00 UTC) from `start`, each `uses[i]` on from the one before."""
    out = [(start, first)]
    reading = first
    year, month = start.year, start.month
    for use in uses:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        reading += use
        out.append((dt.datetime(year, month, 5, 16, tzinfo=dt.UTC), reading))
    return out
