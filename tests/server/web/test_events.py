"""Live updates: committed changes reach subscribed pages; rolled-back ones never do; PostgreSQL shares them."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.accounts.models import ServicePoint
from server.orders.models import WorkOrder
from server.web.events import BROKER, Broker, PgListener, topics_of


def _order(session: Session, key: str) -> WorkOrder:
    sp = ServicePoint(cis_service_point_id=f"SP-{key}", address="1 Elm St", lat=38.5, lon=-121.5)
    session.add(sp)
    session.flush()
    order = WorkOrder(
        order_type="reread",
        priority="reread",
        service_point_id=sp.id,
        scheduled_date=dt.date(2026, 12, 2),
        idempotency_key=f"events-{key}",
    )
    session.add(order)
    return order


async def _next(queue: asyncio.Queue, timeout: float = 5.0):
    return await asyncio.wait_for(queue.get(), timeout)


def test_topics_name_the_watched_tables():
    """Orders, plans, jobs, field results and technicians are watched; other rows are not."""
    assert topics_of([WorkOrder(), ServicePoint()]) == {"orders"}


def test_commit_reaches_subscribers_and_rollback_does_not(fresh_engine):
    """A committed order change is published with its topic (once the transaction commits); a rollback is not."""
    if fresh_engine.dialect.name == "postgresql":
        listener = PgListener(
            fresh_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        )
        broker = listener.broker = Broker()
        listener.start()
        assert listener.listening.wait(10)
    else:
        listener, broker = None, BROKER

    async def scenario() -> None:
        async with broker.subscription() as queue:
            with Session(fresh_engine) as session:
                _order(session, "rolled-back")
                session.flush()
                session.rollback()
                _order(session, "kept")
                session.flush()
                assert queue.empty()  # flushed is not committed: nothing yet
                session.commit()
            message = await _next(queue)
            assert "orders" in message["topics"]
            await asyncio.sleep(0.5)
            assert queue.empty()  # the rolled-back insert sent nothing

    try:
        asyncio.run(scenario())
    finally:
        if listener is not None:
            listener.stop()
            listener.join(5)


@pytest.mark.postgres
def test_postgresql_shares_changes_between_processes(postgresql_engine):
    """Two listeners (as in two API processes) both hear a commit made through a third connection."""
    url = postgresql_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    first, second = PgListener(url), PgListener(url)
    first.broker, second.broker = Broker(), Broker()
    for listener in (first, second):
        listener.start()
        assert listener.listening.wait(10)

    async def scenario() -> None:
        async with first.broker.subscription() as one, second.broker.subscription() as two:
            with Session(postgresql_engine) as session:
                order = _order(session, "shared")
                session.commit()
                session.delete(order)
                session.commit()
            assert "orders" in (await _next(one))["topics"]
            assert "orders" in (await _next(two))["topics"]

    try:
        asyncio.run(scenario())
    finally:
        for listener in (first, second):
            listener.stop()
            listener.join(5)


def test_event_stream_needs_an_office_role(browser, client):
    """GET /events is for signed-in office roles: no session redirects to sign-in, a CSFR gets 403."""
    assert client.get("/events", follow_redirects=False).status_code == 303
    assert browser(Role.CSFR).client.get("/events").status_code == 403
