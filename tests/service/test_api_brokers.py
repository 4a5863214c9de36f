"""Brokers, routing, inbox, feedback, deals, admin and webhooks over the HTTP API."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from api.worker import match_and_route
from matcher.route import LEVEL_RANK, required_level
from matcher.store.models import (
    BrokerRow,
    DealEventRow,
    DealRow,
    FeedbackRow,
    NeedRow,
    RoutedMatchRow,
    TechnologyRow,
)
from matcher.store.repo.routing import broker_load

API = "/api/v1"


# -- helpers -----------------------------------------------------------------------------
def need_ids(engine) -> list[int]:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        return list(session.scalars(select(NeedRow.id).order_by(NeedRow.id)))


def route_all(engine, settings, ids=None) -> list[int]:  # type: ignore[no-untyped-def]
    routed: list[int] = []
    for need_id in need_ids(engine) if ids is None else ids:
        routed += match_and_route(engine, settings, need_id)
    return routed


def routed_rows(engine, ids=None) -> list[RoutedMatchRow]:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        query = select(RoutedMatchRow).order_by(RoutedMatchRow.id)
        if ids is not None:
            query = query.where(RoutedMatchRow.id.in_(ids))
        return list(session.scalars(query))


def broker_id(engine, ref: str) -> int:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        return session.scalar(select(BrokerRow.id).where(BrokerRow.ref == ref))


def count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def first_routed(engine, settings) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """Route needs until something lands; (broker ref, routed id) of the first item."""
    for need_id in need_ids(engine):
        ids = match_and_route(engine, settings, need_id)
        if ids:
            with engine.sessions() as session:
                row = session.get(RoutedMatchRow, ids[0])
                return session.get(BrokerRow, row.broker_id).ref, row.id
    raise AssertionError("nothing was routed")


def certify_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "B-99",
        "name": "Test Broker",
        "certificate_no": "TM-2026-ADV-09999",
        "level": "advanced",
        "valid_until": (date.today() + timedelta(days=365)).isoformat(),
        "domains": ["01", "02", "03", "04", "05", "06", "07", "08"],
        "regions": ["CN", "EU", "US"],
        "capacity": 1,
        "email": "test.broker@example.org",
    }
    body.update(overrides)
    return body


# -- authentication and authorization ----------------------------------------------------
def test_tokens_required_and_roles_enforced(client, admin_headers, broker_headers) -> None:  # type: ignore[no-untyped-def]
    for method, path in [
        ("get", "/brokers/me"),
        ("get", "/brokers/me/inbox"),
        ("get", "/deals"),
        ("get", "/admin/brokers"),
        ("post", "/admin/brokers/B-01/suspend"),
    ]:
        response = getattr(client, method)(API + path)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        bad = getattr(client, method)(API + path, headers={"Authorization": "Bearer tm_b_nope"})
        assert bad.status_code == 401
    broker = broker_headers("B-01")
    for method, path in [
        ("get", "/admin/brokers"),
        ("post", "/admin/brokers/B-02/suspend"),
        ("get", "/admin/webhook-deliveries"),
    ]:
        response = getattr(client, method)(API + path, headers=broker)
        assert response.status_code == 403, path
        assert "administrators" in response.json()["detail"]
    # an admin is no broker
    assert client.get(f"{API}/brokers/me", headers=admin_headers).status_code == 403
    me = client.get(f"{API}/brokers/me", headers=broker).json()
    assert me["ref"] == "B-01" and me["certificate"]["status"] == "valid"
    assert me["capacity"] == 22 and me["load"] == 0 and "webhook_secret" not in me


def test_expired_broker_profile(client, broker_headers) -> None:  # type: ignore[no-untyped-def]
    me = client.get(f"{API}/brokers/me", headers=broker_headers("B-07")).json()
    assert me["certificate"]["status"] == "expired" and not me["certificate"]["valid"]
    assert me["certificate"]["days_left"] < 0


# -- routing -------------------------------------------------------------------------------
def test_routing_only_to_eligible_brokers_with_reasons(service_engine, api_settings) -> None:  # type: ignore[no-untyped-def]
    routed = route_all(service_engine, api_settings)
    assert len(routed) > 50
    # B-07's certificate has expired: it receives nothing
    b07 = broker_id(service_engine, "B-07")
    assert not [r for r in routed_rows(service_engine) if r.broker_id == b07]
    rules = service_engine.routing_rules
    tax = service_engine.taxonomy
    today = date.today()
    per_broker: Counter[int] = Counter()
    with service_engine.sessions() as session:
        for row in session.scalars(select(RoutedMatchRow)):
            broker = session.get(BrokerRow, row.broker_id)
            need = session.get(NeedRow, row.need_id)
            tech = session.get(TechnologyRow, row.technology_id)
            per_broker[broker.id] += 1
            assert broker.valid_until >= today and not broker.suspended
            level, why = required_level(need, tech, tax, rules)
            assert LEVEL_RANK[broker.level] >= LEVEL_RANK[level], (broker.ref, level, why)
            covered = {
                a for code in list(need.domains) + list(tech.domains) for a in tax.ancestors(code)
            }
            assert covered & set(broker.domains), (broker.ref, need.domains, tech.domains)
            assert f"certificate {broker.certificate_no}" in row.reason
            assert "covers field" in row.reason and "workload" in row.reason
            for why_part in why:
                assert why_part.text("en", tax) in row.reason
        for bid, n in per_broker.items():
            broker = session.get(BrokerRow, bid)
            assert n <= broker.capacity, broker.ref
            assert broker_load(session, bid) <= broker.capacity
        # cross-border and large-budget matches did occur, so the level rules were exercised
        reasons = " ".join(r.reason for r in session.scalars(select(RoutedMatchRow)))
        assert "cross-border" in reasons


def test_capacity_caps_workload_and_decline_frees_it(
    client, service_engine, api_settings, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    created = client.post(f"{API}/admin/brokers", json=certify_body(), headers=admin_headers)
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    ids = need_ids(service_engine)
    route_all(service_engine, api_settings, ids[:40])
    b99 = broker_id(service_engine, "B-99")
    mine = [r for r in routed_rows(service_engine) if r.broker_id == b99]
    assert len(mine) == 1  # capacity 1: the first item and nothing more
    assert client.get(f"{API}/brokers/me", headers=headers).json()["load"] == 1
    declined = client.post(
        f"{API}/brokers/me/inbox/{mine[0].id}/feedback",
        json={"decision": "decline", "reason_code": "not_relevant"},
        headers=headers,
    )
    assert declined.status_code == 201
    # the freed slot goes at once to a need nobody could take, if one waits
    mine = [r for r in routed_rows(service_engine) if r.broker_id == b99]
    load = client.get(f"{API}/brokers/me", headers=headers).json()["load"]
    assert mine[0].state == "declined" and load == len(mine) - 1 <= 1
    route_all(service_engine, api_settings, ids[40:])
    mine = [r for r in routed_rows(service_engine) if r.broker_id == b99]
    assert len(mine) == 2 and mine[1].state == "new"


def test_renewed_to_the_past_receives_nothing_more(
    client, service_engine, api_settings, admin_headers, broker_headers
) -> None:  # type: ignore[no-untyped-def]
    ids = need_ids(service_engine)
    first = route_all(service_engine, api_settings, ids[:20])
    ref_counts = Counter(r.broker_id for r in routed_rows(service_engine, first))
    target_id = ref_counts.most_common(1)[0][0]
    with service_engine.sessions() as session:
        target = session.get(BrokerRow, target_id).ref
    yesterday = date.today() - timedelta(days=1)
    renewed = client.post(
        f"{API}/admin/brokers/{target}/renew",
        json={"valid_until": yesterday.isoformat()},
        headers=admin_headers,
    )
    assert renewed.status_code == 422 and "in the past" in renewed.json()["detail"]
    with service_engine.sessions() as session:  # the certificate runs out
        session.get(BrokerRow, target_id).valid_until = yesterday
        session.commit()
    shown = client.get(f"{API}/admin/brokers/{target}", headers=admin_headers).json()
    assert shown["certificate"]["status"] == "expired"
    later = route_all(service_engine, api_settings, ids[20:50])
    assert later
    assert not [r for r in routed_rows(service_engine, later) if r.broker_id == target_id]
    # an expired broker keeps read access to their own deals only: no inbox, no claims
    headers = broker_headers(target)
    inbox = client.get(f"{API}/brokers/me/inbox", headers=headers)
    assert inbox.status_code == 403 and "expired" in inbox.json()["detail"]
    item = next(r for r in routed_rows(service_engine, first) if r.broker_id == target_id)
    refused = client.post(f"{API}/brokers/me/inbox/{item.id}/claim", headers=headers)
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]
    assert count(service_engine, DealRow) == 0
    # renewing again puts them back in the pool
    future = (date.today() + timedelta(days=400)).isoformat()
    again = client.post(
        f"{API}/admin/brokers/{target}/renew",
        json={"valid_until": future, "level": "advanced"},
        headers=admin_headers,
    ).json()
    assert again["certificate"]["status"] == "valid" and again["level"] == "advanced"


# -- inbox and feedback --------------------------------------------------------------------
def test_inbox_marks_seen_and_is_private(
    client, service_engine, api_settings, broker_headers
) -> None:  # type: ignore[no-untyped-def]
    route_all(service_engine, api_settings, need_ids(service_engine)[:10])
    owners = Counter(r.broker_id for r in routed_rows(service_engine))
    with service_engine.sessions() as session:
        owner = session.get(BrokerRow, owners.most_common(1)[0][0]).ref
        other = next(b.ref for b in session.scalars(select(BrokerRow)) if b.ref != owner)
    headers = broker_headers(owner)
    first = client.get(f"{API}/brokers/me/inbox", headers=headers).json()
    assert first["count"] == owners.most_common(1)[0][1] > 0
    item = first["items"][0]
    assert item["state"] == "new"
    assert set(item["components"]) >= {"semantic", "lexical", "domain", "readiness", "region"}
    assert item["explanation"] and "certificate" in item["reason"]
    assert item["need"]["ref"].startswith("N-") and item["technology"]["ref"]
    assert "contact" not in item["need"]
    # the same item, explained in Chinese for a reader who asks for it (stored in both)
    zh = client.get(f"{API}/brokers/me/inbox/{item['id']}?lang=zh", headers=headers).json()
    assert zh["explanation"] != item["explanation"] and "；" in zh["explanation"]
    second = client.get(
        f"{API}/brokers/me/inbox", headers={**headers, "Accept-Language": "zh-CN"}
    ).json()
    assert {i["state"] for i in second["items"]} == {"seen"}
    assert all("；" in i["explanation"] for i in second["items"])
    assert client.get(f"{API}/brokers/me/inbox?state=new", headers=headers).json()["count"] == 0
    assert (
        client.get(f"{API}/brokers/me/inbox?state=seen", headers=headers).json()["count"]
        == (first["count"])
    )
    bad_state = client.get(f"{API}/brokers/me/inbox?state=bogus", headers=headers)
    assert bad_state.status_code == 422 and "state" in bad_state.json()["detail"]
    # another broker cannot see or touch the item
    intruder = broker_headers(other)
    rid = item["id"]
    assert client.get(f"{API}/brokers/me/inbox/{rid}", headers=intruder).status_code == 404
    for path, body in [
        (f"/brokers/me/inbox/{rid}/feedback", {"decision": "accept"}),
        (f"/brokers/me/inbox/{rid}/claim", None),
    ]:
        response = client.post(API + path, json=body, headers=intruder)
        assert response.status_code == 404, path
    assert rid not in [
        i["id"] for i in client.get(f"{API}/brokers/me/inbox", headers=intruder).json()["items"]
    ]
    assert count(service_engine, FeedbackRow) == 0 and count(service_engine, DealRow) == 0


def test_feedback_validation_and_decline(
    client, service_engine, api_settings, broker_headers
) -> None:  # type: ignore[no-untyped-def]
    ref, rid = first_routed(service_engine, api_settings)
    headers = broker_headers(ref)
    url = f"{API}/brokers/me/inbox/{rid}/feedback"
    for body in [
        {"decision": "decline"},  # reason code required
        {"decision": "decline", "reason_code": "too_expensive"},
        {"decision": "maybe"},
        {"decision": 5},
        {"decision": "accept", "reason_code": "duplicate"},
        {"decision": "accept", "extra": 1},
        {"decision": "accept", "comment": "x" * 2001},
    ]:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]
    missing = client.post(url, json={"decision": "decline"}, headers=headers).json()["detail"]
    assert "not_relevant" in missing and "trl_mismatch" in missing
    assert (
        client.post(f"{API}/brokers/me/inbox/abc/feedback", json={}, headers=headers).status_code
        == 422
    )
    assert (
        client.post(
            f"{API}/brokers/me/inbox/999999/feedback", json={"decision": "accept"}, headers=headers
        ).status_code
        == 404
    )
    assert count(service_engine, FeedbackRow) == 0
    accepted = client.post(
        url, json={"decision": "accept", "comment": "looks good"}, headers=headers
    )
    assert accepted.status_code == 201 and accepted.json()["state"] == "seen"
    declined = client.post(
        url,
        json={"decision": "decline", "reason_code": "trl_mismatch", "comment": "TRL 3 only"},
        headers=headers,
    )
    assert declined.status_code == 201, declined.text
    assert (
        declined.json()["state"] == "declined" and declined.json()["reason_code"] == "trl_mismatch"
    )
    with service_engine.sessions() as session:
        rows = list(session.scalars(select(FeedbackRow).order_by(FeedbackRow.id)))
        assert [(f.decision, f.reason_code, f.comment) for f in rows] == [
            ("accept", None, "looks good"),
            ("decline", "trl_mismatch", "TRL 3 only"),
        ]
        assert session.get(RoutedMatchRow, rid).state == "declined"
    again = client.post(url, json={"decision": "decline", "reason_code": "other"}, headers=headers)
    assert again.status_code == 409
    claim = client.post(f"{API}/brokers/me/inbox/{rid}/claim", headers=headers)
    assert claim.status_code == 409 and "declined" in claim.json()["detail"]
    assert count(service_engine, DealRow) == 0


# -- deals ---------------------------------------------------------------------------------
def test_claim_and_deal_pipeline(
    client, service_engine, api_settings, broker_headers, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    ref, rid = first_routed(service_engine, api_settings)
    headers = broker_headers(ref)
    claimed = client.post(f"{API}/brokers/me/inbox/{rid}/claim", headers=headers)
    assert claimed.status_code == 201, claimed.text
    deal = claimed.json()
    assert deal["stage"] == "claimed" and deal["broker"] == ref and deal["routed_id"] == rid
    assert deal["allowed_next"] == ["contacted", "closed_lost"]
    assert [(e["actor"], e["to_stage"]) for e in deal["events"]] == [(f"broker:{ref}", "claimed")]
    twice = client.post(f"{API}/brokers/me/inbox/{rid}/claim", headers=headers)
    assert twice.status_code == 409 and f"deal {deal['id']}" in twice.json()["detail"]
    assert count(service_engine, DealRow) == 1
    inbox = client.get(f"{API}/brokers/me/inbox?state=claimed", headers=headers).json()
    assert [i["id"] for i in inbox["items"]] == [rid]
    decline = client.post(
        f"{API}/brokers/me/inbox/{rid}/feedback",
        json={"decision": "decline", "reason_code": "other"},
        headers=headers,
    )
    assert decline.status_code == 409

    did = deal["id"]
    listed = client.get(f"{API}/deals", headers=headers).json()
    assert [d["id"] for d in listed["items"]] == [did]
    # illegal transitions: skipping a stage, unknown stage, lost without reason
    skip = client.post(f"{API}/deals/{did}/stage", json={"to": "negotiating"}, headers=headers)
    assert skip.status_code == 409
    assert "cannot move a deal from claimed to negotiating" in skip.json()["detail"]
    assert "contacted" in skip.json()["detail"]
    unknown = client.post(f"{API}/deals/{did}/stage", json={"to": "won"}, headers=headers)
    assert unknown.status_code == 422 and "to" in unknown.json()["detail"]
    no_reason = client.post(f"{API}/deals/{did}/stage", json={"to": "closed_lost"}, headers=headers)
    assert no_reason.status_code in (409, 422) and "reason" in no_reason.json()["detail"]
    blank = client.post(
        f"{API}/deals/{did}/stage", json={"to": "closed_lost", "reason": "  "}, headers=headers
    )
    assert blank.status_code in (409, 422)
    # legal moves
    moved = client.post(
        f"{API}/deals/{did}/stage",
        json={"to": "contacted", "note": "called the CTO"},
        headers=headers,
    )
    assert moved.status_code == 200 and moved.json()["stage"] == "contacted"
    note = client.post(
        f"{API}/deals/{did}/notes", json={"note": "  NDA draft sent  "}, headers=headers
    )
    assert note.status_code == 201 and note.json()["note"] == "NDA draft sent"
    assert (
        client.post(f"{API}/deals/{did}/notes", json={"note": "   "}, headers=headers).status_code
        == 422
    )
    assert client.post(f"{API}/deals/{did}/notes", json={}, headers=headers).status_code == 422
    lost = client.post(
        f"{API}/deals/{did}/stage",
        json={"to": "closed_lost", "reason": "enterprise chose an in-house solution"},
        headers=headers,
    )
    assert lost.status_code == 200 and lost.json()["lost_reason"].startswith("enterprise")
    closed = client.post(f"{API}/deals/{did}/stage", json={"to": "contacted"}, headers=headers)
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]

    trail = client.get(f"{API}/deals/{did}", headers=headers).json()["events"]
    assert [(e["kind"], e["from_stage"], e["to_stage"]) for e in trail] == [
        ("stage", None, "claimed"),
        ("stage", "claimed", "contacted"),
        ("note", None, None),
        ("stage", "contacted", "closed_lost"),
    ]
    assert trail[1]["note"] == "called the CTO" and all(
        e["actor"] == f"broker:{ref}" for e in trail
    )
    assert count(service_engine, DealEventRow) == 4

    # another broker: 404 everywhere; the admin reads everything
    with service_engine.sessions() as session:
        other = next(
            b.ref for b in session.scalars(select(BrokerRow)) if b.ref not in (ref, "B-07")
        )
    intruder = broker_headers(other)
    assert client.get(f"{API}/deals/{did}", headers=intruder).status_code == 404
    assert (
        client.post(f"{API}/deals/{did}/notes", json={"note": "x"}, headers=intruder).status_code
        == 404
    )
    assert (
        client.post(
            f"{API}/deals/{did}/stage", json={"to": "contacted"}, headers=intruder
        ).status_code
        == 404
    )
    assert client.get(f"{API}/deals", headers=intruder).json()["count"] == 0
    assert client.get(f"{API}/deals/{did}", headers=admin_headers).json()["id"] == did
    assert client.get(f"{API}/deals", headers=admin_headers).json()["count"] == 1
    assert client.get(f"{API}/deals?broker={ref}", headers=admin_headers).json()["count"] == 1
    assert client.get(f"{API}/deals?stage=bogus", headers=admin_headers).status_code == 422
    assert client.get(f"{API}/deals/999999", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/deals/abc", headers=admin_headers).status_code == 422
    assert count(service_engine, DealEventRow) == 4


def test_suspended_broker_is_refused_and_gets_nothing(
    client, service_engine, api_settings, admin_headers, broker_headers
) -> None:  # type: ignore[no-untyped-def]
    headers = broker_headers("B-03")
    assert client.get(f"{API}/brokers/me", headers=headers).status_code == 200
    suspended = client.post(f"{API}/admin/brokers/B-03/suspend", headers=admin_headers)
    assert suspended.status_code == 200 and suspended.json()["certificate"]["status"] == "suspended"
    for path in ("/brokers/me", "/brokers/me/inbox", "/deals"):
        response = client.get(API + path, headers=headers)
        assert response.status_code == 403 and "suspended" in response.json()["detail"]
    assert route_all(service_engine, api_settings, need_ids(service_engine)[:30])
    b03 = broker_id(service_engine, "B-03")
    assert not [r for r in routed_rows(service_engine) if r.broker_id == b03]
    listed = client.get(f"{API}/admin/brokers?certificate=suspended", headers=admin_headers).json()
    assert [b["ref"] for b in listed["items"]] == ["B-03"]
    assert (
        client.post(f"{API}/admin/brokers/B-03/reinstate", headers=admin_headers).status_code == 200
    )
    assert client.get(f"{API}/brokers/me", headers=headers).status_code == 200
    assert (
        client.post(f"{API}/admin/brokers/B-404/suspend", headers=admin_headers).status_code == 404
    )


# -- admin ---------------------------------------------------------------------------------
def test_admin_certifies_with_one_time_token(client, service_engine, admin_headers) -> None:  # type: ignore[no-untyped-def]
    before = count(service_engine, BrokerRow)
    created = client.post(
        f"{API}/admin/brokers", json=certify_body(capacity=7), headers=admin_headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["ref"] == "B-99" and body["level"] == "advanced" and body["capacity"] == 7
    assert body["token"].startswith("tm_b_") and body["certificate"]["status"] == "valid"
    me = client.get(f"{API}/brokers/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["ref"] == "B-99" and "token" not in me.json()
    assert count(service_engine, BrokerRow) == before + 1
    # the token is never stored in plain text
    from matcher.store.models import ApiTokenRow

    with service_engine.sessions() as session:
        hashes = set(session.scalars(select(ApiTokenRow.token_hash)))
    assert body["token"] not in hashes
    assert hashlib.sha256(body["token"].encode()).hexdigest() in hashes
    # duplicates
    dup = client.post(f"{API}/admin/brokers", json=certify_body(), headers=admin_headers)
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    dup_cert = client.post(
        f"{API}/admin/brokers", json=certify_body(id="B-98"), headers=admin_headers
    )
    assert dup_cert.status_code == 409 and "certificate number" in dup_cert.json()["detail"]
    # id is optional: the next free reference is used
    auto = client.post(
        f"{API}/admin/brokers",
        json=certify_body(id=None, certificate_no="TM-2026-BEG-00001", level="beginner"),
        headers=admin_headers,
    )
    assert auto.status_code == 201 and auto.json()["ref"].startswith("B-")
    listed = client.get(f"{API}/admin/brokers", headers=admin_headers).json()
    assert listed["count"] == before + 2
    assert all({"load", "capacity", "certificate"} <= set(b) for b in listed["items"])
    assert client.get(f"{API}/admin/brokers/B-99", headers=admin_headers).json()["capacity"] == 7
    again = client.post(f"{API}/admin/brokers/B-99/tokens", headers=admin_headers).json()
    assert again["token"] != body["token"]
    assert (
        client.get(
            f"{API}/brokers/me", headers={"Authorization": f"Bearer {again['token']}"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"level": "guru"}, "level"),
        ({"domains": ["99.99"]}, "unknown domain code"),
        ({"regions": ["XX-YY"]}, "regions"),
        ({"capacity": "lots"}, "capacity"),
        ({"capacity": -1}, "capacity"),
        ({"valid_until": "next year"}, "valid_until"),
        ({"name": None}, "name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_admin_certify_rejects_bad_input(
    client, service_engine, admin_headers, override, fragment
) -> None:  # type: ignore[no-untyped-def]
    before = count(service_engine, BrokerRow)
    response = client.post(
        f"{API}/admin/brokers", json=certify_body(**override), headers=admin_headers
    )
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]
    assert count(service_engine, BrokerRow) == before


def test_admin_bad_input_elsewhere(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    assert (
        client.post(f"{API}/admin/brokers", json=[1, 2], headers=admin_headers).status_code == 422
    )
    assert (
        client.post(
            f"{API}/admin/brokers",
            content=b"{not json",
            headers={**admin_headers, "Content-Type": "application/json"},
        ).status_code
        == 422
    )
    renew = f"{API}/admin/brokers/B-01/renew"
    assert (
        client.post(renew, json={"valid_until": "soon"}, headers=admin_headers).status_code == 422
    )
    assert (
        client.post(
            renew, json={"valid_until": "2030-01-01", "level": "guru"}, headers=admin_headers
        ).status_code
        == 422
    )
    assert client.post(renew, json={}, headers=admin_headers).status_code == 422
    assert (
        client.post(
            f"{API}/admin/brokers/B-404/renew",
            json={"valid_until": "2030-01-01"},
            headers=admin_headers,
        ).status_code
        == 404
    )
    assert (
        client.get(f"{API}/admin/brokers/B-01", headers=admin_headers).json()["valid_until"]
        == "2028-03-31"
    )
    assert (
        client.get(
            f"{API}/admin/webhook-deliveries?status=bogus", headers=admin_headers
        ).status_code
        == 422
    )


# -- webhooks ------------------------------------------------------------------------------
class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[bytes, str]] = []
    fail_first = True

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        cls = type(self)
        cls.received.append((body, self.headers.get("X-TechMatch-Signature", "")))
        failing = cls.fail_first and len(cls.received) == 1
        self.send_response(500 if failing else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_webhook_validation(client, broker_headers) -> None:  # type: ignore[no-untyped-def]
    headers = broker_headers("B-01")
    url = f"{API}/brokers/me/webhook"
    for body in [
        {"url": "ftp://example.org/hook", "secret": "s" * 20},
        {"url": "not a url", "secret": "s" * 20},
        {"url": "https://", "secret": "s" * 20},
        {"url": "https://user:pw@example.org/", "secret": "s" * 20},
        {"url": "https://example.org/hook", "secret": "short"},
        {"url": "https://example.org/hook"},
        {"url": 42, "secret": "s" * 20},
    ]:
        response = client.put(url, json=body, headers=headers)
        assert response.status_code == 422, body
    me = client.get(f"{API}/brokers/me", headers=headers).json()
    assert me["webhook_url"] is None and not me["webhook_secret_set"]
    ok = client.put(
        url, json={"url": "https://example.org/hook", "secret": "s" * 20}, headers=headers
    )
    assert ok.status_code == 200 and ok.json()["webhook_secret_set"]
    assert ok.json()["webhook_url"] == "https://example.org/hook"
    removed = client.delete(url, headers=headers).json()
    assert removed["webhook_url"] is None


def test_webhooks_signed_retried_recorded(
    client, service_engine, api_settings, broker_headers, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        secrets: dict[str, str] = {}
        with service_engine.sessions() as session:
            brokers = [
                (b.ref, b.valid_until < date.today()) for b in session.scalars(select(BrokerRow))
            ]
        for ref, expired in brokers:
            secrets[ref] = f"secret-of-{ref}-0123456789"
            response = client.put(
                f"{API}/brokers/me/webhook",
                json={"url": hook, "secret": secrets[ref]},
                headers=broker_headers(ref),
            )
            # an expired certificate keeps read access to its own deals only
            assert response.status_code == (403 if expired else 200), (ref, response.text)
        routed: list[int] = []
        for need_id in need_ids(service_engine):
            routed = match_and_route(service_engine, api_settings, need_id)
            if routed:
                break
        assert routed
    finally:
        server.shutdown()
        server.server_close()
    # one failed attempt (500) on the first delivery, then every delivery accepted
    assert len(_Receiver.received) == len(routed) + 1
    with service_engine.sessions() as session:
        owner = {
            r.id: session.get(BrokerRow, r.broker_id).ref
            for r in session.scalars(select(RoutedMatchRow).where(RoutedMatchRow.id.in_(routed)))
        }
    for body, signature in _Receiver.received:
        payload = json.loads(body)
        secret = secrets[owner[payload["routed_match_id"]]]
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected)
        assert payload["event"] == "match.routed" and payload["reason"]
    deliveries = client.get(f"{API}/admin/webhook-deliveries", headers=admin_headers).json()
    items = sorted(deliveries["items"], key=lambda d: d["id"])
    assert [d["routed_id"] for d in items] == routed
    assert all(d["status"] == "delivered" and d["url"] == hook for d in items)
    assert [d["attempts"] for d in items] == [2] + [1] * (len(routed) - 1)
    assert items[0]["last_status_code"] in (200, 204)
    assert (
        client.get(f"{API}/admin/webhook-deliveries?status=failed", headers=admin_headers).json()[
            "count"
        ]
        == 0
    )


def test_webhook_failure_is_recorded(
    client, service_engine, api_settings, broker_headers, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    """A receiver that is down: every retry fails, the delivery is recorded as failed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    with service_engine.sessions() as session:
        refs = [b.ref for b in session.scalars(select(BrokerRow))]
    for ref in refs:
        client.put(
            f"{API}/brokers/me/webhook",
            json={"url": dead, "secret": "x" * 16},
            headers=broker_headers(ref),
        )
    _, _rid = first_routed(service_engine, api_settings)
    failed = client.get(
        f"{API}/admin/webhook-deliveries?status=failed", headers=admin_headers
    ).json()
    assert failed["count"] >= 1
    first = failed["items"][-1]
    assert first["attempts"] == api_settings.webhook_retries and first["last_error"]


# -- command line --------------------------------------------------------------------------
def test_cli_broker_add_and_tokens(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from matcher import config
    from matcher.cli import app
    from matcher.engine import Engine
    from matcher.store.repo.tokens import find_token

    monkeypatch.setenv("MATCHER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MATCHER_PROGRESS", "false")
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    runner = CliRunner()
    try:

        def add(domains: str = "04.06,01", **changes: str) -> list[str]:
            options = {
                "--id": "B-99",
                "--name": "Cli Broker",
                "--certificate-no": "TM-2026-INT-00999",
                "--level": "intermediate",
                "--valid-until": "2030-06-30",
                "--capacity": "4",
                "--email": "cli@example.org",
            }
            options.update({f"--{k.replace('_', '-')}": v for k, v in changes.items()})
            flat = [part for pair in options.items() for part in pair]
            for code in domains.split(","):
                flat += ["--domain", code]
            return ["broker", "add", *flat, "--region", "CN", "--region", "EU"]

        result = runner.invoke(app, add())
        assert result.exit_code == 0, result.output
        token = result.output.strip().splitlines()[-1]
        assert token.startswith("tm_b_") and "shown once" in result.output
        again = runner.invoke(app, add())
        assert again.exit_code == 2 and "already exists" in again.output
        bad = runner.invoke(app, add(id="B-98", certificate_no="TM-X-1", level="guru"))
        assert bad.exit_code == 2 and "level" in bad.output
        unknown = runner.invoke(app, add(id="B-97", certificate_no="TM-X-2", domains="99.99"))
        assert unknown.exit_code == 2 and "unknown domain code" in unknown.output
        dup_cert = runner.invoke(app, add(id="B-96"))
        assert dup_cert.exit_code == 2 and "belongs to broker B-99" in dup_cert.output
        bad_date = runner.invoke(app, add(id="B-95", certificate_no="TM-X-3", valid_until="soon"))
        assert bad_date.exit_code == 2 and "valid_until" in bad_date.output
        second = runner.invoke(app, ["broker", "token", "B-99"])
        assert second.exit_code == 0, second.output
        token2 = second.output.strip().splitlines()[-1]
        assert runner.invoke(app, ["broker", "token", "B-404"]).exit_code == 2
        admin = runner.invoke(app, ["admin", "token"])
        assert admin.exit_code == 0, admin.output
        admin_token = admin.output.strip().splitlines()[-1]
        assert admin_token.startswith("tm_a_")
        engine = Engine()
        try:
            with engine.sessions() as session:
                broker = session.scalar(select(BrokerRow).where(BrokerRow.ref == "B-99"))
                assert broker is not None and broker.capacity == 4
                assert broker.domains == ["04.06", "01"] and broker.level == "intermediate"
                assert session.scalar(select(func.count()).select_from(BrokerRow)) == 1
                for plain, role in [(token, "broker"), (token2, "broker"), (admin_token, "admin")]:
                    row = find_token(session, plain)
                    assert row is not None and row.role == role
                    assert row.broker_id == (broker.id if role == "broker" else None)
        finally:
            engine.close()
    finally:
        config.get_settings.cache_clear()
