"""The OpenAPI consoles, /docs (Swagger UI) and /redoc (ReDoc), working without internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank offline. Here the
same pages (FastAPI's ``get_swagger_ui_html`` and ``get_redoc_html``) load them from this
service: the ``fastapi-offline`` package ships the swagger-ui-dist bundle and stylesheet, ReDoc's
standalone bundle and FastAPI's favicon, and its folder is mounted at ``/static/docs``. Nothing
is copied into this repository; upgrading the package upgrades the consoles.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"
SWAGGER_JS = f"{ASSETS_URL}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS_URL}/swagger-ui.css"
REDOC_JS = f"{ASSETS_URL}/redoc.standalone.js"
FAVICON = f"{ASSETS_URL}/favicon.png"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def assets_dir() -> Path:
    """The folder of the ``fastapi_offline`` package that holds the consoles' files."""
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Serve the assets at ``/static/docs`` and the consoles at /docs and /redoc.

    The app must be built with ``docs_url=None, redoc_url=None``; call this before the site's
    ``/static`` mount, which would otherwise answer ``/static/docs/...`` first.
    """
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")  # behind a proxy that adds a prefix
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=root + SWAGGER_JS,
            swagger_css_url=root + SWAGGER_CSS,
            swagger_favicon_url=root + FAVICON,
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            # no badge that sends the document to the public validator
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=root + REDOC_JS,
            redoc_favicon_url=root + FAVICON,
            with_google_fonts=False,
        )
