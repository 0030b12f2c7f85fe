"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy import text

from server import errors
from server.accounts.views import router as accounts_router
from server.adjustments.views import router as adjustments_router
from server.auth.views import router as auth_router
from server.deps import DbSession, check_request_input
from server.dispatch.views import router as dispatch_router
from server.handhelds.views import router as handhelds_router
from server.jobs.views import router as jobs_router
from server.meters.views import router as meters_router
from server.orders.generation_views import router as generation_router
from server.orders.views import router as orders_router
from server.results.views import router as results_router
from server.sync.views import router as sync_router
from server.technicians.views import router as technicians_router
from server.web import views as web

API_DESCRIPTION = """
Curbstop dispatch server. Sign in with `POST /api/auth/token` (OAuth2 password flow) or send an
API token (`cs_...`) as `Authorization: Bearer`. Every route names the roles that may call it.
Errors are JSON: `{"error": {"code", "message", "fields": [{"field", "message"}]}}`.
"""


def create_app(*, start_worker: bool | None = None) -> FastAPI:
    """Build the app with every feature's routes and the JSON error handlers.

    With `start_worker` (default: the `run_jobs_in_process` setting) the process also runs queued jobs.
    """
    from server.config import get_settings

    run_jobs = get_settings().run_jobs_in_process if start_worker is None else start_worker
    # A bad policy file stops the server here, naming the line and key, not at the first run.
    from server.orders.policy import current_policy

    current_policy()
    from server.adjustments.policy import current_adjustment_policy
    from server.adjustments.rates import current_rates

    current_rates()  # likewise a bad rates file or adjustment policy
    current_adjustment_policy()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threads = []
        if run_jobs:
            from server import db
            from server.jobs.service import WorkerThread
            from server.sync.runner import SyncThread, admin_from

            threads.append(WorkerThread(db.session_factory()))
            settings = get_settings()
            admin = admin_from(settings)
            if admin is not None:
                threads.append(SyncThread(db.session_factory(), admin, settings.resolved_secret_key()))
            for thread in threads:
                thread.start()
        yield
        for thread in threads:
            thread.stop()
            thread.join(timeout=10)

    app = FastAPI(
        title="Curbstop",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(check_request_input)],  # NUL characters and out-of-range ids, everywhere
    )
    errors.install(app)
    from server import security
    from server.auth.throttle import SignInThrottle

    security.install(app, get_settings())
    app.state.signin_throttle = SignInThrottle()  # this process's own counts (docs/security.md)
    for router in (
        auth_router,
        orders_router,
        technicians_router,
        accounts_router,
        meters_router,
        jobs_router,
        handhelds_router,
        dispatch_router,
        sync_router,
        generation_router,
        adjustments_router,
        results_router,
    ):
        app.include_router(router)

    web.install(app)  # the office pages (server/web): sign-in, the dispatcher's board, live events

    @app.get("/api/health", tags=["health"], summary="Liveness and database check. Anyone.")
    def health(db_session: DbSession) -> dict[str, str]:
        db_session.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
