"""The exchange market over the real app and the demo data: the public listing, a deal agreed
with its contract, the statistics counted from contracts (checked against SQL), CSV tables."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from sqlalchemy import func, select

from matcher.store.models import DealEventRow, DealRow, TechnologyRow
from tests.service.test_api_brokers import first_routed

API = "/api/v1"
CONTRACT = {
    "type": "licence",
    "value": 1_250_000,
    "currency": "CNY",
    "signed_on": date.today().isoformat(),
    "parties": ["Demo Institute", "Demo Enterprise Co."],
}


def agreed_deal(client, engine, settings, broker_headers, **contract: Any) -> tuple[int, Any]:  # type: ignore[no-untyped-def]
    """Route a demo need, claim the first item and move its deal to agreed with a contract."""
    broker, routed = first_routed(engine, settings)
    headers = broker_headers(broker)
    claimed = client.post(f"{API}/brokers/me/inbox/{routed}/claim", headers=headers)
    assert claimed.status_code == 201, claimed.text
    deal_id = claimed.json()["id"]
    for stage in ("contacted", "nda_signed", "negotiating"):
        moved = client.post(f"{API}/deals/{deal_id}/stage", json={"to": stage}, headers=headers)
        assert moved.status_code == 200, moved.text
    agreed = client.post(
        f"{API}/deals/{deal_id}/stage",
        json={"to": "agreed", "contract": {**CONTRACT, **contract}},
        headers=headers,
    )
    assert agreed.status_code == 200, agreed.text
    return deal_id, headers


def sql_totals(engine) -> dict[str, tuple[int, float]]:  # type: ignore[no-untyped-def]
    """Agreed deals with a contract, per currency: (count, sum), straight from SQL."""
    with engine.sessions() as session:
        rows = session.execute(
            select(DealRow.contract_currency, func.count(), func.sum(DealRow.contract_value))
            .where(DealRow.stage == "agreed", DealRow.contract_type.is_not(None))
            .group_by(DealRow.contract_currency)
        )
        return {currency: (n, float(total)) for currency, n, total in rows}


def stats_totals(answer: dict[str, Any]) -> dict[str, tuple[int, float]]:
    found: dict[str, tuple[int, float]] = {}
    for group in answer["groups"]:
        for total in group["totals"]:
            n, value = found.get(total["currency"], (0, 0.0))
            found[total["currency"]] = (n + total["transactions"], value + total["value"])
    return found


def test_a_deal_agreed_with_its_contract_counts_in_the_statistics(
    client, service_engine, api_settings, broker_headers
) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"{API}/market/stats").json()["transactions"] == 0
    deal_id, headers = agreed_deal(client, service_engine, api_settings, broker_headers)
    deal = client.get(f"{API}/deals/{deal_id}", headers=headers).json()
    assert deal["stage"] == "agreed"
    assert deal["contract"] == {**CONTRACT, "value": 1_250_000.0}
    assert [e["kind"] for e in deal["events"]][-2:] == ["stage", "contract"]

    for by in ("field", "region", "period", "type"):
        answer = client.get(f"{API}/market/stats", params={"by": by}).json()
        assert stats_totals(answer) == sql_totals(service_engine) == {"CNY": (1, 1_250_000.0)}
    by_type = client.get(f"{API}/market/stats", params={"by": "type"}).json()
    assert [g["key"] for g in by_type["groups"]] == ["licence"]
    by_year = client.get(f"{API}/market/stats", params={"by": "period", "period": "year"}).json()
    assert [g["key"] for g in by_year["groups"]] == [str(date.today().year)]
    with service_engine.sessions() as session:
        row = session.get(DealRow, deal_id)
        technology = session.get(TechnologyRow, row.technology_id)
        region = technology.region
    by_region = client.get(f"{API}/market/stats", params={"by": "region", "lang": "zh"}).json()
    assert [g["key"] for g in by_region["groups"]] == [region]
    later = client.get(f"{API}/market/stats", params={"since": "2999-01-01"}).json()
    assert later["transactions"] == 0

    # corrected through PUT: the statistics follow, the trail says so
    fixed = client.put(
        f"{API}/deals/{deal_id}/contract",
        json={**CONTRACT, "value": 900_000, "currency": "usd"},
        headers=headers,
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["contract"]["currency"] == "USD"
    assert stats_totals(client.get(f"{API}/market/stats").json()) == sql_totals(service_engine)
    assert sql_totals(service_engine) == {"USD": (1, 900_000.0)}
    with service_engine.sessions() as session:
        notes = session.scalars(
            select(DealEventRow.note).where(
                DealEventRow.deal_id == deal_id, DealEventRow.kind == "contract"
            )
        ).all()
    assert len(notes) == 2 and notes[-1].startswith("corrected the licence contract")


def test_a_bad_contract_is_refused_with_a_clear_message(
    client, service_engine, api_settings, broker_headers, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    broker, routed = first_routed(service_engine, api_settings)
    headers = broker_headers(broker)
    deal_id = client.post(f"{API}/brokers/me/inbox/{routed}/claim", headers=headers).json()["id"]
    for stage in ("contacted", "nda_signed", "negotiating"):
        client.post(f"{API}/deals/{deal_id}/stage", json={"to": stage}, headers=headers)

    bad = client.post(
        f"{API}/deals/{deal_id}/stage",
        json={"to": "agreed", "contract": {**CONTRACT, "value": -5, "parties": []}},
        headers=headers,
    )
    assert bad.status_code == 422
    assert "contract.value" in bad.json()["detail"] and "contract.parties" in bad.json()["detail"]
    future = client.post(
        f"{API}/deals/{deal_id}/stage",
        json={"to": "agreed", "contract": {**CONTRACT, "signed_on": "2999-01-01"}},
        headers=headers,
    )
    assert future.status_code == 422
    assert "signing date 2999-01-01 is in the future" in future.json()["detail"]
    early = client.post(
        f"{API}/deals/{deal_id}/stage", json={"to": "closed_lost", "contract": CONTRACT}
    )
    assert early.status_code == 401
    early = client.post(
        f"{API}/deals/{deal_id}/stage",
        json={"to": "closed_lost", "reason": "x", "contract": CONTRACT},
        headers=headers,
    )
    assert early.status_code == 422 and "moves to agreed" in early.json()["detail"]
    not_yet = client.put(f"{API}/deals/{deal_id}/contract", json=CONTRACT, headers=headers)
    assert not_yet.status_code == 409 and "negotiating" in not_yet.json()["detail"]
    with service_engine.sessions() as session:
        row = session.get(DealRow, deal_id)
        assert (row.stage, row.contract_type) == ("negotiating", None)

    # agreed without a contract, recorded afterwards by an admin; another broker sees nothing
    client.post(f"{API}/deals/{deal_id}/stage", json={"to": "agreed"}, headers=headers)
    other = next(ref for ref in ("B-01", "B-02", "B-03") if ref != broker)
    hidden = client.put(
        f"{API}/deals/{deal_id}/contract", json=CONTRACT, headers=broker_headers(other)
    )
    assert hidden.status_code == 404
    done = client.put(f"{API}/deals/{deal_id}/contract", json=CONTRACT, headers=admin_headers)
    assert done.status_code == 200 and done.json()["contract"]["type"] == "licence"


def confidential_technology(engine) -> TechnologyRow:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        row = session.scalar(
            select(TechnologyRow)
            .where(TechnologyRow.confidential.is_(True), TechnologyRow.licensing.is_not(None))
            .order_by(TechnologyRow.id)
            .limit(1)
        )
        session.expunge(row)
        return row


def test_the_public_listing_hides_a_confidential_technologys_owner(client, service_engine) -> None:  # type: ignore[no-untyped-def]
    secret = confidential_technology(service_engine)
    params = {"domain": secret.domains[0], "trl_min": secret.trl, "limit": 100}
    answer = client.get(f"{API}/market", params=params)  # no token: public
    assert answer.status_code == 200, answer.text
    entry = next(i for i in answer.json()["items"] if i["id"] == secret.id)
    assert entry["confidential"] is True
    for hidden in ("owner", "ref", "title", "description", "licensing_terms", "asking_min"):
        assert entry[hidden] is None, hidden
    assert entry["region"] == secret.region.split("-")[0]
    assert secret.ref not in answer.text and secret.title not in answer.text
    assert all("contact" not in item for item in answer.json()["items"])
    public = [i for i in answer.json()["items"] if not i["confidential"]]
    assert public and all(i["owner"] and i["title"] for i in public)
    # words of its title never find a teaser
    word = max(secret.title.split(), key=len)
    found = client.get(f"{API}/market", params={"q": word, "limit": 100}).json()["items"]
    assert secret.id not in {i["id"] for i in found}
    with service_engine.sessions() as session:
        listed = session.scalar(
            select(func.count())
            .select_from(TechnologyRow)
            .where(TechnologyRow.status == "active", TechnologyRow.licensing.is_not(None))
        )
    assert client.get(f"{API}/market").json()["total"] == listed
    page = client.get("/market", params={"domain": secret.domains[0], "lang": "zh"})
    assert page.status_code == 200 and "技术交易市场" in page.text
    assert f'id="listing-{secret.id}"' in page.text and "保密" in page.text
    assert secret.owner not in page.text.split(f'id="listing-{secret.id}"')[1].split("</li>")[0]
    bad = client.get(f"{API}/market", params={"domain": "99.99"})
    assert bad.status_code == 422 and "unknown domain code" in bad.json()["detail"]


def test_listing_terms_and_asking_price_are_set_through_the_technology_api(
    client, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    ref = "T-0001"
    terms = {"licensing_terms": "Non-exclusive, 3 years", "asking_min": 1e5, "asking_max": 3e5}
    changed = client.patch(f"{API}/technologies/{ref}", json=terms, headers=admin_headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["asking_currency"] == "CNY"
    listed = client.get(f"{API}/market", params={"q": changed.json()["title"]}).json()["items"]
    entry = next(i for i in listed if i["ref"] == ref)
    assert (entry["licensing_terms"], entry["asking_min"], entry["asking_max"]) == (
        "Non-exclusive, 3 years",
        1e5,
        3e5,
    )
    page = client.get("/market", params={"q": changed.json()["title"], "lang": "en"}).text
    assert "100,000 – 300,000 CNY" in page and "Non-exclusive, 3 years" in page
    wrong = client.patch(
        f"{API}/technologies/{ref}", json={"asking_min": 5e5}, headers=admin_headers
    )
    assert wrong.status_code == 422 and "asking_max is below asking_min" in wrong.json()["detail"]


def test_statistics_tables_download_as_csv(
    client, service_engine, api_settings, broker_headers
) -> None:  # type: ignore[no-untyped-def]
    deal_id, _ = agreed_deal(client, service_engine, api_settings, broker_headers)
    page = client.get("/market/stats", params={"lang": "zh", "period": "year"})
    assert page.status_code == 200 and "按技术领域" in page.text and "1,250,000" in page.text
    for by in ("field", "region", "period", "type"):
        assert f'id="csv-{by}"' in page.text
    answer = client.get("/market/stats", params={"by": "field", "format": "csv", "lang": "en"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["field", "name", "currency", "transactions", "value"]
    with service_engine.sessions() as session:
        technology = session.get(TechnologyRow, session.get(DealRow, deal_id).technology_id)
        top = service_engine.taxonomy.ancestors(technology.domains[0])[-1]
    assert rows[1:] == [
        [top, service_engine.taxonomy.domains[top].name("en"), "CNY", "1", "1250000.00"]
    ]
    quarters = client.get(
        "/market/stats", params={"by": "period", "period": "quarter", "format": "csv"}
    )
    today = date.today()
    assert list(csv.reader(io.StringIO(quarters.text)))[1][0] == (
        f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    )
