"""The advisor's review pages and the supervisor's desk in the machine's Chromium against a served demo.

The demo district (`curbstop demo`, served by `curbstop serve`, as in test_board_browser.py) gets field
results the way sync records them (the follower's ingest of tablet result documents): a reread that
corrects a billed read, and a visit the CSFR could not complete. Screens go to docs/screenshots/ (20-...)
from the SQLite run, and each is checked with axe-core for serious or critical findings.
"""

# ruff: noqa: F811 - pytest fixtures imported from test_board_browser are parameters here by design

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.server.web.test_board_browser import (  # noqa: F401 - the served demo and its browser
    LAPTOP,
    PASSWORD,
    Demo,
    _axe,
    _db,
    _shot,
    chromium,
    demo,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.couchdb, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def items(demo: Demo) -> dict[str, int]:
    """Two review items recorded through the sync follower's ingest: a correcting reread and a dog."""
    from server.meters.models import MeterRead
    from server.orders.models import WorkOrder
    from server.results.models import FieldOutcome, ReviewItem
    from server.sync import service as sync
    from server.technicians.models import Technician

    engine = _db(demo)
    made: dict[str, int] = {}
    with Session(engine) as db:
        tech = db.scalar(select(Technician).where(Technician.code == "t01")) or db.scalar(select(Technician))
        assert tech is not None
        # The meter with the most reads: a long history for the graph.
        meter_id = db.scalar(
            select(MeterRead.meter_id).group_by(MeterRead.meter_id).order_by(func.count().desc()).limit(1)
        )
        latest = db.scalar(
            select(MeterRead)
            .where(MeterRead.meter_id == meter_id)
            .order_by(MeterRead.read_at.desc())
            .limit(1)
        )
        before = db.scalar(
            select(MeterRead)
            .where(MeterRead.meter_id == meter_id, MeterRead.read_at < latest.read_at)
            .order_by(MeterRead.read_at.desc())
            .limit(1)
        )
        from server.meters.models import Meter

        meter = db.get(Meter, meter_id)
        from server.accounts.models import Account

        account = db.scalar(select(Account).where(Account.service_point_id == meter.service_point_id))
        for name, key in (
            ("reread", f"reread:read:{latest.id}"),
            ("unable", f"web-review-{uuid.uuid4().hex}"),
        ):
            order = WorkOrder(
                order_type="reread",
                priority="investigation",
                account_id=account.id,
                service_point_id=meter.service_point_id,
                meter_id=meter.id,
                technician_id=tech.id,
                status="dispatched",
                route_sequence=1,
                idempotency_key=key,
            )
            db.add(order)
            db.flush()
            at = (latest.read_at + dt.timedelta(days=1)).astimezone(dt.UTC)
            rid = uuid.uuid4().hex
            doc = {
                "_id": f"result:{order.id}:{rid}",
                "doc_type": "result",
                "result_id": rid,
                "order_id": str(order.id),
                "csfr_id": tech.code,
                "device_id": "tab-1",
                "completed_at": at.isoformat().replace("+00:00", "Z"),
            }
            if name == "reread":
                # Halfway between the two last reads: the billed read was too high.
                value = float(
                    round(float(before.reading) + (float(latest.reading) - float(before.reading)) / 2)
                )
                doc |= {
                    "outcome": "completed",
                    "fields": {"form": "reread"},
                    "readings": [{"meter_id": str(meter.id), "value": value, "read_at": doc["completed_at"]}],
                    "notes": "Register read twice; the CIS read was keyed wrong.",
                }
            else:
                doc |= {"outcome": "unable_to_complete", "unable_code": "dog", "fields": {"form": "unable"}}
            line = sync._ingest_result(db, doc["_id"], doc, tech, f"sync:{sync.database_for(tech)}")
            item = db.scalar(
                select(ReviewItem).join(FieldOutcome, FieldOutcome.id == ReviewItem.result_id)
                .where(FieldOutcome.source_key == f"tablet:{doc['_id']}")
            )  # fmt: skip
            assert item is not None and item.status == "open", line
            made[name] = item.id
        db.commit()
    engine.dispose()
    return made


def _signed_in(chromium, demo: Demo, user: str, lands: str):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport=LAPTOP, base_url=demo.base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto("/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert re.search(lands, page.url), (page.url, page.content()[-2000:])
    return page


def test_an_advisor_clears_an_item_from_the_queue_by_keyboard(chromium, demo, items):
    """The advisor lands on the queue; j moves, Enter opens; the graph draws the reads it was given with the
    read in question marked; accepting proposes the credit and the page says who must approve it."""
    page = _signed_in(chromium, demo, "advisor", r"/review$")
    page.wait_for_selector("tr.queue-row")
    _axe(page)
    _shot(page, demo, "20-review-queue")
    page.select_option("select[name=kind]", "reread")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r"kind=reread"))
    rows = page.locator("tr.queue-row")
    links = [rows.nth(i).inner_html() for i in range(rows.count())]
    target = next((i for i, html in enumerate(links) if f'/review/{items["reread"]}"' in html), None)
    assert target is not None, (items, page.url, links[:3])
    for _ in range(target + 1):
        page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/review/{items['reread']}$"))
    page.wait_for_selector("#consumption[data-drawn=yes]")
    counts = page.evaluate(
        """() => { const c = window.curbstopGraph; const g = JSON.parse(document.getElementById('graph-data').textContent);
                   return {drawn: c.data.datasets.slice(0, 4).map(d => d.data.length),
                           given: [g.actual.length, g.estimated.length, g.flagged.length, g.in_question.length]}; }"""
    )
    assert counts["drawn"] == counts["given"] and counts["given"][3] >= 1 and sum(counts["given"][:3]) >= 3
    _axe(page)
    _shot(page, demo, "21-review-item")
    page.check("input[name=decision][value=accept]")
    page.click("button:has-text('Record the decision')")
    page.wait_for_selector("#approval-need")
    need = page.locator("#approval-need").inner_text()
    assert "waits for approval by" in need
    items["adjustment"] = int(re.search(r"Adjustment (\d+)", need).group(1))
    _shot(page, demo, "22-review-item-decided")
    # A reason is required to dismiss: the service's message comes back in the page, not a 500.
    page.goto(f"/review/{items['unable']}")
    page.check("input[name=decision][value=dismiss]")
    page.click("button:has-text('Record the decision')")
    assert "reason: required to dismiss" in page.locator("[role=alert]").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_a_supervisor_approves_at_the_desk(chromium, demo, items):
    """The supervisor lands on the desk, sees the advisor's proposed credit and approves it; a dispatcher
    may not open the desk or the queue."""
    page = _signed_in(chromium, demo, "supervisor", r"/supervisor$")
    _axe(page)
    _shot(page, demo, "23-supervisors-desk")
    # The advisor's credit (accepted in the test before) waits here; the supervisor approves it.
    row = page.locator(f"tr:has(form[action='/supervisor/adjustments/{items['adjustment']}/approve'])")
    row.locator("button:has-text('Approve')").click()
    page.wait_for_selector(f"[role=status]:has-text('adjustment {items['adjustment']} approved')")
    # The day's shut-off list: keep the first account off for 5 days with a note, release the rest.
    listed = page.locator("article.batch").first
    assert listed.count() == 1, "the demo raises a shut-off list for the supervisor"
    listed.locator("input[name=exclude]").first.check()
    listed.locator("input[name=exclude_note]").first.fill("paying Monday, spoke to the customer")
    listed.locator("input[name=exclude_days]").first.fill("5")
    listed.locator("button:has-text('Approve the list')").click()
    page.wait_for_selector("[role=status]:has-text('approved')")
    assert "paying Monday, spoke to the customer" in page.locator("#exclusions-h + table").inner_text()
    _axe(page)
    _shot(page, demo, "24-shutoff-list-approved")
    page.context.close()
    dispatcher = _signed_in(chromium, demo, "dispatcher", r"/board")
    for url in ("/review", "/supervisor"):
        dispatcher.goto(url)
        assert "a dispatcher may not open this" in dispatcher.locator("[role=alert]").inner_text()
    dispatcher.context.close()
