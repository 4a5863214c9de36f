"""Who may do what, end to end: every role × every endpoint and page × target → HTTP status.

The permission model (matcher/permissions.py, tests/unit/test_permissions.py) as the service
applies it. Roles: ``admin``; ``broker`` (B-01, certificate valid); ``lapsed`` (certificate
expired); ``suspended``; ``anonymous`` (no token); ``bad_token``; ``revoked`` (a token of B-01,
revoked); ``submitter`` (holds a tracking link; on the API, presents it as a bearer token).
Targets are named by their relation to the acting broker (B-01 for roles without one):

    own            a technology and a need the broker created
    others         … created by another broker (B-02)
    routed         routed to the broker, not claimed yet (an inbox item)
    deal           routed to the broker and claimed: their open deal
    others_routed  routed to B-02, not claimed;   others_deal: in B-02's open deal
    conf_hidden    confidential, routed to B-02 only;   conf_routed: confidential, routed to
                   the broker;   conf_deal: confidential, in the broker's open deal
    self, other_broker, spare_broker, expired_broker, suspended_broker   brokers (admin paths)
    my_link, wrong_link, my_submission    a submitter's tracking link, a made-up one, the
                   confirmation cookie of a submission
    agreed_deal    the broker's deal, moved on to agreed;   conf_listed: a confidential
                   technology open for licensing (the public market's teaser)

A path with ``{side}`` stands for technologies and needs alike. A variant names the body
(``declassify``, ``classify``) or what the answer must show (``teaser``: no enterprise, owner or
contact; ``full``; ``absent``/``present`` in a list or search; ``mine``: only the caller's
items; ``status_only``). Every write compares the stored state before and after (unchanged
when refused; changed as asked and audited when allowed; tests/service/authz_effects.py), and
gets targets of its own when it is expected to succeed. ``isolated`` rows run in a world of
their own (routing again moves matches the other rows rely on).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.authz_effects import ENDPOINTS, Row, generic, run
from tests.service.authz_world import World

V1 = "/api/v1"
S = "/api/v1/{side}"
INBOX = "/api/v1/brokers/me/inbox/{routed_id}"
DEAL = "/api/v1/deals/{deal_id}"
ADMIN = "/api/v1/admin"
OUT = ("anonymous", "bad_token", "revoked", "submitter")  # no valid token: 401 everywhere
API_ROLES = ("admin", "broker", "lapsed", "suspended", *OUT)
PUBLIC_API = {f"{V1}/market", f"{V1}/market/stats"}  # no token needed: every role has its row

TABLE: list[tuple[Any, ...]] = [
    # -- the catalogue: create, import, list, read ------------------------------------------
    ("admin", "POST", S, "-", 201),
    ("broker", "POST", S, "-", 201),
    ("broker", "POST", S, "-", 403, "classify"),  # only an admin makes a record confidential
    ("lapsed", "POST", S, "-", 403),
    ("admin", "POST", f"{S}/import", "-", 200),
    ("broker", "POST", f"{S}/import", "-", 403),
    ("lapsed", "POST", f"{S}/import", "-", 403),
    ("admin", "GET", S, "conf_hidden", 200, "present"),
    ("broker", "GET", S, "conf_hidden", 200, "absent"),
    ("broker", "GET", S, "conf_routed", 200, "present"),
    ("broker", "GET", S, "others", 200, "teaser"),
    ("broker", "GET", S, "own", 200, "full"),
    ("lapsed", "GET", S, "own", 403),
    ("admin", "GET", f"{S}/{{key}}", "conf_hidden", 200, "full"),
    ("broker", "GET", f"{S}/{{key}}", "own", 200, "full"),
    ("broker", "GET", f"{S}/{{key}}", "others", 200, "teaser"),
    ("broker", "GET", f"{S}/{{key}}", "routed", 200, "teaser"),  # before the claim
    ("broker", "GET", f"{S}/{{key}}", "deal", 200, "full"),
    ("broker", "GET", f"{S}/{{key}}", "others_routed", 200, "teaser"),
    ("broker", "GET", f"{S}/{{key}}", "others_deal", 200, "teaser"),
    ("broker", "GET", f"{S}/{{key}}", "conf_hidden", 404),  # 404, not 403: not even there
    ("broker", "GET", f"{S}/{{key}}", "conf_routed", 200, "teaser"),
    ("lapsed", "GET", f"{S}/{{key}}", "own", 403),
    ("lapsed", "GET", f"{S}/{{key}}", "deal", 403),
    # -- the catalogue: change (a need's contact, a technology's keywords), archive ---------
    ("admin", "PATCH", f"{S}/{{key}}", "others", 200),
    ("admin", "PATCH", f"{S}/{{key}}", "conf_hidden", 200, "declassify"),
    ("broker", "PATCH", f"{S}/{{key}}", "own", 200),
    ("broker", "PATCH", f"{S}/{{key}}", "deal", 200),
    ("broker", "PATCH", f"{S}/{{key}}", "others", 403),
    ("broker", "PATCH", f"{S}/{{key}}", "routed", 403),  # routed, but no deal yet
    ("broker", "PATCH", f"{S}/{{key}}", "others_routed", 403),
    ("broker", "PATCH", f"{S}/{{key}}", "others_deal", 403),
    ("broker", "PATCH", f"{S}/{{key}}", "conf_hidden", 404),
    ("broker", "PATCH", f"{S}/{{key}}", "conf_routed", 403, "declassify"),
    ("broker", "PATCH", f"{S}/{{key}}", "conf_deal", 403, "declassify"),
    ("broker", "PATCH", f"{S}/{{key}}", "own", 403, "classify"),
    ("lapsed", "PATCH", f"{S}/{{key}}", "own", 403),
    ("lapsed", "PATCH", f"{S}/{{key}}", "deal", 403),
    ("admin", "POST", f"{S}/{{key}}/archive", "others_deal", 200),
    ("broker", "POST", f"{S}/{{key}}/archive", "own", 200),
    ("broker", "POST", f"{S}/{{key}}/archive", "deal", 200),
    ("broker", "POST", f"{S}/{{key}}/archive", "others", 403),
    ("broker", "POST", f"{S}/{{key}}/archive", "routed", 403),
    ("broker", "POST", f"{S}/{{key}}/archive", "others_deal", 403),
    ("broker", "POST", f"{S}/{{key}}/archive", "conf_hidden", 404),
    ("lapsed", "POST", f"{S}/{{key}}/archive", "own", 403),
    ("admin", "DELETE", f"{S}/{{key}}", "others", 200),
    ("broker", "DELETE", f"{S}/{{key}}", "own", 200),
    ("broker", "DELETE", f"{S}/{{key}}", "others", 403),
    ("broker", "DELETE", f"{S}/{{key}}", "others_deal", 403),
    ("broker", "DELETE", f"{S}/{{key}}", "conf_hidden", 404),
    ("lapsed", "DELETE", f"{S}/{{key}}", "own", 403),
    ("admin", "GET", f"{S}/{{key}}/matches", "conf_hidden", 200),
    ("broker", "GET", f"{S}/{{key}}/matches", "own", 200),
    ("broker", "GET", f"{S}/{{key}}/matches", "conf_routed", 200),
    ("broker", "GET", f"{S}/{{key}}/matches", "conf_hidden", 404),
    ("lapsed", "GET", f"{S}/{{key}}/matches", "own", 403),
    ("admin", "POST", f"{V1}/search", "conf_hidden", 200, "present"),
    ("broker", "POST", f"{V1}/search", "conf_hidden", 200, "absent"),
    ("broker", "POST", f"{V1}/search", "conf_routed", 200, "present"),
    ("lapsed", "POST", f"{V1}/search", "own", 403),
    # -- domain codes suggested for a text: staff, like the catalogue ---------------------------
    ("admin", "GET", f"{V1}/taxonomy/suggest", "-", 200),
    ("broker", "GET", f"{V1}/taxonomy/suggest", "-", 200),
    ("lapsed", "GET", f"{V1}/taxonomy/suggest", "-", 403),
    # -- a broker's own: profile, webhook, inbox, feedback, claims ---------------------------
    ("admin", "GET", f"{V1}/brokers/me", "-", 403),
    ("broker", "GET", f"{V1}/brokers/me", "-", 200),
    ("lapsed", "GET", f"{V1}/brokers/me", "-", 200),  # sees that the certificate expired
    ("admin", "PUT", f"{V1}/brokers/me/webhook", "-", 403),
    ("broker", "PUT", f"{V1}/brokers/me/webhook", "-", 200),
    ("lapsed", "PUT", f"{V1}/brokers/me/webhook", "-", 403),
    ("admin", "DELETE", f"{V1}/brokers/me/webhook", "-", 403),
    ("broker", "DELETE", f"{V1}/brokers/me/webhook", "-", 200),
    ("lapsed", "DELETE", f"{V1}/brokers/me/webhook", "-", 403),
    ("admin", "GET", f"{V1}/brokers/me/inbox", "-", 403),
    ("broker", "GET", f"{V1}/brokers/me/inbox", "routed", 200, "mine"),
    ("lapsed", "GET", f"{V1}/brokers/me/inbox", "routed", 403),
    ("admin", "GET", INBOX, "routed", 403),
    ("broker", "GET", INBOX, "routed", 200, "teaser"),  # no names, no contact before the claim
    ("broker", "GET", INBOX, "conf_routed", 200, "teaser"),
    ("broker", "GET", INBOX, "deal", 200, "full"),
    ("broker", "GET", INBOX, "others_routed", 404),
    ("lapsed", "GET", INBOX, "routed", 403),
    ("admin", "POST", f"{INBOX}/feedback", "routed", 403),
    ("broker", "POST", f"{INBOX}/feedback", "routed", 201),
    ("broker", "POST", f"{INBOX}/feedback", "others_routed", 404),
    ("lapsed", "POST", f"{INBOX}/feedback", "routed", 403),
    ("admin", "POST", f"{INBOX}/claim", "routed", 403),
    ("broker", "POST", f"{INBOX}/claim", "routed", 201),
    ("broker", "POST", f"{INBOX}/claim", "others_routed", 404),
    ("lapsed", "POST", f"{INBOX}/claim", "routed", 403),
    ("admin", "GET", f"{V1}/brokers/decline-reasons", "-", 403),
    ("broker", "GET", f"{V1}/brokers/decline-reasons", "-", 200),
    ("lapsed", "GET", f"{V1}/brokers/decline-reasons", "-", 200),
    # -- deals: a broker's own; an expired certificate reads them and does nothing else -------
    ("admin", "GET", f"{V1}/deals", "-", 200),
    ("broker", "GET", f"{V1}/deals", "deal", 200, "mine"),
    ("lapsed", "GET", f"{V1}/deals", "deal", 200, "mine"),
    ("admin", "GET", DEAL, "others_deal", 200, "full"),
    ("broker", "GET", DEAL, "deal", 200, "full"),
    ("broker", "GET", DEAL, "others_deal", 404),
    ("lapsed", "GET", DEAL, "deal", 200, "full"),
    ("lapsed", "GET", DEAL, "others_deal", 404),
    ("admin", "POST", f"{DEAL}/stage", "deal", 200),
    ("broker", "POST", f"{DEAL}/stage", "deal", 200),
    ("broker", "POST", f"{DEAL}/stage", "others_deal", 404),
    ("lapsed", "POST", f"{DEAL}/stage", "deal", 403),
    ("lapsed", "POST", f"{DEAL}/stage", "others_deal", 404),
    ("admin", "POST", f"{DEAL}/notes", "deal", 201),
    ("broker", "POST", f"{DEAL}/notes", "deal", 201),
    ("broker", "POST", f"{DEAL}/notes", "others_deal", 404),
    ("lapsed", "POST", f"{DEAL}/notes", "deal", 403),
    ("admin", "PUT", f"{DEAL}/contract", "agreed_deal", 200),
    ("broker", "PUT", f"{DEAL}/contract", "agreed_deal", 200),
    ("broker", "PUT", f"{DEAL}/contract", "deal", 409),  # not agreed yet
    ("broker", "PUT", f"{DEAL}/contract", "others_deal", 404),
    ("lapsed", "PUT", f"{DEAL}/contract", "agreed_deal", 403),
    ("lapsed", "PUT", f"{DEAL}/contract", "others_deal", 404),
    # -- the exchange market: public, the same teaser for everyone (a token changes nothing) --
    *[(role, "GET", f"{V1}/market", "conf_listed", 200, "market_teaser") for role in API_ROLES],
    *[(role, "GET", f"{V1}/market/stats", "-", 200) for role in API_ROLES],
    # -- administration: admins only (a broker renewing or reinstating themselves included) --
    ("admin", "POST", f"{ADMIN}/brokers", "-", 201),
    ("admin", "GET", f"{ADMIN}/brokers", "-", 200),
    ("admin", "GET", f"{ADMIN}/brokers/{{ref}}", "expired_broker", 200),
    ("admin", "POST", f"{ADMIN}/brokers/{{ref}}/renew", "expired_broker", 200),
    ("admin", "POST", f"{ADMIN}/brokers/{{ref}}/suspend", "spare_broker", 200),
    ("admin", "POST", f"{ADMIN}/brokers/{{ref}}/reinstate", "suspended_broker", 200),
    ("admin", "POST", f"{ADMIN}/brokers/{{ref}}/tokens", "spare_broker", 201),
    ("admin", "GET", f"{ADMIN}/unrouted", "-", 200),
    ("admin", "POST", f"{ADMIN}/unrouted/route", "lapsed_routed", 200, "isolated"),
    ("admin", "GET", f"{ADMIN}/audit", "-", 200),
    ("admin", "GET", f"{ADMIN}/webhook-deliveries", "-", 200),
    *[
        (role, method, f"{ADMIN}{path}", target, 403)
        for role in ("broker", "lapsed")
        for method, path, target in [
            ("POST", "/brokers", "-"),
            ("GET", "/brokers", "-"),
            ("GET", "/brokers/{ref}", "other_broker"),
            ("POST", "/brokers/{ref}/renew", "self"),
            ("POST", "/brokers/{ref}/suspend", "other_broker"),
            ("POST", "/brokers/{ref}/reinstate", "suspended_broker"),
            ("POST", "/brokers/{ref}/tokens", "self"),
            ("GET", "/unrouted", "-"),
            ("POST", "/unrouted/route", "lapsed_routed"),
            ("GET", "/audit", "-"),
            ("GET", "/webhook-deliveries", "-"),
        ]
    ],
    # -- broker competency and reassignment (api/routes/competency.py) ----------------------
    ("admin", "GET", f"{V1}/brokers/me/competency", "-", 403),
    ("broker", "GET", f"{V1}/brokers/me/competency", "-", 200),
    ("lapsed", "GET", f"{V1}/brokers/me/competency", "-", 200),  # their record stays theirs
    ("admin", "GET", f"{V1}/brokers/{{ref}}/competency", "other_broker", 200),
    ("admin", "POST", f"{V1}/brokers/{{ref}}/trainings", "spare_broker", 201),
    ("admin", "POST", f"{V1}/brokers/{{ref}}/upgrade", "spare_broker", 200),
    ("admin", "POST", f"{V1}/routed/{{routed_id}}/reassign", "routed", 200),
    *[
        (role, method, f"{V1}{path}", target, 403)
        for role in ("broker", "lapsed")
        for method, path, target in [
            ("GET", "/brokers/{ref}/competency", "other_broker"),
            ("POST", "/brokers/{ref}/trainings", "self"),
            ("POST", "/brokers/{ref}/upgrade", "self"),
            ("POST", "/routed/{routed_id}/reassign", "routed"),
        ]
    ],
    # -- the operator console: a session cookie, never a bearer token; CSRF on every form ----
    ("anonymous", "GET", "/admin/login", "-", 200),
    ("anonymous", "POST", "/admin/login", "-", 400, "no_csrf"),
    ("admin", "GET", "/admin", "-", 303),  # an admin's bearer token signs no one in
    *[
        ("anonymous", method, path, target, 303)  # not signed in: to the sign-in page
        for method, path, target in [
            ("POST", "/admin/logout", "-"),
            ("GET", "/admin", "-"),
            ("POST", "/admin/unrouted/route", "-"),
            ("POST", "/admin/unrouted/{key}/route", "routed"),
            ("GET", "/admin/brokers", "-"),
            ("POST", "/admin/brokers", "-"),
            ("GET", "/admin/brokers/{ref}", "other_broker"),
            ("POST", "/admin/brokers/{ref}/renew", "expired_broker"),
            ("POST", "/admin/brokers/{ref}/suspend", "spare_broker"),
            ("POST", "/admin/brokers/{ref}/reinstate", "suspended_broker"),
            ("POST", "/admin/brokers/{ref}/upgrade", "spare_broker"),
            ("POST", "/admin/brokers/{ref}/trainings", "spare_broker"),
            ("POST", "/admin/routed/{routed_id}/reassign", "routed"),
        ]
    ],
    # -- the pages: forms and tracking are for anyone; the link is the only key --------------
    ("anonymous", "GET", "/{side}/new", "-", 200),
    ("anonymous", "POST", "/{side}/new", "-", 303),  # stored; 303 to the confirmation
    ("anonymous", "POST", "/{side}/new", "-", 400, "no_csrf"),
    ("submitter", "GET", "/{side}/submitted", "my_submission", 200),
    ("anonymous", "GET", "/{side}/submitted", "-", 303),  # no submission: back to the form
    ("submitter", "GET", "/track/{token}", "my_link", 200, "status_only"),
    ("anonymous", "GET", "/track/{token}", "wrong_link", 404),
    ("admin", "GET", "/track/{token}", "wrong_link", 404),  # a token opens no one's link
    ("broker", "GET", "/track/{token}", "wrong_link", 404),
    ("anonymous", "GET", "/market", "conf_listed", 200, "market_teaser"),
    ("anonymous", "GET", "/market/stats", "-", 200),
    ("anonymous", "GET", "/health", "-", 200),
    ("anonymous", "GET", "/openapi.json", "-", 200),
    ("anonymous", "GET", "/docs", "-", 200),
    ("anonymous", "GET", "/docs/oauth2-redirect", "-", 200),
    ("anonymous", "GET", "/redoc", "-", 200),
    ("anonymous", "GET", "/static/{path}", "static", 200),
    ("anonymous", "GET", "/static/docs/{path}", "docs_asset", 200),
    # -- the tracking link edits and withdraws; nothing without the page's CSRF token ---------
    ("submitter", "GET", "/track/{token}/edit", "my_link", 200),
    ("anonymous", "GET", "/track/{token}/edit", "wrong_link", 404),
    ("broker", "GET", "/track/{token}/edit", "wrong_link", 404),
    ("submitter", "POST", "/track/{token}/edit", "my_link", 400),
    ("anonymous", "POST", "/track/{token}/edit", "wrong_link", 404),
    ("submitter", "POST", "/track/{token}/withdraw", "my_link", 400),
    ("anonymous", "POST", "/track/{token}/withdraw", "wrong_link", 404),
    # -- the broker console opens with its session cookie only (a bearer token is not one) --
    ("anonymous", "GET", "/broker/login", "-", 200),
    ("anonymous", "POST", "/broker/login", "-", 400),  # no CSRF token
    ("anonymous", "POST", "/broker/logout", "-", 303),
    *[
        (role, method, path, target, 303)
        for role in ("anonymous", "broker", "admin")
        for method, path, target in [
            ("GET", "/broker", "-"),
            ("GET", "/broker/deals", "-"),
            ("GET", "/broker/search", "-"),
            ("POST", "/broker/inbox/{routed_id}/claim", "routed"),
            ("POST", "/broker/inbox/{routed_id}/verdict", "routed"),
            ("POST", "/broker/deals/{deal_id}/stage", "deal"),
            ("POST", "/broker/deals/{deal_id}/note", "deal"),
            ("POST", "/broker/deals/{deal_id}/due", "deal"),
            ("POST", "/broker/deals/{deal_id}/contract", "deal"),
        ]
    ],
    # -- regional analytics: aggregate pages for anyone; the API for staff ------------------
    *[("anonymous", "GET", f"/analytics{p}", "-", 200) for p in ("", "/map.svg", "/chart.svg")],
    *[("anonymous", "GET", f"/analytics/{p}.csv", "-", 200) for p in ("regions", "flows")],
    *[
        (role, "GET", f"{V1}/analytics/{p}", "-", status)
        for p in ("regions", "flows")
        for role, status in (("admin", 200), ("broker", 200), ("lapsed", 403))
    ],
]


def expand(table: list[tuple[Any, ...]]) -> list[Row]:
    """Rows with ``{side}`` once per side; a default variant; and, for every API endpoint,
    each role without a valid token (401) and the suspended broker (403) on its first target."""
    rows: list[Row] = []
    for role, method, path, target, status, *variant in table:
        for side in ("technologies", "needs") if "{side}" in path else ("",):
            concrete = path.replace("{side}", side) if side else path
            rows.append((role, method, concrete, target, status, variant[0] if variant else ""))
    first: dict[tuple[str, str], str] = {}
    for _, method, path, target, _, _ in rows:
        first.setdefault((method, path), target)
    for (method, path), target in first.items():
        if path.startswith(V1) and path not in PUBLIC_API:
            rows += [(role, method, path, target, 401, "") for role in OUT]
            rows.append(("suspended", method, path, target, 403, ""))
    return rows


ROWS = expand(TABLE)


def row_id(row: Row) -> str:
    role, method, path, target, status, variant = row
    return f"{role} {method} {path} {target}{' ' + variant if variant else ''} -> {status}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> Iterator[World]:
    """One service for every row of this file (the isolated ones excepted)."""
    shared = World(tmp_path_factory.mktemp("authz"), encoder)
    yield shared
    shared.close()


@pytest.mark.parametrize("row", ROWS, ids=[row_id(r) for r in ROWS])
def test_authorization(row: Row, world: World, request: pytest.FixtureRequest) -> None:
    if row[5] != "isolated":
        run(world, row)
        return
    home = request.getfixturevalue("tmp_path")
    private = World(home, request.getfixturevalue("encoder"))
    try:
        run(private, row)
    finally:
        private.close()


def app_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app serves, from ``app.routes`` (static files as one GET)."""
    from fastapi import routing

    from api.main import create_app

    app = create_app(engine=None)
    # FastAPI ≥ 0.165 keeps included routers as branches; iter_route_contexts walks them
    walk = getattr(routing, "iter_route_contexts", lambda routes: routes)
    found: set[tuple[str, str]] = set()
    for route in walk(app.routes):
        methods = set(getattr(route, "methods", None) or ())
        if not methods:  # a mount: the static files
            found.add(("GET", f"{route.path}/{{path}}"))
        found |= {(method, route.path) for method in methods - {"HEAD"}}
    return found


def test_every_route_has_rows_for_every_role() -> None:
    covered = {(method, path) for _, method, path, *_ in ROWS}
    assert app_routes() - covered == set(), "a route without a row in the table"
    assert covered - app_routes() == set(), "a row for a route the app does not serve"
    assert {(m, generic(p)) for m, p in covered} <= set(ENDPOINTS)
    for method, path in covered:
        if path.startswith(V1):
            roles = {role for role, m, p, *_ in ROWS if (m, p) == (method, path)}
            assert roles == set(API_ROLES), (method, path, set(API_ROLES) - roles)
