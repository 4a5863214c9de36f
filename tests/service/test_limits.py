"""Limits through the service: every oversized or unstorable input is a 4xx that says what to
fix, answered at once, never a 500 (issue 12)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.config import ApiSettings
from matcher.limits import MAX_ID
from tests.service.test_api_brokers import first_routed

API = "/api/v1"
NEED: dict[str, Any] = {
    "enterprise": "Battery Works Ltd",
    "title": "Safer battery cells",
    "description": "We need a non-flammable electrolyte for our lithium-ion battery cells.",
    "domains": ["04"],
    "trl_min": 4,
    "region_scope": "national",
    "home_region": "CN-JS",
}
TECHNOLOGY: dict[str, Any] = {
    "title": "Solid-state battery electrolyte",
    "description": "A sulfide electrolyte for solid-state lithium batteries at room temperature.",
    "owner": "Institute of Physics",
    "domains": ["04"],
    "trl": 5,
    "region": "CN-BJ",
}


def raw_json(client, path: str, body: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    """POST a body as written (Python's json writes NaN, but not a lone surrogate escape)."""
    return client.post(
        path, content=body.encode(), headers={**headers, "content-type": "application/json"}
    )


def error_types(response) -> list[tuple[str, list[Any]]]:  # type: ignore[no-untyped-def]
    return [(e["type"], e["loc"]) for e in response.json().get("errors", [])]


# -- sizes -----------------------------------------------------------------------------------
def test_a_megabyte_keyword_is_refused_at_once(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    answer = client.post(
        f"{API}/technologies",
        json={**TECHNOLOGY, "keywords": ["k" * 1_000_000]},
        headers=admin_headers,
    )
    assert answer.status_code == 422, answer.text[:300]
    assert ("string_too_long", ["body", "keywords", 0]) in error_types(answer)
    assert "at most 100 characters" in answer.json()["detail"]
    assert time.monotonic() - started < 5
    assert len(answer.content) < 10_000  # the megabyte is not echoed back


def test_lists_have_a_count(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(
        f"{API}/needs", json={**NEED, "domains": ["04"] * 50_000}, headers=admin_headers
    )
    assert answer.status_code == 422
    assert ("too_long", ["body", "domains"]) in error_types(answer)
    assert "at most 20 items" in answer.json()["detail"]
    search = client.post(
        f"{API}/search", json={"text": "battery", "domains": ["04"] * 21}, headers=admin_headers
    )
    assert search.status_code == 422


def test_body_and_url_limits(service_engine, admin_headers) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app

    settings = ApiSettings(
        background_matching=False, max_body_bytes=10_000, max_upload_bytes=50_000
    )
    with TestClient(create_app(service_engine, settings)) as client:
        big = client.post(
            f"{API}/technologies",
            json={**TECHNOLOGY, "description": "d" * 20_000},
            headers=admin_headers,
        )
        assert big.status_code == 413
        assert "at most 10,000 bytes" in big.json()["detail"]
        # without a Content-Length the body is counted as it streams
        chunks = iter([b'{"text": "', b"x" * 6_000, b"x" * 6_000, b'"}'])
        streamed = client.post(
            f"{API}/search",
            content=chunks,
            headers={**admin_headers, "content-type": "application/json"},
        )
        assert streamed.status_code == 413
        # an import upload may be as large as max_upload_bytes, not max_body_bytes
        line = json.dumps({**TECHNOLOGY, "id": "T-LIMIT-1"}) + "\n"
        upload = client.post(
            f"{API}/technologies/import",
            files={"file": ("batch.jsonl", line + " " * 30_000, "application/x-ndjson")},
            headers=admin_headers,
        )
        assert upload.status_code == 200, upload.text
        too_big = client.post(
            f"{API}/technologies/import",
            files={"file": ("batch.jsonl", line + " " * 200_000, "application/x-ndjson")},
            headers=admin_headers,
        )
        assert too_big.status_code == 413
        long_url = client.get(f"{API}/technologies?q={'x' * 9_000}", headers=admin_headers)
        assert long_url.status_code == 414 and "at most 8,192" in long_url.json()["detail"]


# -- numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        f"{API}/technologies/{2**63}",
        f"{API}/needs/{2**63}/matches",
        f"{API}/deals/{2**63}",
        f"{API}/brokers/me/inbox/{2**63}",
        f"{API}/admin/brokers/{2**63}",
        f"{API}/technologies?offset={2**63}",
        f"{API}/needs?offset={2**63}",
        f"{API}/deals?offset={2**63}",
        f"{API}/admin/unrouted?offset={2**63}",
        f"{API}/technologies/%C2%B2",  # ² is a digit, but not an id
    ],
)
def test_ids_and_offsets_past_64_bits(client, admin_headers, broker_headers, path) -> None:  # type: ignore[no-untyped-def]
    headers = broker_headers("B-01") if "/me/" in path else admin_headers
    answer = client.get(path, headers=headers)
    assert answer.status_code in (404, 422), answer.text
    assert str(MAX_ID) in answer.json()["detail"] or "1 to" in answer.json()["detail"]
    assert (
        client.get(f"{API}/technologies?offset={MAX_ID}", headers=admin_headers).json()["items"]
        == []
    )


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_must_be_finite(client, admin_headers, number) -> None:  # type: ignore[no-untyped-def]
    need = json.dumps(NEED)[:-1] + f', "budget_max": {number}}}'
    answer = raw_json(client, f"{API}/needs", need, admin_headers)
    assert answer.status_code == 422, answer.text
    assert error_types(answer) == [("finite_number", ["body", "budget_max"])]
    assert "budget_max" in answer.json()["detail"] and "finite" in answer.json()["detail"]
    search = raw_json(
        client, f"{API}/search", f'{{"text": "battery", "top": {number}}}', admin_headers
    )
    assert search.status_code == 422 and search.json()["errors"][0]["loc"] == ["body", "top"]


def test_the_422_handler_echoes_what_json_cannot_carry(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    # "NaN" as a string gets past the JSON check and fails in pydantic, which echoes it
    answer = client.post(
        f"{API}/needs", json={**NEED, "budget_max": "NaN", "trl_min": "x"}, headers=admin_headers
    )
    assert answer.status_code == 422
    assert ("finite_number", ["body", "budget_max"]) in error_types(answer)


# -- text ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("escape", "kind"),
    [("\\u0000", "control_character"), ("\\ud800", "surrogate_character")],
)
def test_nul_and_lone_surrogates_anywhere(  # type: ignore[no-untyped-def]
    client, service_engine, api_settings, admin_headers, broker_headers, escape, kind
) -> None:
    for path, body in [
        (f"{API}/technologies", json.dumps(TECHNOLOGY)[:-1] + f', "owner": "Lab{escape}"}}'),
        (f"{API}/needs", json.dumps(NEED)[:-1] + f', "contact": "a{escape}"}}'),
        (f"{API}/search", f'{{"text": "battery{escape}"}}'),
        (f"{API}/search", f'{{"text": "battery", "k{escape}": 1}}'),
    ]:
        answer = raw_json(client, path, body, admin_headers)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["errors"][0]["type"] == kind
        assert "U+" in answer.json()["detail"]
    ref, rid = first_routed(service_engine, api_settings)
    headers = broker_headers(ref)
    deal = client.post(f"{API}/brokers/me/inbox/{rid}/claim", headers=headers).json()
    note = raw_json(client, f"{API}/deals/{deal['id']}/notes", f'{{"note": "{escape}"}}', headers)
    assert note.status_code == 422
    assert error_types(note) == [(kind, ["body", "note"])]
    assert client.get(f"{API}/technologies?q=a%00b", headers=admin_headers).status_code == 422


def test_a_note_of_control_characters_only(  # type: ignore[no-untyped-def]
    client, service_engine, api_settings, broker_headers
) -> None:
    ref, rid = first_routed(service_engine, api_settings)
    headers = broker_headers(ref)
    deal = client.post(f"{API}/brokers/me/inbox/{rid}/claim", headers=headers).json()
    answer = client.post(
        f"{API}/deals/{deal['id']}/notes", json={"note": "\x01\x02\x1c\x7f"}, headers=headers
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == "note: contains the control character U+0001; remove it"
    fine = client.post(
        f"{API}/deals/{deal['id']}/notes", json={"note": "called\n\tthem"}, headers=headers
    )
    assert fine.status_code == 201


# -- currency and deadline -------------------------------------------------------------------
def test_currency_and_deadline(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(
        f"{API}/needs",
        json={**NEED, "currency": "XYZ", "deadline": "2020-06-30"},
        headers=admin_headers,
    )
    assert answer.status_code == 422
    assert error_types(answer) == [
        ("unknown_currency", ["body", "currency"]),
        ("deadline_past", ["body", "deadline"]),
    ]
    assert "ISO 4217" in answer.json()["detail"] and "has passed" in answer.json()["detail"]
    later = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    fine = client.post(
        f"{API}/needs", json={**NEED, "currency": "eur", "deadline": later}, headers=admin_headers
    )
    assert fine.status_code == 201, fine.text
    assert fine.json()["currency"] == "EUR" and fine.json()["deadline"] == later
    patched = client.patch(
        f"{API}/needs/{fine.json()['id']}", json={"deadline": "2021-01-01"}, headers=admin_headers
    )
    assert patched.status_code == 422


# -- headers ---------------------------------------------------------------------------------
def test_security_headers_on_pages_and_api(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/needs/new")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy
    assert "script-src" not in policy and "form-action 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<link rel="stylesheet" href="/static/style.css">' in page.text
    assert "<script" not in page.text and "style=" not in page.text
    api = client.get("/health")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in api.headers
    docs = client.get("/docs")  # the consoles' assets come from this site (api/docs.py)
    assert "script-src 'self' 'unsafe-inline';" in docs.headers["content-security-policy"]
    assert "https:" not in docs.headers["content-security-policy"]


def test_an_update_keeps_a_stored_deadline_that_has_passed(
    client, service_engine, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from matcher.store.models import NeedRow

    with service_engine.sessions() as session:  # time passes: the deadline is behind us
        need = session.scalar(select(NeedRow).order_by(NeedRow.id))
        need.deadline = (datetime.now(UTC) - timedelta(days=30)).date()
        ref = need.ref
        session.commit()
    kept = client.patch(
        f"{API}/needs/{ref}", json={"title": "A new title for it"}, headers=admin_headers
    )
    assert kept.status_code == 200, kept.text
    moved = client.patch(
        f"{API}/needs/{ref}", json={"deadline": "2020-01-01"}, headers=admin_headers
    )
    assert moved.status_code == 422 and moved.json()["errors"][0]["type"] == "deadline_past"
