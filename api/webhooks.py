"""Webhook delivery for the service: the engine's (``matcher.jobs.delivery``), with the
service's environment deciding whether loopback receivers are allowed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.config import get_api_settings
from matcher.jobs.delivery import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    payload,
    pinned_post,
    sign,
)
from matcher.jobs.delivery import deliver as deliver_now
from matcher.store.models import WebhookDeliveryRow

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "deliver",
    "payload",
    "pinned_post",
    "sign",
]


def deliver(
    factory: sessionmaker[Session],
    routed_id: int,
    *,
    development: bool | None = None,
    **options: Any,
) -> WebhookDeliveryRow | None:
    """Deliver one routed match now, retried in-line (``matcher.jobs.delivery.deliver``);
    ``development`` defaults to the process's ``MATCHER_API_ENVIRONMENT``."""
    if development is None:
        development = get_api_settings().development
    return deliver_now(factory, routed_id, development=development, **options)
