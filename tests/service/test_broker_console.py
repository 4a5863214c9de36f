"""The broker console (/broker): sign-in with a token, the inbox, claims and verdicts, the deal
board with notes and due dates, search — over HTTP and in a real browser (Debian's Chromium)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from matcher.store.models import ApiTokenRow, BrokerRow, DealRow, RoutedMatchRow
from tests.conftest import issue
from tests.service.test_api_brokers import first_routed
from tests.service.test_browser import browser, live_server, shot  # noqa: F401 (fixtures)
from tests.service.test_forms import csrf_of


def sign_in(client: Any, token: str) -> Any:
    page = client.get("/broker/login?lang=en")
    return client.post(
        "/broker/login?lang=en",
        data={"csrf_token": csrf_of(page.text), "token": token},
        follow_redirects=False,
    )


def post(client: Any, page: Any, path: str, **data: str) -> Any:
    return client.post(
        path, data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False
    )


def test_a_broker_works_the_inbox_and_the_deal_board(
    client: Any, service_engine: Any, api_settings: Any
) -> None:
    ref, rid = first_routed(service_engine, api_settings)
    assert (
        client.get("/broker", follow_redirects=False)
        .headers["location"]
        .startswith("/broker/login")
    )
    assert sign_in(client, "tm_b_not-a-token").status_code == 401
    assert sign_in(client, issue(service_engine, "admin")).status_code == 401  # brokers only
    token = issue(service_engine, "broker", ref)
    signed = sign_in(client, token)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "tm_broker=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()

    inbox = client.get("/broker?lang=en")
    assert inbox.status_code == 200 and f'id="item-{rid}"' in inbox.text
    item = inbox.text[inbox.text.index(f'id="item-{rid}"') :]
    assert "Why it matches:" in item and "Why it came to you:" in item
    assert "同一" not in item  # the English page explains in English
    assert "原因" in client.get("/broker?lang=zh").text  # and the Chinese one in Chinese

    # a form without its CSRF token does nothing
    forged = client.post(f"/broker/inbox/{rid}/claim", data={}, follow_redirects=False)
    assert forged.status_code == 400
    claimed = post(client, inbox, f"/broker/inbox/{rid}/claim?lang=en")
    assert claimed.status_code == 303 and "/broker/deals" in claimed.headers["location"]
    with service_engine.sessions() as session:
        deal = session.scalars(select(DealRow).where(DealRow.routed_id == rid)).one()
        routed = session.get(RoutedMatchRow, rid)
        assert routed.state == "claimed"
    board = client.get("/broker/deals?lang=en")
    column = board.text[
        board.text.index('id="stage-claimed"') : board.text.index('id="stage-contacted"')
    ]
    assert f'id="deal-{deal.id}"' in column
    assert "Enterprise" in column and "Technology owner" in column  # the parties, now theirs

    moved = post(client, board, f"/broker/deals/{deal.id}/stage?lang=en", to="contacted")
    assert moved.status_code == 303
    skip = post(client, board, f"/broker/deals/{deal.id}/stage?lang=en", to="agreed")
    assert skip.status_code == 409 and "cannot move a deal from contacted to agreed" in skip.text
    noted = post(client, board, f"/broker/deals/{deal.id}/note?lang=en", note="called the CTO")
    assert noted.status_code == 303
    past = (date.today() - timedelta(days=3)).isoformat()
    assert post(client, board, f"/broker/deals/{deal.id}/due", due_on=past).status_code == 422
    soon = (date.today() + timedelta(days=7)).isoformat()
    assert post(client, board, f"/broker/deals/{deal.id}/due", due_on=soon).status_code == 303
    board = client.get("/broker/deals?lang=en").text
    card = board[board.index(f'id="deal-{deal.id}"') :]
    assert "called the CTO" in card and f"Due {soon}" in card
    # a deal whose due date has passed stands out
    with service_engine.sessions() as session:
        session.get(DealRow, deal.id).due_on = date.today() - timedelta(days=1)
        session.commit()
    board_page = client.get("/broker/deals?lang=en")
    board = board_page.text
    assert 'id="overdue-count"' in board and re.search(
        rf'class="card overdue" id="deal-{deal.id}"', board
    )

    # a contract is recorded on an agreed deal only, and a bad one is refused with the reason
    early = post(
        client,
        board_page,
        f"/broker/deals/{deal.id}/contract",
        type="licence",
        value="10",
        currency="CNY",
        signed_on=date.today().isoformat(),
        parties="A; B",
    )
    assert early.status_code == 409
    found = client.get("/broker/search?lang=en&q=battery+recycling&target=technologies")
    assert found.status_code == 200 and 'id="result-1"' in found.text

    # a revoked token signs the broker out at once
    with service_engine.sessions() as session:
        for row in session.scalars(select(ApiTokenRow).where(ApiTokenRow.revoked.is_(False))):
            row.revoked = True
        session.commit()
    assert client.get("/broker", follow_redirects=False).status_code == 303


def test_another_brokers_item_is_not_found(
    client: Any, service_engine: Any, api_settings: Any
) -> None:
    ref, rid = first_routed(service_engine, api_settings)
    with service_engine.sessions() as session:
        other = session.scalars(select(BrokerRow).where(BrokerRow.ref != ref)).first()
        assert other is not None
    sign_in(client, issue(service_engine, "broker", other.ref))
    inbox = client.get("/broker?lang=en")
    assert post(client, inbox, f"/broker/inbox/{rid}/claim").status_code == 404


def test_a_broker_claims_and_agrees_a_deal_in_a_real_browser(
    browser: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    service_engine: Any,
    api_settings: Any,
) -> None:
    ref, rid = first_routed(service_engine, api_settings)
    token = issue(service_engine, "broker", ref)
    page = browser.new_page()
    try:
        page.goto(f"{live_server}/broker?lang=en")
        assert "/broker/login" in page.url
        page.get_by_label("Your broker token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/broker\?lang=en"))
        page.locator(f"#claim-{rid}").click()
        page.wait_for_url(re.compile(r"/broker/deals"))
        with service_engine.sessions() as session:
            deal = session.scalars(select(DealRow).where(DealRow.routed_id == rid)).one()
        for stage in ("contacted", "nda_signed", "negotiating", "agreed"):
            card = page.locator(f"#deal-{deal.id}")
            card.locator(f"#to-{deal.id}").select_option(stage)
            card.locator(f"#move-{deal.id}").click()
            page.wait_for_selector("#done")
        agreed = page.locator("#stage-agreed")
        assert agreed.locator(f"#deal-{deal.id}").count() == 1
        # the contract registration: type, value, currency, signing date, parties
        card = page.locator(f"#deal-{deal.id}")
        card.get_by_label("Contract type").select_option("licence")
        card.get_by_label("Value").fill("1,250,000")
        card.get_by_label("Currency").fill("CNY")
        card.locator(f"#record-{deal.id}").click()
        page.wait_for_selector(f"#contract-{deal.id}")
        assert "1,250,000.00 CNY" in page.locator(f"#contract-{deal.id}").inner_text()
        shot(page, "broker-console-agreed")
    finally:
        page.close()
    with service_engine.sessions() as session:
        row = session.get(DealRow, deal.id)
        assert (row.stage, row.contract_type, row.contract_value) == ("agreed", "licence", 1250000)
        assert row.contract_currency == "CNY" and row.signed_on == date.today()
