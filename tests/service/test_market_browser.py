"""The public market page in a real browser with JavaScript switched off: Playwright drives
Debian's Chromium against a live uvicorn over the demo data (fixtures of test_browser.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from matcher.store.models import TechnologyRow
from tests.service.test_browser import browser, live_server, shot  # noqa: F401 - fixtures


def test_the_market_lists_licensable_technologies_and_hides_a_confidential_owner(
    browser: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    service_engine: Any,
) -> None:
    with service_engine.sessions() as session:
        secret = session.scalar(
            select(TechnologyRow)
            .where(TechnologyRow.confidential.is_(True), TechnologyRow.licensing.is_not(None))
            .order_by(TechnologyRow.id.desc())
            .limit(1)
        )
        field = secret.domains[0]
        public = session.scalar(
            select(TechnologyRow)
            .where(
                TechnologyRow.confidential.is_(False),
                TechnologyRow.licensing.is_not(None),
                TechnologyRow.owner != secret.owner,
            )
            .order_by(TechnologyRow.id.desc())
            .limit(1)
        )
        secret_id, secret_owner, secret_title = secret.id, secret.owner, secret.title
        public_title, public_owner = public.title, public.owner

    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    try:
        page.goto(f"{live_server}/market?lang=en")
        assert (
            page.get_by_role("heading", level=1).inner_text() == "Technologies open for licensing"
        )
        assert public_title in page.locator("#market-list").inner_text()
        # the filter is a plain GET form: choose the secret's field and submit
        page.get_by_label("Technology field").select_option(field)
        page.get_by_role("button", name="Show technologies").click()
        page.wait_for_load_state()
        assert f"domain={field}" in page.url.replace("%2E", ".")
        card = page.locator(f"#listing-{secret_id}")
        assert card.count() == 1, page.content()[:2000]
        text = card.inner_text()
        shot(page, "market-en")
        assert "confidential" in text.lower() and f"listing no. {secret_id}" in text.lower()
        assert secret_owner not in text and secret_title not in text
        assert card.locator(".owner").count() == 0
        # a public entry in the same listing names its owner
        owners = page.locator("#market-list .owner").all_inner_texts()
        assert owners and all(owners)
        page.goto(f"{live_server}/market?lang=zh&domain={field}")
        zh = page.locator(f"#listing-{secret_id}").inner_text()
        assert "保密" in zh and secret_owner not in zh
        page.goto(f"{live_server}/market?" + urlencode({"lang": "en", "q": public_title}))
        assert public_owner in page.locator("#market-list").inner_text()
    finally:
        context.close()
