"""Webhook delivery: a routed match POSTed to the broker's URL, HMAC-signed, recorded.

Each delivery has a delivery id (a UUID, one per routed match and broker) and each POST a
timestamp, both in the signed body and in headers, so that a receiver can drop replays and
stale copies. ``attempt`` makes one POST (a job run); ``deliver`` retries in-line (tools).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from matcher.errors import InvalidInputError
from matcher.store.models import BrokerRow, RoutedMatchRow, WebhookDeliveryRow
from matcher.store.repo import deals as deals_repo
from matcher.store.repo import jobs as jobs_repo
from matcher.webhook_policy import IPAddress, UnresolvableHostError, check_webhook_url

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-TechMatch-Signature"
DELIVERY_HEADER = "X-TechMatch-Delivery"
TIMESTAMP_HEADER = "X-TechMatch-Timestamp"
DELIVERED, FAILED, PENDING = "delivered", "failed", "pending"


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` HMAC of the raw body, as the receiver recomputes it."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def payload(
    routed: RoutedMatchRow, *, delivery_id: str | None = None, timestamp: str | None = None
) -> dict[str, Any]:
    """What a broker's webhook receives for one routed match."""
    body = {
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
    if delivery_id is not None:
        body["delivery_id"] = delivery_id
    if timestamp is not None:
        body["timestamp"] = timestamp
    return body


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


def attempt(
    session: Session,
    delivery: WebhookDeliveryRow,
    *,
    http: httpx.Client,
    development: bool,
) -> bool | None:
    """One POST of a delivery, recorded on its row (not committed): True delivered, False
    refused by the URL policy (final, no POST made), None failed (worth another try).

    The URL is checked again before every POST (``matcher.webhook_policy``: its host may point
    elsewhere by now) and the POST goes to an address that check passed, IPv4 first.
    """
    routed = deals_repo.routed(session, delivery.routed_id)
    broker = session.get(BrokerRow, delivery.broker_id)
    if routed is None or broker is None or not broker.webhook_url:
        delivery.status, delivery.last_error = FAILED, "no webhook any more"
        return False
    delivery.url = broker.webhook_url
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    body = json.dumps(
        payload(routed, delivery_id=delivery.delivery_id, timestamp=stamp), sort_keys=True
    ).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(broker.webhook_secret or "", body),
        DELIVERY_HEADER: delivery.delivery_id,
        TIMESTAMP_HEADER: stamp,
    }
    try:
        checked = check_webhook_url(broker.webhook_url, development=development)
    except UnresolvableHostError as exc:
        delivery.last_error = str(exc)
        return None
    except InvalidInputError as exc:
        log.warning("webhook of broker %s refused: %s", broker.ref, exc)
        delivery.status, delivery.last_error = FAILED, f"refused: {exc}"
        return False
    delivery.attempts += 1
    address = min(checked, key=lambda a: a.version)
    request = pinned_post(http, broker.webhook_url, address, body=body, headers=headers)
    try:
        # httpx follows no redirect: a 3xx cannot lead the POST elsewhere
        response = http.send(request)
    except httpx.HTTPError as exc:
        delivery.last_error = f"{type(exc).__name__}: {exc}"
        return None
    delivery.last_status_code = response.status_code
    if response.status_code < 300:
        delivery.status = DELIVERED
        return True
    delivery.last_error = f"HTTP {response.status_code}"
    return None


def deliver(
    factory: sessionmaker[Session],
    routed_id: int,
    *,
    development: bool,
    timeout: float = 5.0,
    retries: int = 4,
    backoff: float = 1.0,
    client: httpx.Client | None = None,
) -> WebhookDeliveryRow | None:
    """Deliver one routed match now, retrying in-line with exponential back-off (the jobs
    retry through their queue instead); the delivery is the routed match's one delivery
    (same delivery id), started over. None when its broker has no webhook."""
    with factory() as session:
        routed = deals_repo.routed(session, routed_id)
        broker = session.get(BrokerRow, routed.broker_id) if routed else None
        if routed is None or broker is None or not broker.webhook_url:
            return None
        delivery, _ = jobs_repo.open_delivery(
            session, routed_id=routed.id, broker_id=broker.id, url=broker.webhook_url
        )
        delivery.status, delivery.attempts, delivery.last_error = PENDING, 0, None
        session.commit()
        own_client = client is None
        http = client or httpx.Client(timeout=timeout)
        try:
            for tried in range(1, retries + 1):
                outcome = attempt(session, delivery, http=http, development=development)
                session.commit()
                if outcome is not None:
                    break
                if tried < retries:
                    time.sleep(backoff * 2 ** (tried - 1))
            else:
                delivery.status = FAILED
            session.commit()
            return delivery
        finally:
            if own_client:
                http.close()
