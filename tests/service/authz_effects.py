"""What a row of the authorization table sends, and what it must leave behind.

For each endpoint (a catalogue path's side written ``{side}``): the request it sends, the stored
state a write may change, how an allowed write must have changed it (and audited it), and the
checks a read's variant names: a teaser, a confidential record absent from a list …
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from matcher.domain import Side
from matcher.store import repo
from matcher.store.competency_models import BrokerTrainingRow
from matcher.store.models import (
    ApiTokenRow,
    BrokerRow,
    DealEventRow,
    DealRow,
    FeedbackRow,
    RecordEventRow,
    RoutedMatchRow,
)
from matcher.store.repo.ownership import fields_of
from tests.service.authz_world import (
    ACTING,
    FORMS,
    LAPSED,
    LISTED,
    ME,
    PARTIES,
    WEBHOOK,
    Target,
    World,
    broker_body,
    need_body,
    technology_body,
)

Row = tuple[str, str, str, str, int, str]  # role, method, path, target, status, variant


@dataclass
class Call:
    """One row being run: who, what, on which target; what was sent and answered."""

    world: World
    role: str
    path: str
    side: Side
    target: Target
    variant: str
    broker: str  # whose relations the target names
    request: dict[str, Any] = field(default_factory=dict)
    response: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def side_of(path: str) -> Side:
    """The side a path works on (a search: technologies, the side the rows search)."""
    technologies = "/technologies" in path or path.endswith("/search")
    return Side.technologies if technologies else Side.needs


def generic(path: str) -> str:
    """A path with its side written ``{side}`` (the key of ``ENDPOINTS``)."""
    return re.sub(r"/(technologies|needs)(?=/|$)", "/{side}", path)


def url_of(path: str, target: Target, side: Side) -> str:
    return path.format(
        key=target.ref(side),
        routed_id=target.routed_id,
        deal_id=target.deal_id,
        ref=target.broker,
        token=target.token,
        path=target.token,
    )


# -- stored state ------------------------------------------------------------------------
def record_state(call: Call) -> dict[str, Any]:
    """A record's fields, status, confidentiality and creator, and how often it was audited."""
    ref = call.target.ref(call.side)
    row = call.world.row(repo.row_model(call.side), ref)
    return {
        **fields_of(call.side, row),
        "status": row.status,
        "confidential": row.confidential,
        "created_by": row.created_by,
        "audited": call.world.count(RecordEventRow, RecordEventRow.ref == ref),
    }


def audited(call: Call, ref: str, action: str, fields: Any = ()) -> None:
    """The newest audit entry of ``ref`` (through GET /admin/audit) is this change by the caller."""
    newest = call.world.audit(ref)[0]
    assert (newest["action"], newest["actor"]) == (action, call.world.actor(call.role)), newest
    assert set(fields) <= set(newest["fields"]), newest


def created(call: Call, before: int, after: int) -> None:
    assert after == before + 1
    ref = call.response.json()["ref"]
    row = call.world.row(repo.row_model(call.side), ref)
    assert row.created_by == call.world.broker_ids.get(ACTING.get(call.role, ""))
    audited(call, ref, "create")


def patched(call: Call, before: dict[str, Any], after: dict[str, Any]) -> None:
    change = call.request["json"]
    assert {k: after[k] for k in change} == change, after
    assert {k: v for k, v in after.items() if k not in change and k != "audited"} == {
        k: v for k, v in before.items() if k not in change and k != "audited"
    }
    audited(call, call.target.ref(call.side), "update", change)


def archived(call: Call, before: dict[str, Any], after: dict[str, Any]) -> None:
    assert (before["status"], after["status"]) == ("active", "archived")
    audited(call, call.target.ref(call.side), "archive", ["status"])


def imported(call: Call, before: int, after: int) -> None:
    assert after == before + 1 and call.response.json()["created"] == 1
    audited(call, call.extra["ref"], "create")


def target_broker(call: Call) -> tuple[Any, ...]:
    row = call.world.row(BrokerRow, call.target.broker)
    tokens = call.world.count(ApiTokenRow, ApiTokenRow.broker_id == row.id)
    return row.valid_until, row.suspended, row.level, tokens


def item_state(call: Call) -> tuple[Any, ...]:
    routed = call.target.routed_id
    item = call.world.row(RoutedMatchRow, routed)
    feedback = call.world.count(FeedbackRow, FeedbackRow.routed_id == routed)
    deals = call.world.count(DealRow, DealRow.routed_id == routed)
    return item.state, item.broker_id, feedback, deals


def trainings_of(call: Call) -> int:
    row = call.world.row(BrokerRow, call.target.broker)
    return call.world.count(BrokerTrainingRow, BrokerTrainingRow.broker_id == row.id)


def deal_state(call: Call) -> tuple[Any, ...]:
    deal = call.world.row(DealRow, call.target.deal_id)
    events = call.world.count(DealEventRow, DealEventRow.deal_id == deal.id)
    return deal.stage, events


def contract_state(call: Call) -> tuple[Any, ...]:
    deal = call.world.row(DealRow, call.target.deal_id)
    events = call.world.count(DealEventRow, DealEventRow.deal_id == deal.id)
    return deal.contract_type, events


def webhook_state(call: Call) -> tuple[Any, ...]:
    row = call.world.row(BrokerRow, call.broker)
    return row.webhook_url, row.webhook_secret


def records_of_side(call: Call) -> int:
    return call.world.count(repo.row_model(call.side))


def lapsed_waiting(call: Call) -> int:
    """Inbox items still waiting for the lapsed broker (what routing again takes back)."""
    return call.world.count(
        RoutedMatchRow,
        RoutedMatchRow.broker_id == call.world.broker_ids[LAPSED],
        RoutedMatchRow.state.in_(("new", "seen")),
    )


# -- requests ----------------------------------------------------------------------------
def new_record(call: Call) -> dict[str, Any]:
    make = technology_body if call.side is Side.technologies else need_body
    extra = {"confidential": True} if call.variant == "classify" else {}
    return {"json": make("authz-row", **extra)}


def import_file(call: Call) -> dict[str, Any]:
    make = technology_body if call.side is Side.technologies else need_body
    call.extra["ref"] = f"IMP-{next(call.world.counter):03d}"
    line = json.dumps({"id": call.extra["ref"], **make("authz-row")})
    return {"files": {"file": ("records.jsonl", line.encode(), "application/x-ndjson")}}


def change(call: Call) -> dict[str, Any]:
    if call.variant in ("declassify", "classify"):
        return {"json": {"confidential": call.variant == "classify"}}
    if call.side is Side.technologies:
        return {"json": {"keywords": ["authz-changed"]}}
    return {"json": {"contact": "someone.else@example.org"}}  # the need's contact


def search(call: Call) -> dict[str, Any]:
    text = f"{call.target.tag} graphene epoxy antifouling coating for steel hulls"
    return {"json": {"text": text, "target": "technologies", "top": 20}}


def with_webhook(call: Call) -> dict[str, Any]:
    call.world.set_broker(call.broker, webhook_url=WEBHOOK["url"], webhook_secret="s" * 20)
    return {}


def form(call: Call) -> dict[str, Any]:
    data = dict(FORMS[call.side])
    if call.variant != "no_csrf":
        page = call.world.client.get(f"/{call.side.value}/new").text
        data["csrf_token"] = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]
    return {"data": data}


def with_cookies(call: Call) -> dict[str, Any]:
    for name, value in call.target.cookies.items():
        call.world.client.cookies.set(name, value)
    return {}


def nothing(call: Call) -> dict[str, Any]:
    return {}


def body(value: Any) -> Callable[[Call], dict[str, Any]]:
    return lambda call: {"json": value() if callable(value) else value}


@dataclass(frozen=True)
class Endpoint:
    """How a row calls an endpoint and, for a write, what it may change."""

    send: Callable[[Call], dict[str, Any]] = nothing
    state: Callable[[Call], Any] | None = None
    changed: Callable[[Call, Any, Any], None] | None = None


def to(expected: Callable[[Any, Any], bool]) -> Callable[[Call, Any, Any], None]:
    def check(call: Call, before: Any, after: Any) -> None:
        assert expected(before, after), (before, after)

    return check


A, SIDE = "/api/v1", "/api/v1/{side}"
CONTRACT = {
    "type": "licence",
    "value": 250000,
    "currency": "CNY",
    "signed_on": "2026-01-15",
    "parties": ["Authz Institute of Marine Coatings", "Authz Harbour Tugs Co."],
}
RECORD = Endpoint(state=record_state, changed=archived)
ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("POST", SIDE): Endpoint(new_record, records_of_side, created),
    ("POST", f"{SIDE}/import"): Endpoint(import_file, records_of_side, imported),
    ("GET", SIDE): Endpoint(lambda c: {"params": {"q": c.target.tag, "limit": 100}}),
    ("GET", f"{SIDE}/{{key}}"): Endpoint(),
    ("PATCH", f"{SIDE}/{{key}}"): Endpoint(change, record_state, patched),
    ("POST", f"{SIDE}/{{key}}/archive"): RECORD,
    ("DELETE", f"{SIDE}/{{key}}"): RECORD,
    ("GET", f"{SIDE}/{{key}}/matches"): Endpoint(lambda c: {"params": {"top": 5}}),
    ("POST", f"{A}/search"): Endpoint(search),
    ("GET", f"{A}/taxonomy/suggest"): Endpoint(
        lambda c: {"params": {"text": "graphene epoxy antifouling coating for steel hulls"}}
    ),
    ("GET", f"{A}/brokers/me"): Endpoint(),
    ("PUT", f"{A}/brokers/me/webhook"): Endpoint(
        body(WEBHOOK), webhook_state, to(lambda b, a: a == (WEBHOOK["url"], WEBHOOK["secret"]))
    ),
    ("DELETE", f"{A}/brokers/me/webhook"): Endpoint(
        with_webhook, webhook_state, to(lambda b, a: b[0] and a == (None, None))
    ),
    ("GET", f"{A}/brokers/me/inbox"): Endpoint(),
    ("GET", f"{A}/brokers/me/inbox/{{routed_id}}"): Endpoint(),
    ("POST", f"{A}/brokers/me/inbox/{{routed_id}}/feedback"): Endpoint(
        body({"decision": "decline", "reason_code": "not_relevant"}),
        item_state,
        to(lambda b, a: a[0] == "declined" and a[2] == b[2] + 1),
    ),
    ("GET", f"{A}/brokers/decline-reasons"): Endpoint(),
    ("POST", f"{A}/brokers/me/inbox/{{routed_id}}/claim"): Endpoint(
        nothing, item_state, to(lambda b, a: a[0] == "claimed" and a[3] == b[3] + 1)
    ),
    ("GET", f"{A}/deals"): Endpoint(),
    ("GET", f"{A}/deals/{{deal_id}}"): Endpoint(),
    ("POST", f"{A}/deals/{{deal_id}}/stage"): Endpoint(
        body({"to": "contacted"}), deal_state, to(lambda b, a: a == ("contacted", b[1] + 1))
    ),
    ("POST", f"{A}/deals/{{deal_id}}/notes"): Endpoint(
        body({"note": "called the enterprise"}), deal_state, to(lambda b, a: a[1] == b[1] + 1)
    ),
    ("PUT", f"{A}/deals/{{deal_id}}/contract"): Endpoint(
        body(CONTRACT), contract_state, to(lambda b, a: a == ("licence", b[1] + 1))
    ),
    ("GET", f"{A}/market"): Endpoint(lambda c: {"params": {"domain": "04.06", "limit": 100}}),
    ("GET", f"{A}/market/stats"): Endpoint(),
    ("GET", "/market"): Endpoint(lambda c: {"params": {"domain": "04.06"}}),
    ("GET", "/market/stats"): Endpoint(),
    ("POST", f"{A}/admin/brokers"): Endpoint(
        lambda c: {"json": broker_body(next(c.world.counter))},
        lambda c: c.world.count(BrokerRow),
        to(lambda b, a: a == b + 1),
    ),
    ("GET", f"{A}/admin/brokers"): Endpoint(),
    ("GET", f"{A}/admin/brokers/{{ref}}"): Endpoint(),
    ("POST", f"{A}/admin/brokers/{{ref}}/renew"): Endpoint(
        body(lambda: {"valid_until": (date.today() + timedelta(days=730)).isoformat()}),
        target_broker,
        to(lambda b, a: a[0] == date.today() + timedelta(days=730)),
    ),
    ("POST", f"{A}/admin/brokers/{{ref}}/suspend"): Endpoint(
        nothing, target_broker, to(lambda b, a: (b[1], a[1]) == (False, True))
    ),
    ("POST", f"{A}/admin/brokers/{{ref}}/reinstate"): Endpoint(
        nothing, target_broker, to(lambda b, a: (b[1], a[1]) == (True, False))
    ),
    ("POST", f"{A}/admin/brokers/{{ref}}/tokens"): Endpoint(
        nothing, target_broker, to(lambda b, a: a[3] == b[3] + 1)
    ),
    ("GET", f"{A}/admin/unrouted"): Endpoint(),
    ("POST", f"{A}/admin/unrouted/route"): Endpoint(
        nothing, lapsed_waiting, to(lambda b, a: b > 0 and a == 0)
    ),
    ("GET", f"{A}/admin/audit"): Endpoint(),
    ("GET", f"{A}/admin/webhook-deliveries"): Endpoint(),
    # the HTML pages and what anyone may read
    ("GET", "/{side}/new"): Endpoint(),
    ("POST", "/{side}/new"): Endpoint(form, records_of_side, to(lambda b, a: a == b + 1)),
    ("GET", "/{side}/submitted"): Endpoint(with_cookies),
    ("GET", "/track/{token}"): Endpoint(),
    ("GET", "/static/{path}"): Endpoint(),
    ("GET", "/static/docs/{path}"): Endpoint(),
    ("GET", "/health"): Endpoint(),
    ("GET", "/openapi.json"): Endpoint(),
    ("GET", "/docs"): Endpoint(),
    ("GET", "/docs/oauth2-redirect"): Endpoint(),
    ("GET", "/redoc"): Endpoint(),
    # broker competency and reassignment
    ("GET", f"{A}/brokers/me/competency"): Endpoint(),
    ("GET", f"{A}/brokers/{{ref}}/competency"): Endpoint(),
    ("POST", f"{A}/brokers/{{ref}}/trainings"): Endpoint(
        body(
            lambda: {
                "course": "Technology transfer practice",
                "level": "intermediate",
                "taken_on": date.today().isoformat(),
                "hours": 16,
                "training_base": "Authz Training Base",
            }
        ),
        trainings_of,
        to(lambda b, a: a == b + 1),
    ),
    ("POST", f"{A}/brokers/{{ref}}/upgrade"): Endpoint(
        lambda c: {
            "json": {
                "level": "advanced",
                "certificate_no": f"TM-2027-ADV-9{next(c.world.counter):04d}",
                "valid_until": (date.today() + timedelta(days=730)).isoformat(),
            }
        },
        target_broker,
        to(lambda b, a: (b[2], a[2]) == ("intermediate", "advanced")),
    ),
    ("POST", f"{A}/routed/{{routed_id}}/reassign"): Endpoint(
        lambda c: {"json": {"broker": c.world.new_broker().broker}},
        item_state,
        to(lambda b, a: a[0] == "new" and a[1] != b[1]),
    ),
    # the consoles' pages (signed out: to the sign-in page; a form without CSRF: 400)
    **{
        (method, path): Endpoint()
        for method, path in [
            ("GET", "/broker/login"),
            ("POST", "/broker/login"),
            ("POST", "/broker/logout"),
            ("GET", "/broker"),
            ("POST", "/broker/inbox/{routed_id}/claim"),
            ("POST", "/broker/inbox/{routed_id}/verdict"),
            ("GET", "/broker/deals"),
            ("POST", "/broker/deals/{deal_id}/stage"),
            ("POST", "/broker/deals/{deal_id}/note"),
            ("POST", "/broker/deals/{deal_id}/due"),
            ("GET", "/broker/search"),
            ("GET", "/admin/login"),
            ("POST", "/admin/login"),
            ("POST", "/admin/logout"),
            ("GET", "/admin"),
            ("POST", "/admin/unrouted/route"),
            ("POST", "/admin/unrouted/{key}/route"),
            ("GET", "/admin/brokers"),
            ("POST", "/admin/brokers"),
            ("GET", "/admin/brokers/{ref}"),
            ("POST", "/admin/brokers/{ref}/renew"),
            ("POST", "/admin/brokers/{ref}/suspend"),
            ("POST", "/admin/brokers/{ref}/reinstate"),
            ("POST", "/admin/brokers/{ref}/upgrade"),
            ("POST", "/admin/brokers/{ref}/trainings"),
            ("POST", "/admin/routed/{routed_id}/reassign"),
        ]
    },
    ("GET", "/track/{token}/edit"): Endpoint(),
    ("POST", "/track/{token}/edit"): Endpoint(),
    ("POST", "/track/{token}/withdraw"): Endpoint(),
    ("GET", "/broker/login"): Endpoint(),
    ("POST", "/broker/login"): Endpoint(),
    ("POST", "/broker/logout"): Endpoint(),
    ("GET", "/broker"): Endpoint(),
    ("GET", "/broker/deals"): Endpoint(),
    ("GET", "/broker/search"): Endpoint(),
    # refused by a redirect to the sign-in page: the store must not change
    ("POST", "/broker/inbox/{routed_id}/claim"): Endpoint(
        nothing, item_state, to(lambda b, a: a == b)
    ),
    ("POST", "/broker/inbox/{routed_id}/verdict"): Endpoint(
        lambda c: {"data": {"decision": "accept"}}, item_state, to(lambda b, a: a == b)
    ),
    ("POST", "/broker/deals/{deal_id}/stage"): Endpoint(
        lambda c: {"data": {"to": "contacted"}}, deal_state, to(lambda b, a: a == b)
    ),
    ("POST", "/broker/deals/{deal_id}/note"): Endpoint(
        lambda c: {"data": {"note": "x"}}, deal_state, to(lambda b, a: a == b)
    ),
    ("POST", "/broker/deals/{deal_id}/due"): Endpoint(nothing, deal_state, to(lambda b, a: a == b)),
    ("POST", "/broker/deals/{deal_id}/contract"): Endpoint(
        nothing, deal_state, to(lambda b, a: a == b)
    ),
    ("GET", "/analytics"): Endpoint(),
    ("GET", "/analytics/map.svg"): Endpoint(),
    ("GET", "/analytics/chart.svg"): Endpoint(),
    ("GET", "/analytics/regions.csv"): Endpoint(),
    ("GET", "/analytics/flows.csv"): Endpoint(),
    ("GET", f"{A}/analytics/regions"): Endpoint(),
    ("GET", f"{A}/analytics/flows"): Endpoint(),
}


# -- what a read shows -------------------------------------------------------------------
def refs_in(call: Call) -> set[str]:
    items = call.response.json()["items"]
    return {i.get("ref") or i.get(f"{call.side.singular}_ref") for i in items}


def parties(call: Call) -> list[Any]:
    """The parties' names and contact in the answer (None where a teaser leaves them out)."""
    answer = call.response.json()
    if "need" in answer and "technology" in answer:  # an inbox item or a deal
        return [answer["need"].get(k) for k in PARTIES[Side.needs]] + [
            answer["technology"].get("owner")
        ]
    if "items" in answer:  # a page: the target's records in it
        ref = call.target.ref(call.side)
        answer = next(i for i in answer["items"] if i["ref"] == ref)
    return [answer[k] for k in PARTIES[call.side]]


def tracking_page(call: Call) -> None:
    page = call.response.text
    assert 'id="status"' in page
    for secret in (FORMS[Side.needs]["enterprise"], FORMS[Side.needs]["contact"]):
        assert secret not in page


def only_mine(call: Call) -> None:
    """Every item listed is the caller's: their deals, the matches routed to them."""
    answer, mine = call.response.json(), call.world.broker_ids[call.broker]
    assert answer["items"], "the caller's own items are listed"
    for item in answer["items"]:
        if "stage" in item:  # a deal
            assert item["broker"] == call.broker, item
        else:  # an inbox item
            assert call.world.row(RoutedMatchRow, item["id"]).broker_id == mine, item


def market_teaser(call: Call) -> None:
    """A confidential listing is on the market as a teaser: its number, never its owner,
    reference, title, terms or price."""
    row = call.world.row(repo.row_model(Side.technologies), call.target.technology)
    shown = call.response.text
    for secret in (row.ref, row.title, LISTED["owner"], LISTED["licensing_terms"], "123456"):
        assert secret not in shown, secret
    if call.path.startswith(A):
        entry = next(i for i in call.response.json()["items"] if i["id"] == row.id)
        assert entry["confidential"] and entry["owner"] is None, entry
    else:
        assert f'id="listing-{row.id}"' in shown


CHECKS: dict[str, Callable[[Call], None]] = {
    "teaser": lambda c: _assert(all(v is None for v in parties(c)), parties(c)),
    "full": lambda c: _assert(all(v for v in parties(c)), parties(c)),
    "absent": lambda c: _assert(c.target.ref(c.side) not in refs_in(c), refs_in(c)),
    "present": lambda c: _assert(c.target.ref(c.side) in refs_in(c), refs_in(c)),
    "mine": only_mine,
    "status_only": tracking_page,
    "market_teaser": market_teaser,
}


def _assert(condition: bool, shown: Any) -> None:
    assert condition, shown


def run(world: World, row: Row) -> None:
    """Send the row's request as its role; check the status, the store and what was shown."""
    role, method, path, target_name, status, variant = row
    side, broker, allowed = side_of(path), ACTING.get(role, ME), status < 400
    target = world.target(target_name, broker, side, fresh=method != "GET" and allowed)
    call = Call(world, role, path, side, target, variant, broker)
    endpoint = ENDPOINTS[(method, generic(path))]
    # on the HTML pages the submitter holds a link, not a token
    headers = {} if role == "submitter" and not path.startswith(A) else world.headers(role)
    world.client.cookies.clear()
    call.request = endpoint.send(call)
    before = endpoint.state(call) if endpoint.state else None
    call.response = world.client.request(
        method, url_of(path, target, side), headers=headers, follow_redirects=False, **call.request
    )
    assert call.response.status_code == status, call.response.text[:500]
    if endpoint.state is not None:
        after = endpoint.state(call)
        if allowed:
            assert endpoint.changed is not None
            endpoint.changed(call, before, after)
        else:
            assert after == before, "a refused write changed the store"
    if variant in CHECKS:
        CHECKS[variant](call)
