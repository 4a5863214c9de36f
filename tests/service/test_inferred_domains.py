"""Records without domain codes, end to end with the real models: import, the JSON API, the
suggestion endpoint and the forms; inferred codes flagged with a confidence until a person
sets codes; short titles accepted."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from matcher.store.models import NeedRow, TechnologyRow
from tests.service.test_api_catalog import need, technology
from tests.service.test_forms import GOOD_NEED, GOOD_TECHNOLOGY, csrf_of, post_form

API = "/api/v1"
BATTERY = {
    "title": "Li-S",
    "description": (
        "A lithium-sulphur pouch cell whose sulphur cathode is hosted in a conductive "
        "metal-organic framework; 400 Wh/kg and 500 cycles at 0.5C, for drones and trucks."
    ),
}
WATER = "城市污水处理厂的低能耗脱氮除磷工艺，出水总氮低于10 mg/L，污泥产量减少30%"


def inferred(body: dict[str, Any]) -> None:
    """The record's codes were inferred: one known sub-field, flagged, with a confidence."""
    assert body["domains_inferred"] is True, body
    assert len(body["domains"]) == 1 and re.fullmatch(r"\d\d\.\d\d", body["domains"][0]), body
    assert 0 < body["domain_confidence"] <= 1


def test_api_create_without_codes_infers_them_until_a_person_sets_some(
    client: Any, admin_headers: dict[str, str]
) -> None:
    h = admin_headers
    body = technology(**BATTERY)
    del body["domains"]
    created = client.post(f"{API}/technologies", json=body, headers=h)
    assert created.status_code == 201, created.json()
    tech = created.json()
    inferred(tech)
    assert tech["title"] == "Li-S"  # a four-character title is a title
    assert tech["domains"][0].startswith("06"), tech["domains"]  # new energy: a battery
    shown = client.get(f"{API}/technologies/{tech['ref']}", headers=h).json()
    assert (shown["domains_inferred"], shown["domain_confidence"]) == (
        True,
        tech["domain_confidence"],
    )

    # an update that leaves the codes alone keeps them inferred
    kept = client.patch(f"{API}/technologies/{tech['ref']}", json={"trl": 5}, headers=h).json()
    inferred(kept)
    assert kept["domains"] == tech["domains"]
    # a person sets codes: the flag and the confidence are cleared
    set_ = client.patch(
        f"{API}/technologies/{tech['ref']}", json={"domains": ["06.03"]}, headers=h
    ).json()
    assert (set_["domains"], set_["domains_inferred"], set_["domain_confidence"]) == (
        ["06.03"],
        False,
        None,
    )

    need_body = need(title="污水脱氮", description=WATER, language="zh")
    del need_body["domains"]
    created_need = client.post(f"{API}/needs", json=need_body, headers=h)
    assert created_need.status_code == 201, created_need.json()
    inferred(created_need.json())
    assert created_need.json()["domains"][0].startswith("07"), created_need.json()["domains"]
    # matches say the need's field was inferred, in the reader's language
    matches = client.get(
        f"{API}/needs/{created_need.json()['ref']}/matches", params={"lang": "zh"}, headers=h
    ).json()["items"]
    assert matches and "需求领域为推断" in matches[0]["explanation"]
    summary = matches[0]["record"]
    assert summary["domains_inferred"] is False and summary["domain_confidence"] is None


def test_blank_titles_and_unknown_codes_are_still_refused(
    client: Any, admin_headers: dict[str, str]
) -> None:
    blank = client.post(f"{API}/technologies", json=technology(title="   "), headers=admin_headers)
    assert blank.status_code == 422
    assert "title" in blank.json()["detail"] and "must not be empty" in blank.json()["detail"]
    unknown = client.post(f"{API}/needs", json=need(domains=["04.99"]), headers=admin_headers)
    assert unknown.status_code == 422 and "04.99" in unknown.json()["detail"]


def test_an_import_without_codes_is_stored_with_inferred_ones(
    client: Any, admin_headers: dict[str, str], service_engine: Any
) -> None:
    rows = [
        {"id": "T-NOCODE-1", **technology(**BATTERY)},
        {"id": "T-NOCODE-2", **technology(title="Hull", domains=[])},
        {"id": "T-CODED", **technology()},
    ]
    del rows[0]["domains"]
    lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    report = client.post(
        f"{API}/technologies/import",
        files={"file": ("outputs.jsonl", lines, "application/x-ndjson")},
        headers=admin_headers,
    )
    assert report.status_code == 200, report.json()
    assert report.json()["created"] == 3
    with service_engine.sessions() as session:
        stored = {
            r.ref: r
            for r in session.scalars(
                select(TechnologyRow).where(TechnologyRow.ref.like("T-%CODE%"))
            )
        }
    assert stored["T-NOCODE-1"].domains_inferred and stored["T-NOCODE-2"].domains_inferred
    assert stored["T-NOCODE-2"].domains[0].startswith("04")  # an anti-fouling coating
    assert stored["T-CODED"].domains == ["04.06"] and not stored["T-CODED"].domains_inferred
    assert stored["T-CODED"].domain_confidence is None
    # imported again with codes: a person set them
    again = json.dumps({**rows[0], "domains": ["06.03"]}).encode()
    client.post(
        f"{API}/technologies/import",
        files={"file": ("fix.jsonl", again, "application/x-ndjson")},
        headers=admin_headers,
    )
    with service_engine.sessions() as session:
        row = session.scalar(select(TechnologyRow).where(TechnologyRow.ref == "T-NOCODE-1"))
        assert row is not None and (row.domains, row.domains_inferred) == (["06.03"], False)


def test_suggest_names_codes_in_the_reader_s_language(
    client: Any, admin_headers: dict[str, str]
) -> None:
    found = client.get(
        f"{API}/taxonomy/suggest",
        params={"text": WATER, "lang": "en", "top": 3},
        headers=admin_headers,
    )
    assert found.status_code == 200, found.json()
    body = found.json()
    assert body["language"] == "zh" and body["field"]["code"] == "07"
    assert len(body["items"]) == 3 and body["items"][0]["code"].startswith("07")
    assert body["items"][0]["path"].startswith("resources and environment ›")
    assert all(0 <= item["confidence"] <= 1 for item in body["items"])
    zh = client.get(
        f"{API}/taxonomy/suggest",
        params={"text": BATTERY["description"]},
        headers={**admin_headers, "Accept-Language": "zh-CN"},
    ).json()
    assert zh["language"] == "en" and zh["items"][0]["path"].startswith("新能源与节能")
    assert client.get(f"{API}/taxonomy/suggest", params={"text": "x"}).status_code == 401
    empty = client.get(f"{API}/taxonomy/suggest", params={"text": " "}, headers=admin_headers)
    assert empty.status_code == 422


def test_the_forms_suggest_fields_and_accept_none(client: Any, service_engine: Any) -> None:
    # "Suggest fields" with nothing chosen: the form comes back, suggestions listed and selected
    fields = {**GOOD_TECHNOLOGY, "domains": [], "action": "suggest"}
    page = post_form(client, "/technologies/new?lang=zh", fields)
    assert page.status_code == 200, page.text[:2000]
    assert "根据您填写的内容推荐" in page.text
    selected = re.findall(r'<option value="(\d\d\.\d\d)" selected>', page.text)
    assert selected and all(code.startswith("04") for code in selected), selected
    assert 'value="Zhejiang University"' in page.text  # the rest is kept as typed
    with service_engine.sessions() as session:
        assert (
            session.scalar(select(TechnologyRow).where(TechnologyRow.title == fields["title"]))
            is None
        )
    # submitted as suggested, the codes are the person's
    accepted = client.post(
        "/technologies/new?lang=zh",
        data={**GOOD_TECHNOLOGY, "domains": selected, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303, accepted.text[:2000]
    with service_engine.sessions() as session:
        row = session.scalar(select(TechnologyRow).where(TechnologyRow.title == fields["title"]))
        assert row is not None and row.domains == selected and not row.domains_inferred

    # a need with no field chosen and a short title is stored, its codes inferred
    short = {**GOOD_NEED, "title": "防腐涂层", "domains": []}
    stored = post_form(client, "/needs/new?lang=en", short)
    assert stored.status_code == 303, stored.text[:2000]
    with service_engine.sessions() as session:
        row = session.scalar(select(NeedRow).where(NeedRow.title == "防腐涂层"))
        assert row is not None and row.domains_inferred and row.domain_confidence
    # nothing written yet: nothing to suggest from
    bare = post_form(client, "/needs/new?lang=en", {"action": "suggest"})
    assert bare.status_code == 422
    assert "Write a title or a description first" in bare.text
