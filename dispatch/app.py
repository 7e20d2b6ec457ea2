"""create_app(): the one place that mounts every router (a composition root)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dispatch.accounts.api import router as accounts_router
from dispatch.console.api import router as console_router
from dispatch.console.board import router as console_board_router
from dispatch.console.hub import EventHub
from dispatch.core import health
from dispatch.core.audit_api import router as audit_router  # issue 6: the audit log for admins
from dispatch.core.collector import settle_collector
from dispatch.core.errors import ERROR_RESPONSES, install_error_handlers
from dispatch.core.hotpaths import HotPathsApp
from dispatch.core.middleware import SecurityHeaders
from dispatch.core.writer import WriteBatcher
from dispatch.elders.api import router as elders_router
from dispatch.field.api import router as field_router  # issue 4
from dispatch.matching.api import router as matching_router  # matching (issue 8): refused providers
from dispatch.notify.api import router as messages_router
from dispatch.orders.accepts import AcceptBatcher
from dispatch.orders.api import HOT_ROUTES
from dispatch.orders.api import router as orders_router
from dispatch.orders.batcher import IntakeBatcher
from dispatch.orders.candidates import router as candidates_router

# ---- issue 5: recurring services, welfare guarantee, statistics ----
from dispatch.plans.api import router as plans_router
from dispatch.stats.api import router as stats_router
from dispatch.visits.api import router as visits_router
from dispatch.visits.family_api import router as family_router  # issue 4
from dispatch.visits.records_api import router as visit_records_router  # issue 4
from dispatch.web.api import mount_static
from dispatch.web.api import router as web_router
from dispatch.welfare.api import router as welfare_router
from hotline.api import router as hotline_router
from services.api import router as providers_router

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    hub = EventHub()
    app.state.hub = hub
    intake = IntakeBatcher()
    app.state.intake = intake
    writer = WriteBatcher()
    app.state.writer = writer
    accepts = AcceptBatcher()
    app.state.accepts = accepts
    await hub.start()
    await intake.start()
    await writer.start()
    await accepts.start()
    settle_collector()  # what startup built stays for good: see core/collector.py
    try:
        yield
    finally:
        await accepts.stop()
        await writer.stop()
        await intake.stop()
        await hub.stop()


def create_app(*, hot_paths: bool = True) -> FastAPI:
    """The API. `hot_paths=False` serves every request through FastAPI alone (the hot paths'
    parity test compares the two)."""
    app = HotPathsApp(
        title="Jinghai elderly-care dispatch",
        version="0.1.0",
        description="Requests from elders and families, matched to day-care centers, canteens and home care.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    app.add_middleware(SecurityHeaders)

    for router in (
        health.router,
        accounts_router,
        elders_router,
        providers_router,
        orders_router,
        visits_router,
        messages_router,
        console_router,
        console_board_router,
        candidates_router,
        matching_router,
        hotline_router,
        audit_router,  # issue 6 (security)
        plans_router,  # issue 5
        welfare_router,  # issue 5
        stats_router,  # issue 5
        field_router,  # issue 4
        visit_records_router,  # issue 4
        family_router,  # issue 4
    ):
        app.include_router(router, responses=ERROR_RESPONSES)

    app.include_router(web_router)
    mount_static(app)
    if hot_paths:
        app.serve_hot(HOT_ROUTES)
    return app
