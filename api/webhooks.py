"""Webhook delivery: a routed match POSTed to the broker's URL, HMAC-signed, retried, recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from api.config import get_api_settings
from matcher.errors import InvalidInputError
from matcher.store.models import RoutedMatchRow, WebhookDeliveryRow
from matcher.store.repo import brokers as brokers_repo
from matcher.store.repo import deals as deals_repo
from matcher.webhook_policy import IPAddress, UnresolvableHostError, check_webhook_url

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-TechMatch-Signature"


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` HMAC of the raw body, as the receiver recomputes it."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def payload(routed: RoutedMatchRow) -> dict[str, Any]:
    """What a broker's webhook receives for one routed match."""
    return {
        "event": "match.routed",
        "routed_match_id": routed.id,
        "need_id": routed.need_id,
        "technology_id": routed.technology_id,
        "score": round(routed.score, 4),
        "components": routed.components,
        "explanation": routed.explanation,
        "explanations": routed.explanations or {"en": routed.explanation},
        "reason": routed.reason,
        "reasons": routed.reasons or {"en": routed.reason},
    }


def pinned_post(
    http: httpx.Client, url: str, address: IPAddress, *, body: bytes, headers: dict[str, str]
) -> httpx.Request:
    """A POST to ``url`` that connects to ``address`` (one the URL policy checked) instead of
    resolving the host again, which DNS may by now answer with an address inside (rebinding).
    The URL's host stays the request's Host header and TLS's name (SNI and the certificate).
    """
    target = httpx.URL(url)
    return http.build_request(
        "POST",
        target.copy_with(host=str(address)),
        content=body,
        headers={**headers, "Host": target.netloc.decode("ascii")},
        extensions={"sni_hostname": target.raw_host.decode("ascii")},
    )


def deliver(
    factory: sessionmaker[Session],
    routed_id: int,
    *,
    timeout: float = 5.0,
    retries: int = 4,
    backoff: float = 1.0,
    client: httpx.Client | None = None,
    development: bool | None = None,
) -> WebhookDeliveryRow | None:
    """POST one routed match to its broker's webhook with exponential back-off; record it.

    The URL is checked again before every attempt (``matcher.webhook_policy``: its host may
    point elsewhere by now) and the POST goes to an address that check passed, IPv4 first
    (``pinned_post``): a refused URL ends the delivery as failed with the reason, without a
    POST; a host that does not resolve is retried like a network error. ``development``
    (loopback receivers allowed) defaults to the process's ``MATCHER_API_ENVIRONMENT``.
    """
    if development is None:
        development = get_api_settings().development
    with factory() as session:
        routed = deals_repo.routed(session, routed_id)
        broker = deals_repo.broker(session, routed.broker_id) if routed else None
        if routed is None or broker is None or not broker.webhook_url:
            return None
        body = json.dumps(payload(routed), sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(broker.webhook_secret or "", body),
        }
        delivery = brokers_repo.add_delivery(
            session, broker_id=broker.id, routed_id=routed.id, url=broker.webhook_url
        )
        session.commit()
        own_client = client is None
        http = client or httpx.Client(timeout=timeout)
        try:
            for attempt in range(1, retries + 1):
                delivery.attempts = attempt
                try:
                    checked = check_webhook_url(broker.webhook_url, development=development)
                    address = min(checked, key=lambda a: a.version)
                    request = pinned_post(
                        http, broker.webhook_url, address, body=body, headers=headers
                    )
                    # httpx follows no redirect: a 3xx cannot lead the POST elsewhere
                    response = http.send(request)
                    delivery.last_status_code = response.status_code
                    if response.status_code < 300:
                        delivery.status = "delivered"
                        break
                    delivery.last_error = f"HTTP {response.status_code}"
                except UnresolvableHostError as exc:
                    delivery.last_error = str(exc)
                except InvalidInputError as exc:
                    log.warning("webhook of broker %s refused: %s", broker.ref, exc)
                    delivery.attempts = attempt - 1  # POSTs made
                    delivery.status, delivery.last_error = "failed", f"refused: {exc}"
                    break
                except httpx.HTTPError as exc:
                    delivery.last_error = f"{type(exc).__name__}: {exc}"
                session.commit()
                if attempt < retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
            else:
                delivery.status = "failed"
            session.commit()
            return delivery
        finally:
            if own_client:
                http.close()
