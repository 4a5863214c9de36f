"""Regional analytics over the demo data: the figures checked against SQL counts, the flows, the
CSV downloads, the charts, the API's access rules — and the page in a real browser."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from api.worker import match_and_route
from matcher.store.models import DealRow, NeedRow, RoutedMatchRow, TechnologyRow
from tests.service.test_api_brokers import first_routed, need_ids
from tests.service.test_browser import browser, live_server, shot  # noqa: F401 (fixtures)

API = "/api/v1/analytics"


@pytest.fixture
def activity(service_engine: Any, api_settings: Any) -> dict[str, Any]:
    """The demo with needs routed and one deal agreed (contract value recorded)."""
    ref, rid = first_routed(service_engine, api_settings)
    for need_id in need_ids(service_engine)[:12]:
        match_and_route(service_engine, api_settings, need_id)
    with service_engine.sessions() as session:
        routed = session.get(RoutedMatchRow, rid)
        deal = DealRow(
            routed_id=rid,
            broker_id=routed.broker_id,
            need_id=routed.need_id,
            technology_id=routed.technology_id,
            stage="agreed",
            contract_type="licence",
            contract_value=1_200_000.0,
            contract_currency="CNY",
            signed_on=date.today(),
            parties=["A", "B"],
        )
        session.add(deal)
        session.commit()
        need_region = session.get(NeedRow, routed.need_id).home_region
    return {"need_region": need_region}


def sql_count(engine: Any, query: Any) -> int:
    with engine.sessions() as session:
        return int(session.scalar(query) or 0)


def test_figures_match_the_store(
    client: Any, service_engine: Any, admin_headers: Any, activity: dict[str, Any]
) -> None:
    answer = client.get(f"{API}/regions?level=province", headers=admin_headers)
    assert answer.status_code == 200, answer.text
    rows = {r["region"]: r for r in answer.json()["regions"]}
    for region in ("CN-JS", "CN-GD", activity["need_region"]):
        if region not in rows:
            continue
        techs = (
            select(func.count()).select_from(TechnologyRow).where(TechnologyRow.region == region)
        )
        needs = select(func.count()).select_from(NeedRow).where(NeedRow.home_region == region)
        routed = (
            select(func.count())
            .select_from(RoutedMatchRow)
            .join(NeedRow, NeedRow.id == RoutedMatchRow.need_id)
            .where(NeedRow.home_region == region)
        )
        assert rows[region]["technologies"] == sql_count(service_engine, techs)
        assert rows[region]["needs"] == sql_count(service_engine, needs)
        assert rows[region]["routed"] == sql_count(service_engine, routed)
    total = sum(r["routed"] for r in rows.values())
    assert total == sql_count(service_engine, select(func.count()).select_from(RoutedMatchRow)) > 0
    agreed = rows[activity["need_region"]]
    assert agreed["deals_agreed"] == 1 and agreed["agreed_value"] == {"CNY": 1_200_000.0}
    # countries and groupings: China's provinces add up to CN; Jiangsu counts in the YRD
    countries = client.get(f"{API}/regions?level=country", headers=admin_headers).json()
    cn = next(r for r in countries["regions"] if r["region"] == "CN")
    assert cn["needs"] == sum(r["needs"] for c, r in rows.items() if c.startswith("CN"))
    groups = client.get(f"{API}/regions?level=grouping&lang=zh", headers=admin_headers).json()
    yrd = next(r for r in groups["regions"] if r["region"] == "YRD")
    assert yrd["name"] == "长三角" or "长江三角洲" in yrd["name"]
    # flows: every routed match goes from a need's region to a technology's region
    flows = client.get(f"{API}/flows", headers=admin_headers).json()["flows"]
    assert sum(f["routed"] for f in flows) == total
    # a period that ended before anything happened is empty; a reversed one is refused
    old = client.get(f"{API}/regions?until=2000-01-01", headers=admin_headers).json()
    assert old["regions"] == []
    bad = client.get(f"{API}/regions?since=2026-02-01&until=2026-01-01", headers=admin_headers)
    assert bad.status_code == 422 and "before since" in bad.text
    assert client.get(f"{API}/regions").status_code == 401


def test_the_page_its_csv_and_charts(
    client: Any, service_engine: Any, admin_headers: Any, activity: dict[str, Any]
) -> None:
    page = client.get("/analytics?lang=en&level=province&metric=routed")
    assert page.status_code == 200
    total = sql_count(service_engine, select(func.count()).select_from(RoutedMatchRow))
    assert re.search(rf'id="total-routed">{total}<', page.text)
    regions = client.get("/analytics/regions.csv?level=province")
    assert regions.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(regions.text)))
    assert {"region", "name", "technologies", "needs", "routed", "agreed_value_CNY"} <= set(
        table[0]
    )
    assert sum(int(r["routed"]) for r in table) == total
    flows = list(csv.DictReader(io.StringIO(client.get("/analytics/flows.csv").text)))
    assert sum(int(r["routed"]) for r in flows) == total
    china = client.get("/analytics/map.svg?level=province&metric=needs&lang=zh")
    assert china.headers["content-type"] == "image/svg+xml" and "江苏" in china.text
    assert china.text.count("<rect") == 34  # one tile per provincial-level division
    world = client.get("/analytics/map.svg?level=country&metric=technologies")
    assert "<svg" in world.text and "Germany" in world.text
    chart = client.get("/analytics/chart.svg?level=country&metric=technologies")
    assert chart.status_code == 200 and "<svg" in chart.text
    assert client.get("/analytics?level=planet").status_code == 422


def test_the_page_in_a_real_browser(
    browser: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    service_engine: Any,
    activity: dict[str, Any],
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{live_server}/analytics?lang=zh&metric=needs")
        page.wait_for_load_state("networkidle")
        for image in ("#map", "#chart"):
            width = page.eval_on_selector(image, "img => img.naturalWidth")
            assert width > 0, image
        needs = sql_count(service_engine, select(func.count()).select_from(NeedRow))
        assert page.locator("#total-needs").inner_text() == str(needs)
        with page.expect_download() as download:
            page.locator("#regions-csv").click()
        assert download.value.suggested_filename == "regions-province.csv"
        shot(page, "analytics-zh")
    finally:
        page.close()
