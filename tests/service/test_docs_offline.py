"""The OpenAPI consoles without internet: /docs and /redoc load Swagger UI and ReDoc from the
service itself (``api/docs.py``, files of the ``fastapi-offline`` package).

The browser tests drive Debian's Chromium against a live uvicorn (the fixtures of
``test_browser.py``, skipped there with the reason when the browser is missing) and abort every
request that does not go to 127.0.0.1, as a machine without internet would.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from api import docs
from tests.service import test_browser as in_browser

browser = in_browser.browser  # the same fixtures as the forms' browser test
live_server = in_browser.live_server

ASSETS = {
    docs.SWAGGER_JS: "text/javascript",
    docs.SWAGGER_CSS: "text/css",
    docs.REDOC_JS: "text/javascript",
    docs.FAVICON: "image/png",
}
LOCAL_SCHEMES = ("data", "blob")  # made in the page, no request leaves it
WAIT_MS = 30_000
SEARCH_SECTION = "tag/search/operation/search_api_v1_search_post"  # ReDoc's id of POST /search


def test_the_consoles_assets_are_served_by_the_app(client: Any) -> None:
    for url, content_type in ASSETS.items():
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].split(";")[0] == content_type, url
        assert len(answer.content) > 1000, url
    for page, assets in (
        ("/docs", [docs.SWAGGER_JS, docs.SWAGGER_CSS]),
        ("/redoc", [docs.REDOC_JS]),
    ):
        answer = client.get(page)
        assert answer.status_code == 200
        for asset in [*assets, docs.FAVICON]:
            assert f'"{asset}"' in answer.text, (page, asset)
        assert not re.search(r"(src|href)=\"https?:", answer.text), page  # no CDN, no fonts
        assert "https:" not in answer.headers["content-security-policy"], page
    assert client.get("/docs/oauth2-redirect").status_code == 200


class Offline:
    """A browser page that can reach only 127.0.0.1: every other request is aborted and kept."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.requested: list[str] = []
        self.off_host: list[str] = []  # what the guard aborted: it would have left the machine
        self.refused_by_page: set[str] = set()  # what the page's CSP stopped in the browser
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.on("requestfailed", self._failed)

    def _failed(self, request: Any) -> None:
        if request.failure == "csp":
            self.refused_by_page.add(request.url)

    def _guard(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.off_host.append(url)
            route.abort()

    def left_the_host(self) -> list[str]:
        """Every request sent elsewhere, whether the guard saw it or only the page did.

        ReDoc's sidebar shows Redocly's logo from its CDN; the consoles' Content-Security-Policy
        (``api.middleware.DOCS_POLICY``) refuses it inside the browser, so it is no request
        off the machine (and the guard never sees it)."""
        self.page.wait_for_load_state("networkidle")  # every answer and refusal is in
        elsewhere = [
            url
            for url in self.requested
            if urlsplit(url).scheme not in LOCAL_SCHEMES
            and urlsplit(url).hostname != "127.0.0.1"
            and url not in self.refused_by_page
        ]
        return sorted({*self.off_host, *elsewhere})

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def offline(browser: Any) -> Any:
    page = Offline(browser)
    yield page
    page.close()


def test_swagger_ui_renders_offline(offline: Offline, live_server: str) -> None:
    page = offline.page
    page.goto(f"{live_server}/docs")
    search = page.locator('.opblock-post [data-path="/api/v1/search"]')
    search.wait_for(state="visible", timeout=WAIT_MS)
    assert page.locator(".information-container .title").inner_text().startswith("TechMatch")
    assert page.locator(".opblock").count() > 20  # every operation of the API, not one
    in_browser.shot(page, "docs-offline")
    assert offline.left_the_host() == []
    assert f"{live_server}{docs.SWAGGER_JS}" in offline.requested


def test_redoc_renders_offline(offline: Offline, live_server: str) -> None:
    page = offline.page
    page.goto(f"{live_server}/redoc")
    title = page.locator("h1", has_text="TechMatch")
    title.wait_for(state="visible", timeout=WAIT_MS)
    operation = page.locator(f'[data-section-id="{SEARCH_SECTION}"]')
    operation.locator("h2").wait_for(state="visible", timeout=WAIT_MS)
    assert operation.locator("h2").inner_text().strip() == "Search"
    assert "/api/v1/search" in operation.inner_text()
    assert page.locator("[data-section-id]").count() > 20
    in_browser.shot(page, "redoc-offline")
    assert offline.left_the_host() == []
    assert f"{live_server}{docs.REDOC_JS}" in offline.requested
