"""The app factory: settings in, a Litestar app out."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.config.response_cache import ResponseCacheConfig
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from app.config import PROJECT_ROOT, Settings, load_settings
from app.domain.accounts.controllers import AccountController
from app.domain.admin.controllers import AdminController
from app.domain.analytics.controllers import CreatorAnalyticsController
from app.domain.api.controllers import SECURITY_SCHEME, api_router
from app.domain.api.web import ApiTokenController
from app.domain.events.controllers import EventController
from app.domain.feed.controllers import FeedController
from app.domain.interactions.controllers import InteractionController
from app.domain.pages.controllers import PagesController
from app.domain.pages.profile import ProfileController
from app.domain.pages.semantic import semantic_search_for
from app.domain.privacy.controllers import SettingsController
from app.domain.sounds.controllers import SoundController
from app.domain.system.controllers import HealthController
from app.domain.videos.controllers import MediaController, StudioController
from app.server.errors import http_exception_handler, internal_error_handler
from app.server.guards import LoginRequired, login_required_handler
from app.server.limits import JsonBodyLimitMiddleware
from app.server.logs import AccessLogMiddleware, configure_logging
from app.server.ratelimit import BeaconGateMiddleware
from app.server.security import AllowedHostsMiddleware, add_security_headers
from app.server.services import Services
from app.server.templating import make_environment
from app.server.web_session import SessionMiddleware
from media.models.registry import ModelRegistry

log = logging.getLogger("foryou")
STATIC_DIR = PROJECT_ROOT / "static"


def create_app(settings: Settings | None = None, models: ModelRegistry | None = None) -> Litestar:
    """``models`` lets tests install a registry (e.g. with a tiny random CLIP) instead of the configured one."""
    settings = settings or load_settings()
    settings.ensure_dirs()
    services = Services.build(settings, models=models)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services.hold_data_dir()
        if settings.run_migrations_on_start:
            from app.db.migrate import upgrade  # alembic only where it runs

            # Alembic's environment runs its own event loop, so it gets a thread of its own.
            await asyncio.to_thread(upgrade, settings)
        await services.start(worker=settings.worker_in_serve, scheduler=settings.scheduler_in_serve)
        # Everything built at start-up (models, the recommender's state, compiled statements) lives as long as the
        # process: out of the collector's generations, so a full collection no longer walks it (ingest CPU -40%).
        gc.collect()
        gc.freeze()
        log.info("foryou started", extra={"data_dir": str(settings.data_dir.resolve())})
        try:
            yield
        finally:
            await services.stop()

    # The HTML app (and its own JSON endpoints for the pages) stays out of the OpenAPI schema: /schema documents
    # the public API, /api/v1.
    pages = Router(path="/", include_in_schema=False, route_handlers=[
            FeedController,
            InteractionController,
            PagesController,
            ProfileController,
            AccountController,
            EventController,
            HealthController,
            MediaController,
            StudioController,
            AdminController,
            CreatorAnalyticsController,
            SettingsController,
            ApiTokenController,
            SoundController,
            create_static_files_router(path="/static", directories=[STATIC_DIR], cache_control=None,
                                       include_in_schema=False),
        ])
    app = Litestar(
        route_handlers=[pages, api_router(settings.api_rate_per_second)],
        openapi_config=OpenAPIConfig(
            title="ForYou API", version="1", path="/schema",
            description="Recommendations, videos, events, likes, follows and search. Authenticate with a personal "
                        "access token from /settings/tokens: `Authorization: Bearer fy_...`.",
            components=Components(security_schemes={SECURITY_SCHEME: SecurityScheme(
                type="http", scheme="bearer", description="A personal access token (scopes: read, write).")}),
        ),
        middleware=[
            BeaconGateMiddleware(services.beacon_limits),  # held flooders refused before body, JSON or session
            JsonBodyLimitMiddleware(),
            SessionMiddleware(services.sessions, settings.secure_cookies),
        ],
        before_send=[add_security_headers],
        logging_config=None,  # logging is configured once by configure_logging, not replaced by Litestar's
        exception_handlers={HTTPException: http_exception_handler, LoginRequired: login_required_handler,
                            500: internal_error_handler},
        dependencies=services.dependencies(),
        lifespan=[lifespan],
        response_cache_config=ResponseCacheConfig(),
        debug=False,
    )
    # Outermost, around Litestar's router: unrouted 404/405 answers are host-checked and logged too.
    app.asgi_handler = AccessLogMiddleware()(AllowedHostsMiddleware(settings.resolved_allowed_hosts)(app.asgi_handler))
    app.state.settings = settings
    app.state.services = services
    app.state.jinja = make_environment()
    app.state.semantic_search = semantic_search_for(services.vectors, services.models)
    return app


def create_app_from_env() -> Litestar:
    """Entry point for ``uvicorn --factory``."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
