"""The catalogue API: technologies and needs, bulk import, search, matches, confidentiality."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from matcher.store.models import NeedRow, RoutedMatchRow, TechnologyRow

API = "/api/v1"
QUOKKA = (
    "A sodium-ion battery anode made of quokkanite, a porous hard carbon grown on walnut shells, "
    "that keeps 92% of its capacity after 4,000 cycles at 2C and charges to 80% in 12 minutes."
)


def technology(**overrides: Any) -> dict[str, Any]:
    """A valid technology body (no id: the service generates one)."""
    body: dict[str, Any] = {
        "title": "Anti-fouling graphene coating for ship hulls",
        "description": (
            "A graphene oxide and silicone coating that stops barnacles and algae from settling "
            "on ship hulls for five years without releasing biocides into seawater."
        ),
        "owner": "Zhejiang University",
        "domains": ["04.06"],
        "trl": 6,
        "region": "CN-ZJ",
        "keywords": ["antifouling", "marine coating"],
    }
    body.update(overrides)
    return body


def need(**overrides: Any) -> dict[str, Any]:
    """A valid need body (no id)."""
    body: dict[str, Any] = {
        "enterprise": "Ningbo Harbour Tugs Co.",
        "title": "Keep tug hulls free of barnacles without toxic paint",
        "description": (
            "Our harbour tugs lose 12% fuel efficiency to hull fouling within a year; we need a "
            "non-toxic coating that prevents barnacles and lasts at least three years."
        ),
        "domains": ["04.06"],
        "trl_min": 5,
        "trl_max": 8,
        "region_scope": "national",
        "home_region": "CN-ZJ",
    }
    body.update(overrides)
    return body


def count(engine: Any, model: Any) -> int:
    """Rows of a table, straight from the store."""
    with engine.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def refs(response: Any) -> list[str]:
    """References of a page or a ranking, in order."""
    body = response.json()
    assert response.status_code == 200, body
    out = []
    for item in body["items"]:
        out.append(item.get("ref") or item["record"]["ref"])
    return out


def test_anonymous_callers_get_401(client) -> None:  # type: ignore[no-untyped-def]
    for method, path, body in [
        ("GET", f"{API}/technologies", None),
        ("GET", f"{API}/technologies/T-0001", None),
        ("GET", f"{API}/needs/N-001/matches", None),
        ("POST", f"{API}/search", {"text": "corrosion"}),
        ("POST", f"{API}/technologies", technology()),
    ]:
        response = client.request(method, path, json=body)
        assert response.status_code == 401, (path, response.json())
    bad = client.get(f"{API}/needs", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_technology_lifecycle(client, admin_headers, service_engine) -> None:  # type: ignore[no-untyped-def]
    h = admin_headers
    created = client.post(f"{API}/technologies", json=technology(), headers=h)
    assert created.status_code == 201, created.json()
    body = created.json()
    ref, row_id = body["ref"], body["id"]
    assert ref.startswith("T-") and body["status"] == "active" and body["language"] == "en"
    assert "tracking_hash" not in body and "content_hash" not in body

    assert client.get(f"{API}/technologies/{ref}", headers=h).json()["id"] == row_id
    assert client.get(f"{API}/technologies/{row_id}", headers=h).json()["ref"] == ref
    assert client.get(f"{API}/technologies/T-nope", headers=h).status_code == 404

    again = client.post(f"{API}/technologies", json=technology(id=ref), headers=h)
    assert again.status_code == 409 and ref in again.json()["detail"]

    def listed(**params: Any) -> list[str]:
        return refs(client.get(f"{API}/technologies", params={"limit": 100, **params}, headers=h))

    page = client.get(f"{API}/technologies", params={"limit": 5, "offset": 10}, headers=h).json()
    assert page["total"] == 301 and page["limit"] == 5 and page["offset"] == 10
    assert len(page["items"]) == 5
    assert ref in listed(domain="04")  # a top-level code covers its sub-fields
    assert ref in listed(domain="04.06") and ref not in listed(domain="01")
    assert ref in listed(trl_min=6, trl_max=6) and ref not in listed(trl_min=7)
    assert ref in listed(region="CN", domain="04.06") and ref in listed(region="CN-ZJ")
    assert ref not in listed(region="CN-BJ") and ref not in listed(region="EU", domain="04")
    assert listed(q="ANTI-FOULING GRAPHENE") == [ref]
    assert listed(q="barnacles", domain="04.06") == [ref]
    for params in ({"domain": "99"}, {"region": "XX"}, {"trl_min": 12}, {"limit": 0}):
        response = client.get(f"{API}/technologies", params=params, headers=h)
        assert response.status_code == 422, params
        assert next(iter(params)) in response.json()["detail"]

    # A patch changes the text: the new text is found by search, the old text no longer.
    patched = client.patch(
        f"{API}/technologies/{ref}", json={"description": QUOKKA, "trl": 7}, headers=h
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["trl"] == 7 and patched.json()["title"] == technology()["title"]
    hits = refs(
        client.post(f"{API}/search", json={"text": "quokkanite anode", "top": 3}, headers=h)
    )
    assert hits[0] == ref
    assert listed(q="barnacles") == []

    # Archive: gone from search and lists, still readable with its status.
    archived = client.post(f"{API}/technologies/{ref}/archive", headers=h)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    hits = refs(client.post(f"{API}/search", json={"text": "quokkanite anode"}, headers=h))
    assert ref not in hits
    assert ref not in listed(q="quokkanite")
    assert client.get(f"{API}/technologies/{ref}", headers=h).json()["status"] == "archived"
    assert client.patch(f"{API}/technologies/{ref}", json={"trl": 5}, headers=h).status_code == 409
    assert client.delete(f"{API}/technologies/T-0002", headers=h).json()["status"] == "archived"
    assert count(service_engine, TechnologyRow) == 301


def test_bad_input_is_refused_and_nothing_is_stored(client, admin_headers, service_engine) -> None:  # type: ignore[no-untyped-def]
    h = admin_headers
    before = count(service_engine, TechnologyRow), count(service_engine, NeedRow)
    no_title = technology()
    del no_title["title"]
    cases: list[tuple[dict[str, Any], str]] = [
        (no_title, "title"),
        (technology(trl="nine"), "trl"),
        (technology(description="x" * 20_001), "description"),
        (technology(domains=["99.99"]), "99.99"),
        (technology(trl=12), "trl"),
        (technology(region="XX-YY"), "region"),
        (technology(colour="red"), "colour"),
        (technology(id="has space"), "id"),
    ]
    for body, field in cases:
        response = client.post(f"{API}/technologies", json=body, headers=h)
        assert response.status_code == 422, (field, response.json())
        assert field in response.json()["detail"], (field, response.json())
    for body, field in [
        (need(trl_min=7, trl_max=3), "trl_max"),
        (need(home_region="Atlantis"), "home_region"),
        (need(domains=["99"]), "domains"),
        (need(region_scope="galactic"), "region_scope"),
    ]:
        response = client.post(f"{API}/needs", json=body, headers=h)
        assert response.status_code == 422, (field, response.json())
        assert field in response.json()["detail"], (field, response.json())

    original = client.get(f"{API}/technologies/T-0001", headers=h).json()
    for patch, field in [
        ({"trl": 12}, "trl"),
        ({"domains": ["99.99"]}, "99.99"),
        ({"title": None}, "title"),
        ({"region": "ZZ"}, "region"),
        ({}, "nothing to change"),
    ]:
        response = client.patch(f"{API}/technologies/T-0001", json=patch, headers=h)
        assert response.status_code == 422, (patch, response.json())
        assert field in response.json()["detail"]
    assert client.get(f"{API}/technologies/T-0001", headers=h).json() == original
    assert (count(service_engine, TechnologyRow), count(service_engine, NeedRow)) == before


def test_need_lifecycle_matches_and_routes(client, admin_headers, service_engine) -> None:  # type: ignore[no-untyped-def]
    h = admin_headers
    created = client.post(f"{API}/needs", json=need(id="N-TUG", budget_max=900000), headers=h)
    assert created.status_code == 201, created.json()
    row_id = created.json()["id"]
    with service_engine.sessions() as session:  # the inline worker matched and routed it
        routed = session.scalars(
            select(RoutedMatchRow).where(RoutedMatchRow.need_id == row_id)
        ).all()
    assert routed

    def listed(**params: Any) -> list[str]:
        return refs(client.get(f"{API}/needs", params={"limit": 100, **params}, headers=h))

    assert "N-TUG" in listed(domain="04", region="CN", q="tug hulls")
    assert "N-TUG" in listed(trl_min=8, trl_max=9)  # windows that overlap 8–9
    assert "N-TUG" not in listed(trl_min=9) and "N-TUG" not in listed(region="US")

    matches = client.get(f"{API}/needs/N-TUG/matches", params={"top": 5}, headers=h).json()
    assert len(matches["items"]) == 5
    first = matches["items"][0]
    assert first["rank"] == 1 and first["record"]["kind"] == "technology"
    assert set(first["components"]) == {"semantic", "lexical", "domain", "readiness", "region"}
    assert "TRL" in first["explanation"]

    patched = client.patch(
        f"{API}/needs/N-TUG", json={"description": QUOKKA, "trl_max": None}, headers=h
    )
    assert patched.status_code == 200 and patched.json()["trl_max"] is None
    hits = client.post(
        f"{API}/search", json={"text": "quokkanite anode", "target": "needs"}, headers=h
    ).json()["items"]
    assert hits[0]["need_ref"] == "N-TUG" and hits[0]["record"]["kind"] == "need"

    assert client.delete(f"{API}/needs/N-TUG", headers=h).json()["status"] == "archived"
    hits = client.post(
        f"{API}/search", json={"text": "quokkanite anode", "target": "needs"}, headers=h
    ).json()["items"]
    assert "N-TUG" not in [x["need_ref"] for x in hits]


def test_bulk_import(client, admin_headers, broker_headers, service_engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = admin_headers
    url = f"{API}/technologies/import"
    good = "\n".join(
        json.dumps(technology(id=f"T-IMP-{i}", title=f"Imported coating number {i}"))
        for i in (1, 2)
    )
    bad = "\n".join(
        [
            json.dumps(technology(id="T-BAD-1")),
            json.dumps(technology(id="T-BAD-2", trl=12)),
            json.dumps(technology(id="T-BAD-3", domains=["99.99"])),
            "{not json",
        ]
    )
    before = count(service_engine, TechnologyRow)
    refused = client.post(url, files={"file": ("bad.jsonl", bad)}, headers=h)
    assert refused.status_code == 422
    assert "nothing was imported" in refused.json()["detail"]
    errors = refused.json()["errors"]
    assert [e["line"] for e in errors] == [2, 3, 4]
    assert "trl" in errors[0]["message"] and "99.99" in errors[1]["message"]
    assert count(service_engine, TechnologyRow) == before

    partial = client.post(
        url, params={"skip_invalid": "true"}, files={"file": ("b.jsonl", bad)}, headers=h
    )
    assert partial.status_code == 200 and partial.json()["created"] == 1
    assert [e["line"] for e in partial.json()["skipped"]] == [2, 3, 4]

    ok = client.post(url, files={"file": ("good.jsonl", good)}, headers=h)
    assert ok.status_code == 200, ok.json()
    assert ok.json() == {"kind": "technologies", "created": 2, "updated": 0, "skipped": []}
    assert count(service_engine, TechnologyRow) == before + 3
    assert client.get(f"{API}/technologies/T-IMP-2", headers=h).json()["trl"] == 6

    csv_file = (
        "needs.csv",
        (service_engine.settings.data_dir / "examples" / "needs.csv").read_bytes(),
    )
    needs = client.post(f"{API}/needs/import", files={"file": csv_file}, headers=h)
    assert needs.status_code == 200 and needs.json()["created"] >= 2, needs.json()

    assert client.post(url, files={"file": ("x.txt", good)}, headers=h).status_code == 400
    assert (
        client.post(
            url, files={"file": ("x.jsonl", good)}, headers=broker_headers("B-01")
        ).status_code
        == 403
    )


def test_search_with_filters(client, broker_headers) -> None:  # type: ignore[no-untyped-def]
    h = broker_headers("B-01")
    text = "corrosion protection coating for offshore steel structures"
    items = client.post(
        f"{API}/search",
        json={"text": text, "trl_min": 6, "trl_max": 8, "hard": True, "top": 8, "domains": ["04"]},
        headers=h,
    ).json()["items"]
    assert len(items) == 8
    assert all(6 <= x["record"]["trl"] <= 8 for x in items)
    assert [x["rank"] for x in items] == list(range(1, 9))
    assert items[0]["score"] >= items[-1]["score"]

    local = client.post(
        f"{API}/search",
        json={"text": text, "region": "CN-ZJ", "scope": "national", "hard": True, "top": 5},
        headers=h,
    ).json()["items"]
    assert local and all(x["record"]["region"].startswith("CN") for x in local)

    needs = client.post(
        f"{API}/search",
        json={"text": text, "target": "needs", "trl_min": 6, "region": "CN-ZJ", "top": 3},
        headers=h,
    ).json()["items"]
    assert len(needs) == 3 and all(x["need_ref"].startswith("N-") for x in needs)

    for body, field in [
        ({"text": ""}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "coating", "domains": ["99.99"]}, "99.99"),
        ({"text": "coating", "region": "Mars"}, "region"),
        ({"text": "coating", "top": 101}, "top"),
        ({"text": "coating", "trl_min": 8, "trl_max": 2}, "trl_max"),
        ({"text": "coating", "target": "brokers"}, "target"),
    ]:
        response = client.post(f"{API}/search", json=body, headers=h)
        assert response.status_code == 422, body
        assert field in response.json()["detail"], (body, response.json())


def test_matches_both_ways(client, broker_headers) -> None:  # type: ignore[no-untyped-def]
    h = broker_headers("B-02")
    for need_ref, tech_ref in [("N-002", "T-0008"), ("N-004", "T-0015")]:
        items = client.get(f"{API}/needs/{need_ref}/matches", params={"top": 5}, headers=h)
        assert tech_ref in [x["technology_ref"] for x in items.json()["items"]]
        back = client.get(f"{API}/technologies/{tech_ref}/matches", params={"top": 10}, headers=h)
        assert need_ref in [x["need_ref"] for x in back.json()["items"]]
        assert back.json()["items"][0]["record"]["kind"] == "need"
    assert client.get(f"{API}/needs/N-nope/matches", headers=h).status_code == 404


def test_confidential_records(client, admin_headers, broker_headers, service_engine) -> None:  # type: ignore[no-untyped-def]
    secret, title = "T-0018", "Controlled two-phase immersion cooling for high-density server racks"
    outsider, insider = broker_headers("B-01"), broker_headers("B-02")
    search = {"text": title, "top": 5}

    assert client.get(f"{API}/technologies/{secret}", headers=admin_headers).status_code == 200
    assert secret in refs(client.post(f"{API}/search", json=search, headers=admin_headers))[:1]
    assert client.get(f"{API}/technologies/{secret}", headers=outsider).status_code == 404
    assert client.post(f"{API}/technologies/{secret}/archive", headers=outsider).status_code == 404
    hits = refs(client.post(f"{API}/search", json=search, headers=outsider))
    assert len(hits) == 5 and secret not in hits
    admin_total = client.get(f"{API}/technologies", headers=admin_headers).json()["total"]
    broker_total = client.get(f"{API}/technologies", headers=outsider).json()["total"]
    assert admin_total == 300 and broker_total == 300 - 29
    assert client.get(f"{API}/needs/N-006", headers=outsider).status_code == 404
    assert client.get(f"{API}/needs/N-006/matches", headers=outsider).status_code == 404

    # Routed to B-02: that broker sees it (and the need it was routed with), B-01 still does not.
    with service_engine.sessions() as session:
        tech = session.scalar(select(TechnologyRow).where(TechnologyRow.ref == secret))
        need_row = session.scalar(select(NeedRow).where(NeedRow.ref == "N-006"))
        from matcher.store.models import BrokerRow

        broker = session.scalar(select(BrokerRow).where(BrokerRow.ref == "B-02"))
        session.add(
            RoutedMatchRow(
                need_id=need_row.id,
                technology_id=tech.id,
                broker_id=broker.id,
                score=0.8,
                components={},
                explanation="test",
                rank=1,
                reason="test",
            )
        )
        session.commit()
    assert client.get(f"{API}/technologies/{secret}", headers=insider).status_code == 200
    assert client.get(f"{API}/needs/N-006", headers=insider).status_code == 200
    assert secret in refs(client.post(f"{API}/search", json=search, headers=insider))
    assert client.get(f"{API}/technologies/{secret}", headers=outsider).status_code == 404


def test_search_filters_the_engine_cannot_interpret_are_422(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({"text": "coating", "domains": ["99.99"]}, "unknown domain code(s): 99.99"),
        ({"text": "coating", "region": "XX-ZZ"}, "unknown region code 'XX-ZZ'"),
        ({"text": "coating", "trl_min": 7, "trl_max": 3}, "trl_max (3) is below trl_min (7)"),
        ({"text": "coating", "target": "needs", "domains": ["99"]}, "unknown domain code(s): 99"),
    ]
    for body, message in cases:
        response = client.post(f"{API}/search", json=body, headers=admin_headers)
        assert response.status_code == 422, body
        assert message in response.json()["detail"]


def test_explanations_in_the_readers_language(client, broker_headers) -> None:  # type: ignore[no-untyped-def]
    h = broker_headers("B-02")

    def explanations(response) -> list[str]:  # type: ignore[no-untyped-def]
        assert response.status_code == 200, response.text
        return [x["explanation"] for x in response.json()["items"]]

    def chinese(text: str) -> bool:
        return sum("\u4e00" <= ch <= "\u9fff" for ch in text) >= 4

    url = f"{API}/needs/N-002/matches"
    english = explanations(client.get(url, params={"top": 3}, headers=h))
    assert english and not any(chinese(e) for e in english)
    by_param = explanations(client.get(url, params={"top": 3, "lang": "zh"}, headers=h))
    by_header = explanations(
        client.get(url, params={"top": 3}, headers={**h, "Accept-Language": "zh-CN,zh;q=0.9"})
    )
    assert by_param == by_header and all(chinese(e) for e in by_param)
    # The parameter wins over the header; an English-first header stays English.
    assert (
        explanations(
            client.get(url, params={"top": 3, "lang": "en"}, headers={**h, "Accept-Language": "zh"})
        )
        == english
    )
    assert (
        explanations(
            client.get(
                url, params={"top": 3}, headers={**h, "Accept-Language": "fr, en;q=0.8, zh;q=0.5"}
            )
        )
        == english
    )
    bad = client.get(url, params={"lang": "fr"}, headers=h)
    assert bad.status_code == 422 and "lang" in bad.json()["detail"]

    back = client.get(f"{API}/technologies/T-0008/matches", params={"lang": "zh"}, headers=h)
    assert all(chinese(e) for e in explanations(back))
    text = "silicon carbide MOSFET gate oxide reliability"
    found = client.post(
        f"{API}/search", json={"text": text, "top": 3}, headers={**h, "Accept-Language": "zh-CN"}
    )
    assert all(chinese(e) for e in explanations(found))
    found = client.post(f"{API}/search", json={"text": text, "top": 3, "lang": "en"}, headers=h)
    assert not any(chinese(e) for e in explanations(found))
    # A free-text offer searched against needs: the header sets the language there too.
    offer = {"text": text, "top": 3, "target": "needs"}
    found = client.post(f"{API}/search", json=offer, headers={**h, "Accept-Language": "zh-CN"})
    assert all(chinese(e) for e in explanations(found))


def test_lists_filter_and_page_in_the_database(client, admin_headers, broker_headers) -> None:  # type: ignore[no-untyped-def]
    from matcher.config import REPO_DATA_DIR
    from matcher.taxonomy import load_taxonomy

    tax = load_taxonomy(REPO_DATA_DIR)

    def every(headers: dict[str, str], **params: Any) -> tuple[list[dict[str, Any]], int]:
        """All pages of a list, and the total each page reported."""
        items: list[dict[str, Any]] = []
        totals = set()
        while True:
            page = client.get(
                f"{API}/technologies",
                params={"limit": 37, "offset": len(items), **params},
                headers=headers,
            ).json()
            totals.add(page["total"])
            items += page["items"]
            if len(page["items"]) < 37:
                break
        assert len(totals) == 1
        return items, totals.pop()

    everything, total = every(admin_headers)
    assert total == len(everything) == 300
    assert [x["id"] for x in everything] == sorted(x["id"] for x in everything)
    for params in ({"domain": "04"}, {"domain": "05.03"}, {"region": "YRD"}, {"region": "US"}):
        found, count_ = every(admin_headers, **params)
        if "domain" in params:
            expected = [
                x["ref"]
                for x in everything
                if any(params["domain"] in tax.ancestors(code) for code in x["domains"])
            ]
        else:
            expected = [
                x["ref"] for x in everything if tax.region_in(x["region"], params["region"])
            ]
        assert [x["ref"] for x in found] == expected and count_ == len(expected), params
        assert expected, params
    # A broker's pages leave out the confidential records not routed to them, totals included.
    seen, seen_total = every(broker_headers("B-01"), domain="04")
    assert seen_total == len(seen) and not any(x["confidential"] for x in seen)
