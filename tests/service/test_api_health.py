"""The service starts on the demo data and reports its health."""

from __future__ import annotations


def test_health(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["technologies"] == 300 and body["needs"] == 80


def test_auth_is_required(client) -> None:  # type: ignore[no-untyped-def]
    from fastapi import APIRouter  # noqa: F401  (keeps the import surface honest)

    response = client.get("/api/v1/brokers/me/inbox")
    assert response.status_code in (401, 404)
