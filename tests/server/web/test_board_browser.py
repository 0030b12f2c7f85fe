"""The dispatcher's board in the machine's Chromium (Playwright, no browser download) against a served demo.

One demo district per backend (SQLite, PostgreSQL), served by `curbstop serve`; the tests run in file order
on it: sign in, plan with progress, publish, the drawer, two dispatchers on one stop, a tablet's status
arriving live, a wall screen. Every screen is saved to docs/screenshots/ (from the SQLite run; the
PostgreSQL run saves to test-artifacts/) and checked with axe-core for serious or critical findings.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, _pg_reachable

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.couchdb, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[3]
DOCS_SHOTS = REPO / "docs" / "screenshots"
PASSWORD = "curbstop-demo"
LAPTOP = {"width": 1366, "height": 768}
WALL = {"width": 1920, "height": 1080}


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/setup.sh installs it)")
        pytest.skip("chromium is not installed (make setup installs it)")
    return path


@dataclass
class Demo:
    """A served demo district."""

    base: str
    day: str
    database_url: str
    shots: Path
    backend: str


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`curbstop demo --no-serve` on a small district, then `curbstop serve` on a free port."""
    tmp = tmp_path_factory.mktemp(f"web-{request.param}")
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'web.db'}"
        shots = DOCS_SHOTS
    else:
        problem = _pg_reachable()
        if problem is not None:
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {problem}")
            pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {problem}")
        pg_name = f"curbstop_web_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{pg_name}"
        shots = REPO / "test-artifacts" / "screenshots" / "postgresql"
    shots.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": url, "CURBSTOP_VAR_DIR": str(tmp / "var")}
    env.pop("COUCHDB_URL", None)
    env.pop("CURBSTOP_TILE_URL", None)
    made = subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "--accounts", "300", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:  # the demo's working day: the day its orders were raised for
        day = conn.execute(
            text(
                "SELECT scheduled_date FROM work_orders WHERE scheduled_date IS NOT NULL "
                "GROUP BY scheduled_date ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
    engine.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The tablets' CouchDB: the server publishes orders to it and follows what the tablets write.
    from mobile.sync.devserver import start_pouchdb_server

    couch = start_pouchdb_server(data_dir=tmp / "couch")
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env={**env, "COUCHDB_URL": couch.url_with_credentials},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        yield Demo(base=base, day=str(day), database_url=url, shots=shots, backend=request.param)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        couch.stop()
        if pg_name is not None:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def chromium(demo: Demo):  # type: ignore[no-untyped-def]
    """The machine's Chromium driven by Playwright (executable_path: never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    path = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def _page(chromium, demo: Demo, user: str, viewport=LAPTOP, block_live: bool = False):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport=viewport, base_url=demo.base)
    if block_live:
        context.route("**/events", lambda route: route.abort())
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"/login?next=/board%3Fday%3D{demo.day}")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/board\?day="))
    page.wait_for_selector("#map[data-routes]")
    return page


def _shot(page, demo: Demo, name: str, full_page: bool = True) -> None:  # type: ignore[no-untyped-def]
    path = demo.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 5_000


def _axe(page) -> None:  # type: ignore[no-untyped-def]
    """axe-core (served by the server from npm) finds nothing serious or critical on the page as it is."""
    page.add_script_tag(url="/web/vendor/axe.min.js")
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join('; ')})`)"""
    )
    assert found == [], "\n".join(found)


def _db(demo: Demo):  # type: ignore[no-untyped-def]
    url = demo.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url)


def test_sign_in_page_and_a_role_without_pages(chromium, demo):
    """The sign-in page is accessible; a wrong password says so; a CSFR signed in gets a 403 page, not the board."""
    context = chromium.new_context(viewport=LAPTOP, base_url=demo.base)
    page = context.new_page()
    page.goto("/")
    assert page.url.endswith("/login")
    _axe(page)
    _shot(page, demo, "01-sign-in")
    page.fill("#username", "dispatcher")
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "wrong username or password"
    page.fill("#username", "t01")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert "a csfr may not open this" in page.locator("[role=alert]").inner_text()
    _shot(page, demo, "02-not-for-your-role")
    context.close()


def test_plan_the_day_with_progress_and_publish(chromium, demo):
    """Plan runs as a job with a progress bar; the draft shows on the timeline and map; publish dispatches it."""
    page = _page(chromium, demo, "dispatcher")
    # Streets without tiles: the map script draws the district's own once it has loaded.
    page.wait_for_function("Number(document.querySelector('#map').dataset.streets || 0) > 0", timeout=30_000)
    _axe(page)
    _shot(page, demo, "03-board-before-planning")
    page.click("text=Plan the day")
    page.wait_for_selector("#plan-progress progress, #plan-progress .ok", timeout=30_000)
    if page.locator("#plan-progress progress").count():
        _shot(page, demo, "04-planning-progress", full_page=False)
    page.wait_for_selector("#plan-progress .ok", timeout=180_000)
    page.wait_for_selector("button:has-text('Publish draft')")
    page.wait_for_selector(".stop.draft")
    _shot(page, demo, "05-draft-plan")
    page.click("button:has-text('Publish draft')")
    page.wait_for_selector("#toast .ok:has-text('published')")
    page.wait_for_selector(".stop.status-dispatched")
    page.wait_for_function("Number(document.querySelector('#map').dataset.routes) > 0")
    assert page.locator(".stop.draft").count() == 0
    # The glance card and the work list are swapped in after the publish; once they agree, every order still
    # waiting says why in the planner's words, not codes. Periodic work is spread over the coming days by the
    # testers' capacity, so a small demo day may fit whole and leave nothing waiting.
    page.wait_for_function(
        "Number(document.querySelector('[data-glance=unassigned]').textContent)"
        " === document.querySelectorAll('#work tbody tr.work-row').length",
        timeout=30_000,
    )
    reasons = page.locator("#work tbody tr.work-row td:last-child").all_inner_texts()
    assert not any("_" in r or not r.strip() for r in reasons), reasons
    if not reasons:
        assert "Nothing waiting" in page.inner_text("#work")
    _axe(page)
    _shot(page, demo, "06-published-board")
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_order_drawer_and_work_list(chromium, demo):
    """A stop opens its drawer (account, hazards, audit trail) by keyboard; the work list searches and filters."""
    page = _page(chromium, demo, "dispatcher")
    stop = page.locator(".stop.status-dispatched").first
    stop.focus()
    page.keyboard.press("Enter")
    drawer = page.locator("#drawer")
    drawer.locator("text=Audit trail").wait_for()
    assert "published" in drawer.inner_text() or "dispatched" in drawer.inner_text()
    _axe(page)
    _shot(page, demo, "07-order-drawer", full_page=False)
    page.keyboard.press("Escape")
    assert drawer.is_hidden()
    # A request the server cannot read (here a time that is not HH:MM) is answered in words in the page.
    page.evaluate(
        """() => htmx.ajax('POST', '/board/orders/1/move',
            {target: '#toast', swap: 'innerHTML', values: {technician_id: 1, version: 1, day: 'x', arrive: '09:00'}})"""
    )
    alert = page.locator("#toast [role=alert]")
    alert.wait_for()
    assert alert.inner_text() == "day 'x' is not a date (YYYY-MM-DD)"  # the API's JSON error, in words
    total = page.locator("#work tbody tr.work-row").count()
    page.fill("#work-q", "1st St")
    page.wait_for_function(
        "[...document.querySelectorAll('#work tbody tr.work-row')].every(r => r.innerText.includes('1st St'))"
    )
    assert page.locator("#work tbody tr.work-row").count() <= total
    _shot(page, demo, "08-work-list-search")
    page.context.close()


def _movable(demo: Demo) -> tuple[int, str, str]:
    """A dispatched order without an appointment window, and another CSFR who has its skills."""
    engine = _db(demo)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT o.id, o.required_skills, t.code FROM work_orders o JOIN technicians t ON t.id = o.technician_id "
                "WHERE o.status = 'dispatched' AND o.window_start IS NULL AND o.scheduled_date = :day ORDER BY o.id"
            ),
            {"day": demo.day},
        ).all()
        techs = conn.execute(text("SELECT code, skills FROM technicians WHERE active ORDER BY code")).all()
    engine.dispose()
    import json

    def skills(value):  # type: ignore[no-untyped-def]
        return set(json.loads(value) if isinstance(value, str) else value)

    for order_id, needed, code in rows:
        for other, has in techs:
            if other != code and skills(needed) <= skills(has):
                return order_id, code, other
    raise AssertionError("no movable stop in the published demo plan")


def test_two_dispatchers_edit_the_same_stop(chromium, demo):
    """The first drag wins; the second dispatcher (board drawn before it) is told who moved it, nothing is lost."""
    order_id, _from_code, to_code = _movable(demo)
    first = _page(chromium, demo, "dispatcher")
    second = _page(chromium, demo, "supervisor", block_live=True)  # a board whose live updates are cut
    target = first.locator(f".tl-row[data-code={to_code}] .tl-lane")
    lane = target.bounding_box()
    assert lane is not None  # drop it mid-morning, inside the shift
    first.locator(f".stop[data-order='{order_id}']").drag_to(
        target, target_position={"x": lane["width"] * 0.3, "y": 10}
    )
    first.wait_for_selector(f"#toast .ok:has-text('order {order_id}')")
    first.wait_for_selector(f".tl-row[data-code={to_code}] .stop[data-order='{order_id}'].locked")
    _shot(first, demo, "09-stop-moved-and-pinned", full_page=False)
    stale = second.locator(f".stop[data-order='{order_id}']")
    back = second.locator(".tl-row").nth(0).locator(".tl-lane")
    stale.drag_to(back, target_position={"x": 200, "y": 10})
    alert = second.locator("#toast [role=alert]")
    alert.wait_for()
    assert "changed by dispatcher" in alert.inner_text()
    _shot(second, demo, "10-stale-edit-conflict", full_page=False)
    # Nothing lost: the first move stands, and the second board now shows it.
    second.wait_for_selector(f".tl-row[data-code={to_code}] .stop[data-order='{order_id}']")
    first.context.close()
    second.context.close()


def test_tablet_status_reaches_an_open_board_within_5_s(chromium, demo):
    """A CSFR's en-route event (the lifecycle path sync uses) changes their state on an open board within 5 s."""
    page = _page(chromium, demo, "dispatcher")
    page.wait_for_function("document.body.dataset.live === 'yes'")
    engine = _db(demo)
    with engine.connect() as conn:
        order_id, code = conn.execute(
            text(
                "SELECT o.id, t.code FROM work_orders o JOIN technicians t ON t.id = o.technician_id "
                "WHERE o.status = 'dispatched' AND o.scheduled_date = :day ORDER BY o.id LIMIT 1"
            ),
            {"day": demo.day},
        ).one()
    engine.dispose()
    state = page.locator(f".tl-row[data-code={code}] .state")
    assert state.get_attribute("data-state") != "en route"
    token = httpx.post(
        f"{demo.base}/api/auth/token", data={"username": code.lower(), "password": PASSWORD}
    ).json()["access_token"]
    sent = time.monotonic()
    response = httpx.post(
        f"{demo.base}/api/orders/{order_id}/transitions",
        json={"to": "en_route"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    page.wait_for_selector(f".tl-row[data-code={code}] .state[data-state='en route']", timeout=5_000)
    assert time.monotonic() - sent < 5
    _shot(page, demo, "11-csfr-en-route-live", full_page=False)
    page.context.close()


def test_tablet_event_through_sync_reaches_an_open_board_within_5_s(chromium, demo):
    """A CSFR's tablet writes an on-site event into their CouchDB database; the server's sync follows it,
    the lifecycle moves the order, and the open board shows the CSFR on site within 5 s."""
    from contracts.couch import EventDoc

    page = _page(chromium, demo, "dispatcher")
    page.wait_for_function("document.body.dataset.live === 'yes'")
    engine = _db(demo)
    with engine.connect() as conn:
        order_id, code = conn.execute(
            text(
                "SELECT o.id, t.code FROM work_orders o JOIN technicians t ON t.id = o.technician_id "
                "WHERE o.status = 'dispatched' AND o.scheduled_date = :day AND t.id NOT IN "
                "(SELECT technician_id FROM work_orders WHERE status IN ('en_route', 'on_site') "
                "AND technician_id IS NOT NULL) ORDER BY o.id LIMIT 1"
            ),
            {"day": demo.day},
        ).one()
    engine.dispose()
    assert page.locator(f".tl-row[data-code={code}] .state").get_attribute("data-state") != "on site"
    token = httpx.post(
        f"{demo.base}/api/auth/token", data={"username": code.lower(), "password": PASSWORD}
    ).json()["access_token"]
    tablet = httpx.get(f"{demo.base}/api/sync/session", headers={"Authorization": f"Bearer {token}"}).json()
    event = EventDoc(
        event_id=uuid.uuid4().hex,
        order_id=str(order_id),
        kind="on_site",
        at=dt.datetime.now(dt.UTC),
        csfr_id=str(tablet["technician_id"]),
        device_id="browser-test-tablet",
    ).to_couch()
    written = httpx.put(
        f"{tablet['couchdb_url']}/{tablet['database']}/{event['_id']}",
        json=event,
        auth=(tablet["username"], tablet["password"]),
    )
    assert written.status_code in (201, 202), written.text
    sent = time.monotonic()
    page.wait_for_selector(f".tl-row[data-code={code}] .state[data-state='on site']", timeout=5_000)
    assert time.monotonic() - sent < 5
    page.context.close()


def test_emergency_shows_who_gets_it_then_dispatches(chromium, demo):
    """An emergency typed into the board is previewed (who gets it, what moves) and dispatched only on confirm."""
    page = _page(chromium, demo, "dispatcher")
    engine = _db(demo)
    with engine.connect() as conn:  # a customer calls: a burst service line at their premise
        account_id, account_number = conn.execute(
            text("SELECT id, account_number FROM accounts ORDER BY id DESC LIMIT 1")
        ).one()
    token = httpx.post(
        f"{demo.base}/api/auth/token", data={"username": "dispatcher", "password": PASSWORD}
    ).json()["access_token"]
    made = httpx.post(
        f"{demo.base}/api/orders",
        json={
            "order_type": "emergency",
            "account_id": account_id,
            "scheduled_date": demo.day,
            "reason": "customer reports a burst service line",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert made.status_code == 201, made.text
    order_id = made.json()["id"]
    page.fill("#emergency-what", account_number)
    page.click("button:has-text('Who gets it?')")
    preview = page.locator(".emergency-preview")
    preview.wait_for()
    _axe(page)
    _shot(page, demo, "13-emergency-preview", full_page=False)
    if preview.locator("button:has-text('Confirm and dispatch')").count():
        assert "gets it" in preview.inner_text()
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT status FROM work_orders WHERE id = :i"), {"i": order_id}).scalar()
                != "dispatched"
            )
        preview.locator("button:has-text('Confirm and dispatch')").click()
        page.wait_for_selector("#toast .ok:has-text('published')")
        page.wait_for_selector(f".stop[data-order='{order_id}']")
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT status FROM work_orders WHERE id = :i"), {"i": order_id}).scalar()
                == "dispatched"
            )
    else:  # e.g. run after the demo day's shifts ended: the reason is given, nothing changes
        assert "Nobody can take it today" in preview.inner_text()
    engine.dispose()
    page.context.close()


def test_wall_screen(chromium, demo):
    """On a 1920x1080 wall screen the board lays out timeline and map side by side with larger type."""
    page = _page(chromium, demo, "dispatcher", viewport=WALL)
    timeline = page.locator("#timeline").bounding_box()
    map_box = page.locator("#map").bounding_box()
    assert timeline is not None and map_box is not None
    assert map_box["x"] > timeline["x"] + timeline["width"] - 5  # side by side
    _axe(page)
    _shot(page, demo, "12-wall-screen", full_page=False)
    page.context.close()
