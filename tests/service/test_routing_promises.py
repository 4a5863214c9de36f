"""The routing workflow's promises, end to end on the demo data (real model, SQLite, FAISS).

One test for each failure the routing report (issue 11) reproduced on the demo; each fails on
the code before it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import func, select, update

from matcher.domain import NeedIn, Side
from matcher.route import RoutingState
from matcher.store.models import BrokerRow, FeedbackRow, NeedRow, RoutedMatchRow, TechnologyRow

API = "/api/v1"


def need_refs(engine, n: int | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        refs = list(session.scalars(select(NeedRow.ref).order_by(NeedRow.id)))
    return refs if n is None else refs[:n]


def broker_refs(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        return list(session.scalars(select(BrokerRow.ref).order_by(BrokerRow.id)))


def routed(engine) -> list[RoutedMatchRow]:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        return list(session.scalars(select(RoutedMatchRow).order_by(RoutedMatchRow.id)))


def need_state(engine, ref: str) -> tuple[str, dict[str, str] | None]:  # type: ignore[no-untyped-def]
    with engine.sessions() as session:
        need = session.scalar(select(NeedRow).where(NeedRow.ref == ref))
        return need.routing_state, need.routing_reason


def first_routed(engine):  # type: ignore[no-untyped-def]
    """Route demo needs until one lands: its outcome and its first inbox item."""
    outcome = next(
        o for o in (engine.match_and_route(r) for r in need_refs(engine, 20)) if o.routed_ids
    )
    return outcome, next(r for r in routed(engine) if r.id == outcome.routed_ids[0])


# 1 -------------------------------------------------------------------------------------------
def test_a_need_nobody_can_take_is_unrouted_then_routed_when_a_broker_returns(  # type: ignore[no-untyped-def]
    service_engine, client, admin_headers
) -> None:
    refs = broker_refs(service_engine)
    for ref in refs:
        service_engine.set_broker_status(ref, suspended=True, reroute=False)
    needs = need_refs(service_engine, 6)
    outcomes = [service_engine.match_and_route(ref) for ref in needs]
    assert all(o.state is RoutingState.unrouted and not o.routed_ids for o in outcomes)
    state, reason = need_state(service_engine, needs[0])
    assert state == "unrouted" and "suspended or expired" in reason["en"]
    assert "暂停" in reason["zh"]
    # the operators see them, with the reason
    listed = client.get(f"{API}/admin/unrouted", headers=admin_headers).json()
    assert listed["total"] == len(needs)
    assert {i["ref"] for i in listed["items"]} == set(needs)
    assert all("no certified broker" in i["reason"] for i in listed["items"])
    # a reinstated broker takes what waited, without anyone re-submitting it
    for ref in refs:
        service_engine.set_broker_status(ref, suspended=False, reroute=False)
    again = service_engine.route_unrouted()
    assert {o.need_ref for o in again} == set(needs)
    assert any(o.state is RoutingState.routed for o in again)
    total, still = service_engine.unrouted_needs()
    assert total == sum(1 for o in again if o.state is RoutingState.unrouted)
    assert all(n.routing_reason for n in still)


# 2 -------------------------------------------------------------------------------------------
def test_workload_is_counted_once_per_item(service_engine) -> None:  # type: ignore[no-untyped-def]
    for ref in need_refs(service_engine, 40):
        service_engine.match_and_route(ref)
    loads: dict[int, list[int]] = defaultdict(list)
    for row in routed(service_engine):
        load = int(row.reason.split("workload ")[1].split("/")[0])
        loads[row.broker_id].append(load)
    assert any(len(seen) >= 3 for seen in loads.values())
    for broker_id, seen in loads.items():
        # nothing was claimed or declined: each item adds exactly one to its broker's load
        assert seen == list(range(len(seen))), (broker_id, seen)


# 3 -------------------------------------------------------------------------------------------
def test_a_suspended_or_expired_brokers_unclaimed_matches_go_back_to_routing(
    service_engine,
) -> None:  # type: ignore[no-untyped-def]
    for ref in need_refs(service_engine, 30):
        service_engine.match_and_route(ref)
    holders: dict[int, int] = defaultdict(int)
    for row in routed(service_engine):
        holders[row.broker_id] += 1
    busiest = max(holders, key=lambda b: holders[b])
    held = {r.id for r in routed(service_engine) if r.broker_id == busiest}
    with service_engine.sessions() as session:
        ref = session.get(BrokerRow, busiest).ref
    service_engine.set_broker_status(ref, suspended=True)
    rows = [r for r in routed(service_engine) if r.id in held]
    assert len(rows) == holders[busiest]
    for row in rows:  # each went to another broker, or waits to be routed again
        assert (row.state == "new" and row.broker_id != busiest) or row.state == "returned"
        assert "taken back from " + ref in row.reason
        assert "收回" in (row.reasons or {}).get("zh", "")
    assert any(r.state == "new" for r in rows)
    _, unrouted = service_engine.unrouted_needs()
    waiting = {r.need_id for r in rows if r.state == "returned"}
    assert waiting <= {n.id for n in unrouted} | {
        r.need_id for r in routed(service_engine) if r.state == "new"
    }
    # an expired certificate: time passes, the next routing pass takes the items back
    second = max((b for b in holders if b != busiest), key=lambda b: holders[b])
    with service_engine.sessions() as session:
        session.execute(
            update(BrokerRow)
            .where(BrokerRow.id == second)
            .values(valid_until=date.today() - timedelta(days=1))
        )
        session.commit()
    service_engine.route_unrouted()
    waiting = [r for r in routed(service_engine) if r.broker_id == second]
    assert waiting and all(r.state not in ("new", "seen") for r in waiting)


# 4 -------------------------------------------------------------------------------------------
def test_a_need_with_an_agreed_deal_is_never_routed_again(service_engine) -> None:  # type: ignore[no-untyped-def]
    outcome, item = first_routed(service_engine)
    deal_id = service_engine.claim(item.broker_id, item.id, actor="test")
    for stage in ("contacted", "nda_signed", "negotiating", "agreed"):
        service_engine.change_stage(deal_id, to=stage, actor="test")
    assert need_state(service_engine, outcome.need_ref)[0] == "closed"
    before = len(routed(service_engine))
    # more room for more matches, a new technology: still nothing new for that need
    with service_engine.sessions() as session:
        session.execute(update(BrokerRow).values(capacity=100))
        session.commit()
    again = service_engine.match_and_route(outcome.need_ref)
    assert again.state is RoutingState.closed and not again.routed_ids
    assert len(routed(service_engine)) == before
    assert outcome.need_ref not in {o.need_ref for o in service_engine.route_unrouted()}


# 5 -------------------------------------------------------------------------------------------
def test_weak_matches_are_not_routed(service_engine) -> None:  # type: ignore[no-untyped-def]
    spam = NeedIn(
        id="N-SPAM",
        enterprise="Party Supplies Ltd",
        title="Catering and entertainment for our annual company party",
        description="We look for a partner to organise our company's annual party with catering, "
        "a band, decorations and transport for 200 guests; low price, reliable service.",
        domains=["08"],
        trl_min=1,
        region_scope="international",
        home_region="CN-ZJ",
    )
    service_engine.save_records("needs", [spam])
    floor = service_engine.routing_rules.min_score
    best = service_engine.match_need("N-SPAM", top=3, persist=False)[0].score
    assert best < floor, f"the spam-like need now scores {best:.3f}: pick a more off-topic text"
    outcome = service_engine.match_and_route("N-SPAM")
    assert outcome.state is RoutingState.unrouted and not outcome.routed_ids
    assert f"scored at least {floor:.2f}" in outcome.reason["en"]
    for ref in need_refs(service_engine, 30):
        service_engine.match_and_route(ref)
    assert all(r.score >= floor for r in routed(service_engine))


# 6 -------------------------------------------------------------------------------------------
def test_the_routing_reason_is_written_in_the_readers_language(  # type: ignore[no-untyped-def]
    service_engine, client, broker_headers
) -> None:
    outcome, item = first_routed(service_engine)
    with service_engine.sessions() as session:
        ref = session.get(BrokerRow, item.broker_id).ref
    headers = broker_headers(ref)
    zh = client.get(f"{API}/brokers/me/inbox/{item.id}?lang=zh", headers=headers).json()
    en = client.get(f"{API}/brokers/me/inbox/{item.id}?lang=en", headers=headers).json()
    assert "工作量" in zh["reason"] and "证书" in zh["reason"]
    assert "workload" not in zh["reason"] and "certificate" not in zh["reason"]
    assert "workload" in en["reason"]


# 8 -------------------------------------------------------------------------------------------
def test_a_national_need_is_routed_only_domestic_technologies(service_engine) -> None:  # type: ignore[no-untyped-def]
    tax = service_engine.taxonomy
    with service_engine.sessions() as session:
        national = list(
            session.scalars(
                select(NeedRow.ref).where(NeedRow.region_scope.in_(["national", "local"]))
            )
        )
    assert national
    for ref in national:
        service_engine.match_and_route(ref)
    with service_engine.sessions() as session:
        pairs = session.execute(
            select(NeedRow.home_region, TechnologyRow.region)
            .join(RoutedMatchRow, RoutedMatchRow.need_id == NeedRow.id)
            .join(TechnologyRow, TechnologyRow.id == RoutedMatchRow.technology_id)
        ).all()
    assert pairs
    for home, region in pairs:
        assert tax.country_of(home) == tax.country_of(region), (home, region)


# 9 -------------------------------------------------------------------------------------------
def test_a_repeated_accept_is_stored_once(service_engine, client, broker_headers) -> None:  # type: ignore[no-untyped-def]
    outcome, item = first_routed(service_engine)
    with service_engine.sessions() as session:
        ref = session.get(BrokerRow, item.broker_id).ref
    url = f"{API}/brokers/me/inbox/{item.id}/feedback"
    first = client.post(url, json={"decision": "accept"}, headers=broker_headers(ref))
    second = client.post(url, json={"decision": "accept"}, headers=broker_headers(ref))
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    with service_engine.sessions() as session:
        stored = session.scalar(
            select(func.count()).select_from(FeedbackRow).where(FeedbackRow.routed_id == item.id)
        )
    assert stored == 1


# 7 -------------------------------------------------------------------------------------------
def test_needs_ranked_for_a_technology_are_explained_by_the_needs_region(service_engine) -> None:  # type: ignore[no-untyped-def]
    tax = service_engine.taxonomy
    with service_engine.sessions() as session:
        techs = list(session.scalars(select(TechnologyRow).order_by(TechnologyRow.id).limit(15)))
        regions = {n.ref: n.home_region for n in session.scalars(select(NeedRow))}
    checked = 0
    for tech in techs:
        for m in service_engine.match_technology(tech.ref, top=5):
            need_region = regions[m.need_ref]
            if tax.country_of(need_region) == tax.country_of(tech.region):
                continue  # the same country: the names may coincide
            assert tax.region_name(need_region) in m.explanations["en"], m.explanations["en"]
            assert tax.region_name(tech.region) not in m.explanations["en"]
            assert tax.region_name(need_region, "zh") in m.explanations["zh"]
            checked += 1
    assert checked >= 5


def test_the_tracking_page_says_in_plain_words_that_a_need_waits(service_engine, client) -> None:  # type: ignore[no-untyped-def]
    for ref in broker_refs(service_engine):
        service_engine.set_broker_status(ref, suspended=True, reroute=False)
    submitted = service_engine.submit(
        {
            "enterprise": "Ningbo Coastal Coatings Co.",
            "title": "Anti-corrosion coating for offshore wind turbine towers",
            "description": "We need a long-life anti-corrosion coating for offshore wind "
            "turbine towers in salt spray, with a service life above 25 years.",
            "domains": ["04"],
            "trl_min": 5,
            "region_scope": "international",
            "home_region": "CN-ZJ",
        },
        side=Side.needs,
    )
    assert service_engine.match_and_route(submitted.ref).state is RoutingState.unrouted
    page = client.get(f"/track/{submitted.token}?lang=en").text
    assert "Waiting for a broker" in page and "no certified broker can take it now" in page
    assert "do not need to submit it again" in page
    zh = client.get(f"/track/{submitted.token}?lang=zh").text
    assert "等待技术经理人" in zh and "目前没有持证技术经理人能够承接" in zh
