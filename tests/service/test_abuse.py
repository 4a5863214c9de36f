"""Abuse: the forms' hidden spam trap, rate limits on forms and tokens, where webhooks may go."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.config import ApiSettings
from api.main import create_app
from api.webhooks import deliver
from matcher.store.models import BrokerRow, NeedRow, RoutedMatchRow, TechnologyRow
from tests.service.test_forms import GOOD_NEED, GOOD_TECHNOLOGY, post_form

API = "/api/v1"


def count(engine: Any, model: Any) -> int:
    with engine.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def tight_client(service_engine: Any) -> Iterator[TestClient]:
    """A client of an app that takes 2 form submissions a minute and 3 requests per token."""
    settings = ApiSettings(background_matching=False, form_rate="2/minute", token_rate="3/minute")
    with TestClient(create_app(service_engine, settings)) as client:
        yield client


# -- the hidden field ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/needs/new", "/technologies/new"])
def test_forms_carry_a_hidden_field_for_bots(client: Any, path: str) -> None:
    page = client.get(path).text
    field = re.search(r'<div class="field hp-field">.*?</div>', page, re.S)
    assert field, "no hidden field"
    assert 'name="website"' in field.group(0) and 'value=""' in field.group(0)
    assert 'autocomplete="off"' in field.group(0) and 'tabindex="-1"' in field.group(0)
    assert "Leave this field empty" in field.group(0)
    assert "请勿填写此栏" in client.get(f"{path}?lang=zh").text
    assert ".hp-field" in client.get("/static/style.css").text


@pytest.mark.parametrize(
    ("path", "record", "model"),
    [("/needs/new", GOOD_NEED, NeedRow), ("/technologies/new", GOOD_TECHNOLOGY, TechnologyRow)],
)
def test_a_filled_hidden_field_is_dropped_silently(
    client: Any,
    service_engine: Any,
    caplog: pytest.LogCaptureFixture,
    path: str,
    record: dict[str, Any],
    model: Any,
) -> None:
    before = count(service_engine, model)
    with caplog.at_level(logging.WARNING, logger="api.web.forms"):
        response = post_form(client, path, {**record, "website": "http://spam.example"})
    # answered like an accepted submission …
    assert response.status_code == 303
    done = client.get(response.headers["location"])
    assert done.status_code == 200 and 'id="tracking-link"' in done.text
    # … but nothing is stored, and the drop is logged
    assert count(service_engine, model) == before
    assert any("hidden field filled" in r.getMessage() for r in caplog.records)
    # the same submission without the trap is stored
    assert post_form(client, path, record).status_code == 303
    assert count(service_engine, model) == before + 1


# -- rate limits ---------------------------------------------------------------------------
def test_form_submissions_per_client_are_limited(tight_client: Any, service_engine: Any) -> None:
    before = count(service_engine, NeedRow)
    for _ in range(2):
        assert post_form(tight_client, "/needs/new", GOOD_NEED).status_code == 303
    refused = post_form(tight_client, "/needs/new?lang=zh", GOOD_NEED)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "text/html" in refused.headers["content-type"]
    assert "提交过于频繁" in refused.text
    assert count(service_engine, NeedRow) == before + 2
    # the other form counts against the same address; reading the forms is not limited
    assert post_form(tight_client, "/technologies/new", GOOD_TECHNOLOGY).status_code == 429
    assert tight_client.get("/needs/new").status_code == 200
    # a bot that fills the hidden field is counted too
    assert post_form(tight_client, "/needs/new", {"website": "x"}).status_code == 429


def test_api_requests_per_token_are_limited(
    tight_client: Any, broker_headers: Any, admin_headers: Any
) -> None:
    broker = broker_headers("B-01")
    for _ in range(3):
        assert tight_client.get(f"{API}/brokers/me", headers=broker).status_code == 200
    refused = tight_client.get(f"{API}/brokers/me", headers=broker)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "at most 3 per 1 minute" in refused.json()["detail"]
    assert refused.headers["x-content-type-options"] == "nosniff"  # the guard's headers too
    # each token has its own count; requests without a token are not counted here
    assert tight_client.get(f"{API}/admin/brokers", headers=admin_headers).status_code == 200
    assert tight_client.get("/health").status_code == 200


def test_rates_are_checked_when_read() -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        ApiSettings(form_rate="lots")


# -- webhook URLs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.5/", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::ffff:192.168.0.1]/hook", "private"),
        ("http://example.org/hook", "https://"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_webhook_urls_inside_are_refused(
    client: Any, broker_headers: Any, url: str, reason: str
) -> None:
    headers = broker_headers("B-01")
    response = client.put(
        f"{API}/brokers/me/webhook", json={"url": url, "secret": "s" * 20}, headers=headers
    )
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    assert client.get(f"{API}/brokers/me", headers=headers).json()["webhook_url"] is None


def test_loopback_webhooks_only_in_development(service_engine: Any, broker_headers: Any) -> None:
    hook = {"url": "http://127.0.0.1:9/hook", "secret": "s" * 20}
    for environment, status in [("development", 200), ("production", 422)]:
        settings = ApiSettings(
            background_matching=False, environment=environment, secret_key="k" * 32
        )
        with TestClient(create_app(service_engine, settings)) as client:
            response = client.put(
                f"{API}/brokers/me/webhook", json=hook, headers=broker_headers("B-01")
            )
            assert response.status_code == status, response.text


def test_delivery_checks_the_url_again(service_engine: Any) -> None:
    """A URL that points inside by the time of delivery (DNS rebinding): no POST, failed."""
    routed_id = None
    with service_engine.sessions() as session:
        need_ids = list(session.scalars(select(NeedRow.id).order_by(NeedRow.id)))
    for need_id in need_ids:
        routed = service_engine.match_and_route(need_id).routed_ids
        if routed:
            routed_id = routed[0]
            break
    assert routed_id is not None
    with service_engine.sessions() as session:
        broker = session.get(BrokerRow, session.get(RoutedMatchRow, routed_id).broker_id)
        broker.webhook_url, broker.webhook_secret = "https://10.0.0.5/hook", "s" * 20
        session.commit()
    posted: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: posted.append(r) or httpx.Response(204))
    with httpx.Client(transport=transport) as http:
        delivery = deliver(
            service_engine.sessions, routed_id, retries=3, backoff=0, client=http, development=True
        )
        assert delivery is not None
        assert delivery.status == "failed" and delivery.attempts == 0
        assert delivery.last_error and delivery.last_error.startswith("refused: ")
        assert "10.0.0.5 is a private address" in delivery.last_error
        assert posted == []
        # a loopback receiver is fine in development, refused in production
        with service_engine.sessions() as session:
            session.get(BrokerRow, broker.id).webhook_url = "http://127.0.0.1:9/hook"
            session.commit()
        ok = deliver(service_engine.sessions, routed_id, client=http, development=True)
        assert ok is not None and ok.status == "delivered" and len(posted) == 1
        refused = deliver(service_engine.sessions, routed_id, client=http, development=False)
        assert refused is not None and refused.status == "failed" and len(posted) == 1
