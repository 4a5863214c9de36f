"""The FastAPI application: JSON API under /api/v1, HTML forms, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.config import ApiSettings, get_api_settings
from api.worker import InlineWorker, Worker
from matcher import __version__
from matcher.deal import IllegalTransitionError
from matcher.engine import Engine, ImportRejectedError, NotFoundError
from matcher.ingest import ImportFormatError
from matcher.pipeline import InvalidQueryError


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err['msg']}")
    return "; ".join(parts)


def create_app(engine: Engine | None = None, settings: ApiSettings | None = None) -> FastAPI:
    """Build the app around an engine (created from the environment when not given)."""
    api_settings = settings or get_api_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine or Engine()
        app.state.api_settings = api_settings
        worker_cls = Worker if api_settings.background_matching else InlineWorker
        app.state.worker = worker_cls(app.state.engine, api_settings)
        yield
        app.state.worker.stop()
        if engine is None:
            app.state.engine.close()

    app = FastAPI(
        title="TechMatch",
        version=__version__,
        lifespan=lifespan,
        description="Match technology supply to enterprise demand.",
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {
                "detail": _validation_message(exc),
                "errors": jsonable_encoder(exc.errors(), custom_encoder={Exception: str}),
            },
            status_code=422,
        )

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidQueryError)
    async def _bad_query(_: Request, exc: InvalidQueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(IllegalTransitionError)
    async def _illegal(_: Request, exc: IllegalTransitionError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(ImportRejectedError)
    async def _rejected(_: Request, exc: ImportRejectedError) -> JSONResponse:
        return JSONResponse(
            {
                "detail": str(exc).splitlines()[0],
                "errors": [{"line": e.line, "message": e.message} for e in exc.errors],
            },
            status_code=422,
        )

    @app.exception_handler(ImportFormatError)
    async def _format(_: Request, exc: ImportFormatError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

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

    for router in ROUTERS:
        app.include_router(router)
    return app
