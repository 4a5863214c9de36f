"""The world the authorization table runs in (tests/service/test_authorization_table.py).

One service over an empty store with four brokers the admin certified; a caller of every role;
and, made on demand, the records, inbox items and deals a row points at, named by their
relation to the caller (``own``, ``routed``, ``deal``, ``conf_hidden`` …). A write expected to
succeed gets a target of its own, so that no row depends on another. Matching after a write is
switched off (a worker that only records jobs): routing on its own would put matches in inboxes
the table relies on; the rows place every routed match themselves, to the broker they name.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.config import ApiSettings
from api.main import create_app
from matcher.domain import Side
from matcher.engine import Engine
from matcher.store import repo
from matcher.store.models import ApiTokenRow, BrokerRow, RoutedMatchRow
from matcher.store.repo.tokens import hash_token
from tests.conftest import issue, make_settings

API = "/api/v1"
ME, OTHER, LAPSED, SUSPENDED = "B-01", "B-02", "B-03", "B-04"
# Whose relations a row's target names: the acting broker's; for every other role, B-01's.
ACTING = {"broker": ME, "lapsed": LAPSED, "suspended": SUSPENDED}
PARTIES = {Side.technologies: ("owner",), Side.needs: ("enterprise", "contact")}
WEBHOOK = {"url": "http://127.0.0.1:9/hook", "secret": "a-shared-secret-of-the-table"}
DESCRIPTION = (
    "Our harbour tugs lose 12% fuel efficiency to hull fouling within a year; we need a "
    "non-toxic coating that prevents barnacles and lasts at least three years at sea."
)


def technology_body(tag: str, **extra: Any) -> dict[str, Any]:
    """A valid new technology; a unique ``tag`` lets a search or a filter find it alone (and
    costs an embedding: records of one text share it)."""
    return {
        "owner": "Authz Institute of Marine Coatings",
        "title": f"{tag} graphene epoxy antifouling coating for steel hulls",
        "description": f"{tag}: {DESCRIPTION}",
        "domains": ["04.06"],
        "trl": 6,
        "region": "CN-ZJ",
        **extra,
    }


def need_body(tag: str, **extra: Any) -> dict[str, Any]:
    """A valid new need (with the enterprise's contact, which a teaser leaves out)."""
    return {
        "enterprise": "Authz Harbour Tugs Co.",
        "title": f"{tag} keep tug hulls free of barnacles without toxic paint",
        "description": f"{tag}: {DESCRIPTION}",
        "domains": ["04.06"],
        "trl_min": 5,
        "region_scope": "international",
        "home_region": "CN-ZJ",
        "contact": "ops@tugs.example",
        **extra,
    }


LISTED = {  # a confidential listing's secrets (tests/service/authz_effects.py: market_teaser)
    "owner": "Authz Secret Licensor Ltd",
    "confidential": True,
    "licensing": "exclusive_licence",
    "licensing_terms": "Authz secret terms",
    "asking_min": 123456,
}
FORMS = {
    Side.needs: {**need_body("authz-form"), "trl_min": "5"},
    Side.technologies: {**technology_body("authz-form"), "trl": "6", "ip_status": "none"},
}


class NullWorker:
    """Records the matching jobs the service asks for, and runs none."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, int]] = []

    def submit(self, kind: str, record_id: int = 0) -> None:
        self.jobs.append((kind, record_id))

    def in_transaction(self, side, before_commit=None, *, unchanged=None):  # type: ignore[no-untyped-def]
        return before_commit or (lambda session, rows: None)

    def after_commit(self, kind: str, record_id: int) -> None:
        self.submit(kind, record_id)

    def join(self) -> None:
        return None

    def stop(self) -> None:
        return None


@dataclass
class Target:
    """What a row's path points at: records by reference, an inbox item, a deal, a broker, a
    tracking token; ``tag`` finds its records in lists and searches."""

    technology: str = ""
    need: str = ""
    routed_id: int = 0
    deal_id: int = 0
    broker: str = ""
    token: str = ""
    tag: str = ""
    cookies: dict[str, str] = field(default_factory=dict)

    def ref(self, side: Side) -> str:
        return self.technology if side is Side.technologies else self.need


class World:
    """The service, its callers and the targets of the rows."""

    def __init__(self, home: Path, encoder: Any) -> None:
        self.engine = Engine(make_settings(home), encoder=encoder)
        settings = ApiSettings(
            background_matching=False, form_rate="10000/minute", token_rate="100000/minute"
        )
        self.client = TestClient(create_app(self.engine, settings))
        self.client.__enter__()
        self.client.app.state.worker = NullWorker()  # type: ignore[attr-defined]
        self.counter = itertools.count(1)
        self.single = False  # making a target for one row only
        self.cache: dict[tuple[str, str, str], Target] = {}
        self.broker_ids: dict[str, int] = {}
        self.tokens = {"admin": issue(self.engine, "admin")}
        for ref in (ME, OTHER, LAPSED, SUSPENDED):  # certified by the admin, as in production
            self.tokens[ref] = self.new_broker(ref=ref).token
        self.tokens["revoked"] = issue(self.engine, "broker", ME)
        with self.engine.sessions() as session:
            token = hash_token(self.tokens["revoked"])
            session.scalar(
                select(ApiTokenRow).where(ApiTokenRow.token_hash == token)
            ).revoked = True
            session.commit()
        self.set_broker(LAPSED, valid_until=date.today() - timedelta(days=1))
        self.set_broker(SUSPENDED, suspended=True)

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.engine.close()

    # -- callers ----------------------------------------------------------------------------
    def headers(self, role: str) -> dict[str, str]:
        """The Authorization header of a role (none for the anonymous caller)."""
        if role == "anonymous":
            return {}
        if role == "bad_token":
            token = "tm_b_not-a-token-anyone-was-given"
        elif role == "submitter":  # a tracking token is no API token
            token = self.target("my_link", ME).token
        else:  # admin, revoked, or a broker's own token
            token = self.tokens[ACTING.get(role, role)]
        return {"Authorization": f"Bearer {token}"}

    def actor(self, role: str) -> str:
        """The name the audit trail gives a role."""
        return "admin" if role == "admin" else f"broker:{ACTING.get(role, ME)}"

    # -- targets ----------------------------------------------------------------------------
    def target(
        self, name: str, broker: str, side: Side = Side.needs, *, fresh: bool = False
    ) -> Target:
        """The target ``name`` as seen by ``broker``: shared, or made for this row alone."""
        if fresh:
            self.single = True
            try:
                return self.make(name, broker, side)
            finally:
                self.single = False
        key = (name, broker, side.value if name == "my_submission" else "")
        if key not in self.cache:
            self.cache[key] = self.make(name, broker, side)
        return self.cache[key]

    def make(self, name: str, broker: str, side: Side) -> Target:
        makers = {
            "-": lambda: Target(),
            "own": lambda: self.records(broker),
            "others": lambda: self.records(OTHER),
            "routed": lambda: self.routed(broker),
            "deal": lambda: self.deal(broker),
            "others_routed": lambda: self.routed(OTHER),
            "others_deal": lambda: self.deal(OTHER),
            "conf_hidden": lambda: self.routed(OTHER, True),
            "conf_routed": lambda: self.routed(broker, True),
            "conf_deal": lambda: self.deal(broker, True),
            "self": lambda: Target(broker=broker),
            "other_broker": lambda: Target(broker=OTHER),
            "spare_broker": lambda: self.new_broker(),
            "expired_broker": lambda: self.new_broker(expired=True),
            "suspended_broker": lambda: self.new_broker(suspended=True),
            "lapsed_routed": lambda: self.routed(LAPSED),
            "my_link": lambda: self.submission(Side.needs),
            "my_submission": lambda: self.submission(side),
            "wrong_link": lambda: Target(token="no-submission-has-this-link-0123456789"),
            "static": lambda: Target(token="style.css"),
            "docs_asset": lambda: Target(token="swagger-ui.css"),
            "conf_listed": lambda: self.listed(),
            "agreed_deal": lambda: self.deal(broker, agreed=True),
        }
        return makers[name]()

    def tag(self) -> str:
        """A new tag while shared targets are made; one for all the targets of single rows,
        which no list or search looks for."""
        return "authz-row" if self.single else f"authz-{next(self.counter):03d}"

    def create(self, side: Side, body: dict[str, Any], token: str) -> str:
        answer = self.client.post(
            f"{API}/{side.value}", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["ref"])

    def records(self, broker: str, confidential: bool = False) -> Target:
        """A technology and a need, created through the API by ``broker`` (or the admin)."""
        tag, token = self.tag(), self.tokens[broker]
        extra = {"confidential": True} if confidential else {}
        with self.in_good_standing(broker):
            return Target(
                technology=self.create(Side.technologies, technology_body(tag, **extra), token),
                need=self.create(Side.needs, need_body(tag, **extra), token),
                tag=tag,
            )

    def routed(self, broker: str, confidential: bool = False) -> Target:
        """A pair of new records (the admin's) routed to ``broker``, not claimed."""
        target = self.records("admin", confidential)
        with self.engine.sessions() as session:
            item = RoutedMatchRow(
                need_id=repo.record_by_ref(session, side=Side.needs, ref=target.need).id,
                technology_id=repo.record_by_ref(
                    session, side=Side.technologies, ref=target.technology
                ).id,
                broker_id=self.broker_ids[broker],
                score=0.8,
                components={},
                explanation="placed by the authorization table",
                rank=1,
                reason="placed by the authorization table",
            )
            session.add(item)
            session.commit()
            target.routed_id = item.id
        return target

    def deal(self, broker: str, confidential: bool = False, *, agreed: bool = False) -> Target:
        """A pair routed to ``broker`` and claimed by them: their open deal (or, ``agreed``,
        moved on to agreed)."""
        target = self.routed(broker, confidential)
        with self.in_good_standing(broker):
            target.deal_id = self.engine.claim(
                self.broker_ids[broker], target.routed_id, actor=f"broker:{broker}"
            )
            for stage in ("contacted", "nda_signed", "negotiating", "agreed") if agreed else ():
                self.engine.change_stage(target.deal_id, to=stage, actor="admin", reroute=False)
        return target

    def listed(self) -> Target:
        """A confidential technology open for licensing (the admin's), on the market as a
        teaser; its owner, terms and price are what the teaser must not show."""
        body = technology_body(self.tag(), **LISTED)
        return Target(technology=self.create(Side.technologies, body, self.tokens["admin"]))

    def new_broker(
        self, *, ref: str = "", expired: bool = False, suspended: bool = False
    ) -> Target:
        """A broker the admin certifies through the API (then lapsed or suspended); ``token``
        is their API token."""
        answer = self.client.post(
            f"{API}/admin/brokers",
            headers=self.headers("admin"),
            json=broker_body(next(self.counter), ref),
        )
        assert answer.status_code == 201, answer.text
        ref = answer.json()["ref"]
        self.broker_ids[ref] = answer.json()["id"]
        if expired:
            self.set_broker(ref, valid_until=date.today() - timedelta(days=1))
        if suspended:
            self.set_broker(ref, suspended=True)
        return Target(broker=ref, token=answer.json()["token"])

    def submission(self, side: Side) -> Target:
        """A form submission: its tracking token and the cookie of its confirmation page."""
        path = f"/{side.value}/new"
        self.client.cookies.clear()
        page = self.client.get(path)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        answer = self.client.post(
            path, data={"csrf_token": csrf.group(1), **FORMS[side]}, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        done = dict(self.client.cookies)
        shown = self.client.get(answer.headers["location"]).text
        found = re.search(r'id="tracking-link" href="/track/([A-Za-z0-9_-]+)', shown)
        assert found, shown
        self.client.cookies.clear()
        return Target(token=found.group(1), cookies=done)

    # -- the store --------------------------------------------------------------------------
    def set_broker(self, ref: str, **values: Any) -> None:
        with self.engine.sessions() as session:
            row = repo.get_by_ref_or_id(session, BrokerRow, ref)
            for name, value in values.items():
                setattr(row, name, value)
            session.commit()

    @contextmanager
    def in_good_standing(self, broker: str) -> Iterator[None]:
        """Lift a lapse or suspension while the broker's own fixtures are made."""
        if broker not in self.broker_ids:
            yield
            return
        with self.engine.sessions() as session:
            row = repo.get_by_ref_or_id(session, BrokerRow, broker)
            saved = {"valid_until": row.valid_until, "suspended": row.suspended}
        self.set_broker(broker, valid_until=date.today() + timedelta(days=365), suspended=False)
        try:
            yield
        finally:
            self.set_broker(broker, **saved)

    def count(self, model: Any, *where: Any) -> int:
        with self.engine.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def row(self, model: Any, key: Any) -> Any:
        """A stored row by id or reference (detached), or None."""
        with self.engine.sessions() as session:
            found = repo.get_by_ref_or_id(session, model, key)
            if found is not None:
                session.expunge(found)
            return found

    def audit(self, ref: str) -> list[dict[str, Any]]:
        """The audit trail of one record through ``GET /api/v1/admin/audit``, newest first."""
        answer = self.client.get(
            f"{API}/admin/audit", params={"ref": ref}, headers=self.headers("admin")
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])


def broker_body(n: int, ref: str = "") -> dict[str, Any]:
    """A broker the admin certifies (valid for a year); the service picks the ref unless given."""
    return {
        **({"id": ref} if ref else {}),
        "name": f"Authz Broker {n}",
        "certificate_no": f"TM-2026-INT-9{n:04d}",
        "level": "intermediate",
        "valid_until": (date.today() + timedelta(days=365)).isoformat(),
        "domains": ["04.06"],
        "regions": ["CN"],
        "capacity": 5,
        "email": f"authz.{n}@example.org",
    }
