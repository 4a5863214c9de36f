"""The operator console (/admin) and the competency API over the demo data: sign-in with an
admin token, unrouted needs routed again, brokers with workload and certificate state, certify /
renew / suspend / upgrade, training records, a broker's competency record (checked against SQL
counts), reassigning an inbox item — over HTTP and, for re-routing, in a real browser."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from matcher.store.competency_models import BrokerCertificateRow, BrokerTrainingRow
from matcher.store.models import BrokerRow, DealRow, FeedbackRow, NeedRow, RoutedMatchRow
from tests.conftest import issue
from tests.service.test_api_brokers import first_routed
from tests.service.test_browser import browser, live_server, shot  # noqa: F401 (fixtures)
from tests.service.test_forms import csrf_of

API = "/api/v1"


def sign_in(client: Any, token: str) -> Any:
    page = client.get("/admin/login?lang=en")
    return client.post(
        "/admin/login?lang=en",
        data={"csrf_token": csrf_of(page.text), "token": token},
        follow_redirects=False,
    )


def post(client: Any, page: Any, path: str, **data: str) -> Any:
    return client.post(
        path, data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False
    )


def broker_refs(engine: Any) -> list[str]:
    with engine.sessions() as session:
        return list(session.scalars(select(BrokerRow.ref).order_by(BrokerRow.ref)))


def count(engine: Any, model: Any, *where: Any) -> int:
    with engine.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def strand_a_need(engine: Any) -> str:
    """Every broker suspended, a need routed: nobody can take it. Its reference."""
    for ref in broker_refs(engine):
        engine.set_broker_status(ref, suspended=True, reroute=False)
    with engine.sessions() as session:
        need = session.scalars(select(NeedRow.ref).order_by(NeedRow.id)).first()
    assert engine.match_and_route(need).state == "unrouted"
    return need


def test_sign_in_needs_an_admin_token_and_every_form_its_csrf_token(
    client: Any, service_engine: Any
) -> None:
    assert (
        client.get("/admin", follow_redirects=False).headers["location"].startswith("/admin/login")
    )
    assert sign_in(client, issue(service_engine, "broker", "B-01")).status_code == 401
    forged = client.post("/admin/login", data={"token": "x"}, follow_redirects=False)
    assert forged.status_code == 400
    signed = sign_in(client, issue(service_engine, "admin"))
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "tm_admin=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert client.get("/admin?lang=en").status_code == 200
    assert client.post("/admin/unrouted/route", data={}, follow_redirects=False).status_code == 400
    assert (
        client.post("/admin/brokers/B-01/suspend", data={}, follow_redirects=False).status_code
        == 400
    )
    assert count(service_engine, BrokerRow, BrokerRow.suspended.is_(True)) == 0


def test_an_unrouted_need_shows_its_reason_and_is_routed_again(
    client: Any, service_engine: Any
) -> None:
    need = strand_a_need(service_engine)
    sign_in(client, issue(service_engine, "admin"))
    page = client.get("/admin?lang=en")
    row = page.text[page.text.index(f'id="need-{need}"') :]
    assert "no certified broker" in row[: row.index("</tr>")]
    assert "暂停" in client.get("/admin?lang=zh").text  # the reason in the page's language
    total = count(
        service_engine, NeedRow, NeedRow.routing_state == "unrouted", NeedRow.status == "active"
    )
    assert f"{total} waiting" in page.text
    still = post(client, page, f"/admin/unrouted/{need}/route?lang=en")
    assert still.status_code == 303 and "done=still_unrouted" in still.headers["location"]
    for ref in broker_refs(service_engine):
        service_engine.set_broker_status(ref, suspended=False, reroute=False)
    routed = post(client, page, f"/admin/unrouted/{need}/route?lang=en")
    assert "done=routed" in routed.headers["location"]
    assert f'id="need-{need}"' not in client.get("/admin?lang=en").text
    with service_engine.sessions() as session:
        assert session.scalar(select(NeedRow.routing_state).where(NeedRow.ref == need)) == "routed"
    everything = post(client, page, "/admin/unrouted/route?lang=en")
    assert everything.status_code == 303 and "done=routed_all" in everything.headers["location"]


def test_brokers_show_workload_and_certificate_state_and_are_managed(
    client: Any, service_engine: Any
) -> None:
    refs = broker_refs(service_engine)
    soon, gone, off = refs[0], refs[1], refs[2]
    with service_engine.sessions() as session:
        for ref, until in ((soon, 10), (gone, -3)):
            session.scalar(select(BrokerRow).where(BrokerRow.ref == ref)).valid_until = (
                date.today() + timedelta(days=until)
            )
        session.commit()
    service_engine.set_broker_status(off, suspended=True, reroute=False)
    sign_in(client, issue(service_engine, "admin"))
    page = client.get("/admin/brokers?lang=en")
    for ref, state in ((soon, "expiring"), (gone, "expired"), (off, "suspended")):
        assert re.search(rf'id="broker-{ref}" class="cert-{state}"', page.text), ref
    assert "即将到期" in client.get("/admin/brokers?lang=zh").text
    # workload against capacity, as the routing counts it
    with service_engine.sessions() as session:
        b = session.scalar(select(BrokerRow).where(BrokerRow.ref == refs[3]))
        waiting = session.scalar(
            select(func.count())
            .select_from(RoutedMatchRow)
            .where(RoutedMatchRow.broker_id == b.id, RoutedMatchRow.state.in_(("new", "seen")))
        )
        open_deals = session.scalar(
            select(func.count())
            .select_from(DealRow)
            .where(
                DealRow.broker_id == b.id,
                DealRow.stage.in_(("claimed", "contacted", "nda_signed", "negotiating")),
            )
        )
        row = page.text[page.text.index(f'id="broker-{refs[3]}"') :]
        assert f"{waiting + open_deals}/{b.capacity}" in row[: row.index("</tr>")]

    # certify: a field error next to the field, input kept; then the broker and a token
    bad = post(
        client,
        page,
        "/admin/brokers?lang=en",
        name="Wang Fang",
        certificate_no="",
        level="advanced",
    )
    assert (
        bad.status_code == 422
        and 'id="c-certificate_no-error"' in bad.text
        and 'value="Wang Fang"' in bad.text
    )
    good = post(
        client,
        page,
        "/admin/brokers?lang=en",
        name="Wang Fang",
        certificate_no="TM-2026-INT-77777",
        level="beginner",
        valid_until=(date.today() + timedelta(days=365)).isoformat(),
        domains="04.06",
        regions="CN",
        capacity="5",
        email="wang.fang@example.org",
    )
    assert good.status_code == 201 and 'id="new-token"' in good.text
    new = re.search(r"Broker (B-\d+) certified", good.text)
    assert new is not None
    ref = new.group(1)
    later = (date.today() + timedelta(days=700)).isoformat()
    assert (
        post(client, page, f"/admin/brokers/{ref}/renew?lang=en", valid_until=later).status_code
        == 303
    )
    assert post(client, page, f"/admin/brokers/{ref}/suspend?lang=en").status_code == 303
    assert post(client, page, f"/admin/brokers/{ref}/reinstate?lang=en").status_code == 303
    same = post(
        client,
        page,
        f"/admin/brokers/{ref}/upgrade?lang=en",
        level="beginner",
        certificate_no="X-1",
        valid_until=later,
    )
    assert same.status_code == 422
    up = post(
        client,
        page,
        f"/admin/brokers/{ref}/upgrade?lang=en",
        level="intermediate",
        certificate_no="TM-2027-INT-00001",
        valid_until=later,
    )
    assert up.status_code == 303
    future = post(
        client,
        page,
        f"/admin/brokers/{ref}/trainings?lang=zh",
        course="技术经纪实务",
        level="intermediate",
        taken_on=(date.today() + timedelta(days=2)).isoformat(),
        hours="16",
        training_base="浙江省技术转移培训基地",
    )
    assert future.status_code == 422 and "课程完成后" in future.text
    added = post(
        client,
        page,
        f"/admin/brokers/{ref}/trainings?lang=en",
        course="Technology brokerage practice",
        level="intermediate",
        taken_on=date.today().isoformat(),
        hours="16",
        training_base="Zhejiang Technology Transfer Training Base",
    )
    assert added.status_code == 303
    detail = client.get(f"/admin/brokers/{ref}?lang=en").text
    with service_engine.sessions() as session:
        broker_id = session.scalar(select(BrokerRow.id).where(BrokerRow.ref == ref))
        events = list(
            session.scalars(
                select(BrokerCertificateRow.event)
                .where(BrokerCertificateRow.broker_id == broker_id)
                .order_by(BrokerCertificateRow.id)
            )
        )
    assert events == ["certified", "renewed", "suspended", "reinstated", "upgraded"]
    assert detail.count('class="event-') == len(events) and "TM-2027-INT-00001" in detail
    assert "Technology brokerage practice" in detail and "16 hours in all" in detail


def test_the_competency_api_agrees_with_the_store(
    client: Any, service_engine: Any, api_settings: Any, admin_headers: dict[str, str]
) -> None:
    ref, rid = first_routed(service_engine, api_settings)
    with service_engine.sessions() as session:
        broker = session.scalar(select(BrokerRow).where(BrokerRow.ref == ref))
    token = issue(service_engine, "broker", ref)
    mine = {"Authorization": f"Bearer {token}"}
    # a deal, moved on and agreed with a value; a decline with a reason
    deal_id = service_engine.claim(broker.id, rid, actor=f"broker:{ref}")
    for stage in ("contacted", "nda_signed", "negotiating", "agreed"):
        service_engine.change_stage(deal_id, to=stage, actor="admin", reroute=False)
    with service_engine.sessions() as session:
        deal = session.get(DealRow, deal_id)
        deal.contract_value, deal.contract_currency = 250000.0, "CNY"
        session.commit()
    training = {
        "course": "Patent valuation",
        "level": "advanced",
        "taken_on": date.today().isoformat(),
        "hours": 24,
        "training_base": "National Technology Transfer Eastern Centre",
    }
    added = client.post(f"{API}/brokers/{ref}/trainings", json=training, headers=admin_headers)
    assert added.status_code == 201 and added.json()["hours"] == 24
    too_long = client.post(
        f"{API}/brokers/{ref}/trainings", json={**training, "hours": 401}, headers=admin_headers
    )
    assert too_long.status_code == 422
    future = (date.today() + timedelta(days=1)).isoformat()
    later = client.post(
        f"{API}/brokers/{ref}/trainings",
        json={**training, "taken_on": future},
        headers=admin_headers,
    )
    assert later.status_code == 422 and later.json()["errors"][0]["type"] == "date_future"
    assert (
        client.post(f"{API}/brokers/{ref}/trainings", json=training, headers=mine).status_code
        == 403
    )

    record = client.get(f"{API}/brokers/{ref}/competency", headers=admin_headers)
    assert record.status_code == 200
    own = client.get(f"{API}/brokers/me/competency", headers=mine).json()
    assert own == record.json()
    tr = own["track_record"]
    with service_engine.sessions() as session:
        routed = session.scalar(
            select(func.count())
            .select_from(RoutedMatchRow)
            .where(RoutedMatchRow.broker_id == broker.id)
        )
        accepted = session.scalar(
            select(func.count())
            .select_from(FeedbackRow)
            .where(FeedbackRow.broker_id == broker.id, FeedbackRow.decision == "accept")
        )
        opened = session.scalar(
            select(func.count()).select_from(DealRow).where(DealRow.broker_id == broker.id)
        )
    assert (tr["routed"], tr["accepted"], tr["deals_opened"], tr["agreed"]) == (
        routed,
        accepted,
        opened,
        1,
    )
    assert tr["agreed_value"] == {"CNY": 250000.0}
    assert tr["median_days"]["claimed"] is not None and tr["median_days"]["claimed"] >= 0
    assert own["history"][0]["event"] == "certified"
    assert own["trainings"][0]["course"] == "Patent valuation"
    assert count(service_engine, BrokerTrainingRow, BrokerTrainingRow.broker_id == broker.id) == 1

    # an upgrade: a higher level, a new number, recorded as such
    body = {"level": "advanced", "certificate_no": "TM-2027-ADV-00042", "valid_until": future}
    if broker.level == "advanced":
        assert (
            client.post(
                f"{API}/brokers/{ref}/upgrade", json=body, headers=admin_headers
            ).status_code
            == 422
        )
    else:
        up = client.post(f"{API}/brokers/{ref}/upgrade", json=body, headers=admin_headers)
        assert up.status_code == 200 and up.json()["level"] == "advanced"
        history = client.get(f"{API}/brokers/{ref}/competency", headers=admin_headers).json()[
            "history"
        ]
        assert (
            history[-1]["event"] == "upgraded"
            and history[-1]["certificate_no"] == "TM-2027-ADV-00042"
        )
    other = next(r for r in broker_refs(service_engine) if r != ref)
    with service_engine.sessions() as session:
        taken = session.scalar(select(BrokerRow.certificate_no).where(BrokerRow.ref == other))
    clash = {"level": "advanced", "certificate_no": taken, "valid_until": future}
    assert client.post(
        f"{API}/brokers/{ref}/upgrade", json=clash, headers=admin_headers
    ).status_code in (409, 422)


def test_an_operator_reassigns_an_unclaimed_item(
    client: Any, service_engine: Any, api_settings: Any, admin_headers: dict[str, str]
) -> None:
    ref, rid = first_routed(service_engine, api_settings)
    with service_engine.sessions() as session:
        others = session.scalars(
            select(BrokerRow).where(BrokerRow.ref != ref, BrokerRow.capacity > 0)
        ).all()
        to = next(b.ref for b in others)
    sign_in(client, issue(service_engine, "admin"))
    page = client.get(f"/admin/brokers/{ref}?lang=en")
    assert f'id="item-{rid}"' in page.text
    moved = post(client, page, f"/admin/routed/{rid}/reassign?lang=en", broker=to)
    assert moved.status_code == 303
    with service_engine.sessions() as session:
        item = session.get(RoutedMatchRow, rid)
        assert session.get(BrokerRow, item.broker_id).ref == to and item.state == "new"
        need = session.get(NeedRow, item.need_id).ref
    assert f'id="item-{rid}"' not in client.get(f"/admin/brokers/{ref}?lang=en").text
    old = {"Authorization": f"Bearer {issue(service_engine, 'broker', ref)}"}
    assert rid not in [
        i["id"] for i in client.get(f"{API}/brokers/me/inbox", headers=old).json()["items"]
    ]
    audit = client.get(f"{API}/admin/audit", params={"ref": need}, headers=admin_headers).json()[
        "items"
    ]
    assert audit[0]["action"] == "reassign" and audit[0]["after"]["broker"] == to
    # back through the API; to itself is a conflict
    back = client.post(f"{API}/routed/{rid}/reassign", json={"broker": ref}, headers=admin_headers)
    assert (
        back.status_code == 200
        and back.json()["broker"] == ref
        and back.json()["previous_broker"] == to
    )
    again = client.post(f"{API}/routed/{rid}/reassign", json={"broker": ref}, headers=admin_headers)
    assert again.status_code == 409
    service_engine.claim(_id(service_engine, ref), rid, actor=f"broker:{ref}")
    claimed = client.post(
        f"{API}/routed/{rid}/reassign", json={"broker": to}, headers=admin_headers
    )
    assert claimed.status_code == 409 and "unclaimed" in claimed.json()["detail"]


def _id(engine: Any, ref: str) -> int:
    with engine.sessions() as session:
        return int(session.scalar(select(BrokerRow.id).where(BrokerRow.ref == ref)))


def test_an_operator_reroutes_an_unrouted_need_in_a_real_browser(
    browser: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    service_engine: Any,
) -> None:
    need = strand_a_need(service_engine)
    token = issue(service_engine, "admin")
    page = browser.new_page()
    try:
        page.goto(f"{live_server}/admin?lang=en")
        assert "/admin/login" in page.url
        page.get_by_label("Administrator token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/admin\?lang=en"))
        row = page.locator(f"#need-{need}")
        assert "no certified broker" in row.inner_text()
        # the cause fixed: the brokers back at work
        for ref in broker_refs(service_engine):
            service_engine.set_broker_status(ref, suspended=False, reroute=False)
        page.locator(f"#route-{need}").click()
        page.wait_for_selector("#done")
        assert page.locator(f"#need-{need}").count() == 0
        shot(page, "operator-console-rerouted")
    finally:
        page.close()
    with service_engine.sessions() as session:
        assert session.scalar(select(NeedRow.routing_state).where(NeedRow.ref == need)) == "routed"
