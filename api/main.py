"""The FastAPI application: JSON API under /api/v1, HTML forms, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from api import docs, errors, middleware, openapi, ratelimit
from api.config import ApiSettings, get_api_settings
from api.web import (
    analytics,
    broker_console,
    forms,
    market,
    operator_brokers,
    operator_console,
    track_edit,
    tracking,
)
from api.web.pages import mount_static
from api.worker import InlineWorker, Worker
from matcher import __version__
from matcher.engine import Engine
from matcher.follow import ChangeFollower


def create_app(engine: Engine | None = None, settings: ApiSettings | None = None) -> FastAPI:
    """Build the app around an engine (created from the environment when not given)."""
    api_settings = settings or get_api_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine or Engine()
        app.state.api_settings = api_settings
        worker_cls = Worker if api_settings.background_matching else InlineWorker
        app.state.worker = worker_cls(app.state.engine, api_settings)
        follower = None
        if api_settings.follow_interval_s > 0:  # other processes' writes, from the change log
            follower = ChangeFollower(
                app.state.engine.catalog,
                app.state.engine.settings.index_dir,
                interval_s=api_settings.follow_interval_s,
                checkpoint_s=api_settings.checkpoint_s,
                files=app.state.engine.files,
            )
            follower.start()
        yield
        if follower is not None:
            follower.stop()
        app.state.worker.stop()  # workers stop; queued jobs stay queued for the next start
        if engine is None:
            app.state.engine.close()

    app = FastAPI(
        title="TechMatch",
        version=__version__,
        lifespan=lifespan,
        description="Match technology supply to enterprise demand.",
        docs_url=None,  # api.docs serves /docs and /redoc with local assets
        redoc_url=None,
    )
    errors.register(app)
    openapi.install(app)
    ratelimit.install(app, api_settings)  # inside the guard, so 429s carry its headers too
    app.add_middleware(middleware.RequestGuard, settings=api_settings)

    @app.get("/health", tags=["health"])
    def health(request: Request) -> dict[str, object]:
        engine_ = request.app.state.engine
        return {
            "status": "ok",
            "version": __version__,
            "technologies": len(engine_.indexes["technologies"].index),
            "needs": len(engine_.indexes["needs"].index),
        }

    from api.routes import ROUTERS

    for router in [
        *ROUTERS,
        forms.router,
        tracking.router,
        track_edit.router,
        broker_console.router,
        operator_console.router,
        operator_brokers.router,
        market.router,
        analytics.router,
    ]:
        app.include_router(router)
    docs.install(app)  # before mount_static: /static/docs is answered ahead of /static
    mount_static(app)
    return app
