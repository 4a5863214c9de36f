"""The permission table through the API: the cases the access report reproduced, and the audit.

Every write checked with the stored record before and after.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from api.deps import Caller, require_admin
from matcher.store.models import BrokerRow, NeedRow, RoutedMatchRow, TechnologyRow

API = "/api/v1"
NEED = {
    "enterprise": "Ningbo Harbour Tugs Co.",
    "title": "Keep tug hulls free of barnacles without toxic paint",
    "description": "Our harbour tugs lose 12% fuel efficiency to hull fouling within a year; we "
    "need a non-toxic coating that prevents barnacles and lasts at least three years.",
    "domains": ["04.06"],
    "trl_min": 5,
    "region_scope": "international",
    "home_region": "CN-ZJ",
}


def routed_pair(engine: Any) -> tuple[RoutedMatchRow, str]:  # type: ignore[no-untyped-def]
    """Route demo needs until one lands: its first inbox item and the broker's reference."""
    with engine.sessions() as session:
        refs = list(session.scalars(select(NeedRow.ref).order_by(NeedRow.id).limit(20)))
    for ref in refs:
        outcome = engine.match_and_route(ref)
        if outcome.routed_ids:
            with engine.sessions() as session:
                item = session.get(RoutedMatchRow, outcome.routed_ids[0])
                return item, session.get(BrokerRow, item.broker_id).ref
    raise AssertionError("nothing was routed")


def stored(engine: Any, model: Any, row_id: int) -> Any:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        return session.get(model, row_id)


def other_broker(engine: Any, ref: str) -> str:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        return session.scalar(
            select(BrokerRow.ref).where(BrokerRow.ref != ref, BrokerRow.suspended.is_(False))
        )


def test_a_broker_changes_only_their_own_records(  # type: ignore[no-untyped-def]
    client, service_engine, broker_headers, admin_headers
) -> None:
    item, owner = routed_pair(service_engine)
    stranger = broker_headers(other_broker(service_engine, owner))
    mine = broker_headers(owner)
    tech_before = stored(service_engine, TechnologyRow, item.technology_id)
    need_before = stored(service_engine, NeedRow, item.need_id)
    # routed to them, but no deal yet: not theirs to change
    answer = client.patch(
        f"{API}/technologies/{tech_before.ref}", json={"keywords": ["x"]}, headers=mine
    )
    assert answer.status_code == 403 and "open deal" in answer.json()["detail"]
    # another broker rewrites the contact of a need routed to someone else
    answer = client.patch(
        f"{API}/needs/{need_before.ref}", json={"contact": "evil@example.org"}, headers=stranger
    )
    assert answer.status_code in (403, 404)
    assert stored(service_engine, NeedRow, item.need_id).contact == need_before.contact
    # the broker claims it: the records in their open deal are theirs to change
    claimed = client.post(f"{API}/brokers/me/inbox/{item.id}/claim", headers=mine)
    assert claimed.status_code == 201, claimed.text
    answer = client.patch(
        f"{API}/technologies/{tech_before.ref}", json={"keywords": ["antifouling"]}, headers=mine
    )
    assert answer.status_code == 200, answer.text
    assert stored(service_engine, TechnologyRow, item.technology_id).keywords == ["antifouling"]
    # …but never declassify or classify them: only an admin may
    answer = client.patch(
        f"{API}/technologies/{tech_before.ref}", json={"confidential": True}, headers=mine
    )
    assert answer.status_code == 403 and "confidential" in answer.json()["detail"]
    assert stored(service_engine, TechnologyRow, item.technology_id).confidential is False
    # another broker may not archive the technology in this broker's open deal
    answer = client.post(f"{API}/technologies/{tech_before.ref}/archive", headers=stranger)
    assert answer.status_code in (403, 404)
    assert stored(service_engine, TechnologyRow, item.technology_id).status == "active"
    # the admin may
    answer = client.patch(
        f"{API}/technologies/{tech_before.ref}", json={"confidential": True}, headers=admin_headers
    )
    assert answer.status_code == 200
    # every change is audited, readable by admins only
    trail = client.get(
        f"{API}/admin/audit", params={"ref": tech_before.ref}, headers=admin_headers
    ).json()["items"]
    assert [(e["action"], e["fields"]) for e in trail] == [
        ("update", ["confidential"]),
        ("update", ["keywords"]),
    ]
    assert trail[0]["actor"] == "admin" and trail[1]["actor"] == f"broker:{owner}"
    assert trail[1]["before"] == {"keywords": list(tech_before.keywords)}
    assert trail[1]["after"] == {"keywords": ["antifouling"]}
    assert client.get(f"{API}/admin/audit", headers=mine).status_code == 403


def test_a_broker_may_change_what_they_created(client, service_engine, broker_headers) -> None:  # type: ignore[no-untyped-def]
    headers = broker_headers("B-01")
    created = client.post(f"{API}/needs", json=NEED, headers=headers)
    assert created.status_code == 201, created.text
    ref = created.json()["id"]
    changed = client.patch(f"{API}/needs/{ref}", json={"trl_min": 6}, headers=headers)
    assert changed.status_code == 200 and changed.json()["trl_min"] == 6
    other = client.patch(f"{API}/needs/{ref}", json={"trl_min": 7}, headers=broker_headers("B-02"))
    assert other.status_code == 403
    archived = client.post(f"{API}/needs/{ref}/archive", headers=headers)
    assert archived.status_code == 200


def test_an_expired_certificate_keeps_read_access_to_own_deals_only(  # type: ignore[no-untyped-def]
    client, service_engine, broker_headers
) -> None:
    item, owner = routed_pair(service_engine)
    headers = broker_headers(owner)
    deal = client.post(f"{API}/brokers/me/inbox/{item.id}/claim", headers=headers).json()
    with service_engine.sessions() as session:  # the certificate runs out
        session.get(BrokerRow, item.broker_id).valid_until = date.today() - timedelta(days=1)
        session.commit()
    tech = stored(service_engine, TechnologyRow, item.technology_id)
    refused = [
        client.post(f"{API}/needs", json=NEED, headers=headers),
        client.post(f"{API}/technologies/{tech.ref}/archive", headers=headers),
        client.post(f"{API}/search", json={"text": "hull coating"}, headers=headers),
        client.get(f"{API}/technologies", headers=headers),
        client.get(f"{API}/brokers/me/inbox", headers=headers),
        client.post(
            f"{API}/brokers/me/inbox/{item.id}/feedback",
            json={"decision": "accept"},
            headers=headers,
        ),
        client.post(f"{API}/deals/{deal['id']}/stage", json={"to": "contacted"}, headers=headers),
    ]
    for answer in refused:
        assert answer.status_code == 403, answer.text
        assert "expired" in answer.json()["detail"]
        assert "your own deals only" in answer.json()["detail"]  # what it may still read
    assert stored(service_engine, TechnologyRow, item.technology_id).status == "active"
    own = client.get(f"{API}/deals/{deal['id']}", headers=headers)
    assert own.status_code == 200 and own.json()["stage"] == "claimed"
    assert client.get(f"{API}/deals", headers=headers).json()["count"] == 1


def test_inbox_shows_a_teaser_until_the_broker_claims(
    client, service_engine, broker_headers
) -> None:  # type: ignore[no-untyped-def]
    item, owner = routed_pair(service_engine)
    headers = broker_headers(owner)
    teaser = client.get(f"{API}/brokers/me/inbox/{item.id}", headers=headers).json()
    assert teaser["need"]["description"] and teaser["need"]["domains"]
    assert "enterprise" not in teaser["need"] and "contact" not in teaser["need"]
    assert "owner" not in teaser["technology"]
    deal = client.post(f"{API}/brokers/me/inbox/{item.id}/claim", headers=headers).json()
    need = stored(service_engine, NeedRow, item.need_id)
    assert deal["need"]["enterprise"] == need.enterprise
    assert deal["need"]["contact"] == need.contact
    tech = stored(service_engine, TechnologyRow, item.technology_id)
    assert deal["technology"]["owner"] == tech.owner
    claimed = client.get(f"{API}/brokers/me/inbox/{item.id}", headers=headers).json()
    assert claimed["need"]["enterprise"] == need.enterprise


def test_the_catalogue_shows_brokers_a_teaser_of_other_parties(  # type: ignore[no-untyped-def]
    client, service_engine, broker_headers, admin_headers
) -> None:
    creator = broker_headers("B-01")
    created = client.post(
        f"{API}/needs", json={**NEED, "contact": "ceo@tugs.example"}, headers=creator
    )
    ref = created.json()["id"]
    assert created.json()["enterprise"] == NEED["enterprise"]
    other = client.get(f"{API}/needs/{ref}", headers=broker_headers("B-02")).json()
    assert other["enterprise"] is None and other["contact"] is None  # "we never publish it"
    assert other["description"] == NEED["description"]  # the problem statement is the teaser
    mine = client.get(f"{API}/needs/{ref}", headers=creator).json()
    assert mine["contact"] == "ceo@tugs.example"
    admin = client.get(f"{API}/needs/{ref}", headers=admin_headers).json()
    assert admin["enterprise"] == NEED["enterprise"]
    listed = client.get(f"{API}/needs", params={"limit": 100}, headers=broker_headers("B-02"))
    assert all(n["contact"] is None and n["enterprise"] is None for n in listed.json()["items"])
    found = client.post(
        f"{API}/search",
        json={"text": "barnacles on tug hulls", "target": "needs"},
        headers=broker_headers("B-02"),
    ).json()
    assert found["items"] and all(m["record"]["enterprise"] is None for m in found["items"])


def test_timestamps_carry_their_timezone(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    created = client.post(f"{API}/needs", json=NEED, headers=admin_headers).json()
    again = client.get(f"{API}/needs/{created['id']}", headers=admin_headers).json()
    for stamp in (created["created_at"], again["created_at"], again["updated_at"]):
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp  # RFC 3339


class _NamedAdmin(Caller):
    """An administrator the audit trail names otherwise than ``admin`` (a named account)."""

    @property
    def actor(self) -> str:
        return "admin:ops-desk"


def test_an_import_is_audited_as_its_caller(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    """The import routes pass the caller's audit name down, as create, update and archive do:
    an admin import creates and updates records under that name, not a fixed one."""
    url = f"{API}/needs/import"
    first = json.dumps({**NEED, "id": "N-IMP-AUDIT"})
    answer = client.post(url, files={"file": ("a.jsonl", first)}, headers=admin_headers)
    assert answer.status_code == 200 and answer.json()["created"] == 1, answer.text
    client.app.dependency_overrides[require_admin] = lambda: _NamedAdmin(role="admin")
    try:
        again = json.dumps({**NEED, "id": "N-IMP-AUDIT", "trl_min": 6})
        answer = client.post(url, files={"file": ("b.jsonl", again)}, headers=admin_headers)
        assert answer.status_code == 200 and answer.json()["updated"] == 1, answer.text
    finally:
        client.app.dependency_overrides.pop(require_admin)
    trail = client.get(
        f"{API}/admin/audit", params={"ref": "N-IMP-AUDIT"}, headers=admin_headers
    ).json()["items"]
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("update", "admin:ops-desk"),
        ("create", "admin"),
    ]
    assert trail[0]["fields"] == ["trl_min"]
    assert (trail[0]["before"], trail[0]["after"]) == ({"trl_min": 5}, {"trl_min": 6})
