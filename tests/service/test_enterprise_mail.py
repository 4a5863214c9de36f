"""An enterprise that hears back: e-mail when its need is routed, claimed and at each stage
(a real SMTP server on 127.0.0.1, aiosmtpd; the messages go through the durable job queue),
the broker's name and address on the tracking page once claimed, and editing or withdrawing
the submission from its tracking link."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from matcher import jobs, notify
from matcher.store.models import BrokerRow, DealRow, NeedRow, NotificationRow, RoutedMatchRow
from tests.service.test_forms import csrf_of, submit

API = "/api/v1"


class Inbox:
    """What the local SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def wait(self, count: int, timeout: float = 30.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1, and mail switched on for this process's jobs."""
    received = Inbox()
    port = _free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    jobs.configure(
        jobs.JobSettings(smtp_host="127.0.0.1", smtp_port=port, poll_s=0.05, mail_backoff_s=0.05)
    )
    try:
        yield received
    finally:
        jobs.configure(jobs.JobSettings())
        controller.stop()


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def test_the_address_is_read_from_a_contact_field() -> None:
    assert notify.address("Li Wei <li.wei@example.cn>, 021-5555") == "li.wei@example.cn"
    assert notify.address("王经理 wang@corp.com.cn") == "wang@corp.com.cn"
    assert notify.address("021-5555 ext. 12") is None and notify.address(None) is None


NEED = {
    "enterprise": "Suzhou Precision Castings",
    "title": "Detect porosity in aluminium die castings before machining",
    "description": "We cast aluminium housings for electric drive units and scrap about 4% after "
    "machining because of internal porosity. We need an inline inspection method (X-ray, "
    "ultrasound or machine vision) that flags defective castings before they are machined.",
    "domains": ["08"],
    "trl_min": "5",
    "region_scope": "national",
    "home_region": "CN-JS",
    "currency": "CNY",
    "contact": "Li Wei <li.wei@example.cn>",
}


def test_an_enterprise_hears_back_and_can_edit_or_withdraw(
    client: Any, service_engine: Any, broker_headers: Any, inbox: Inbox
) -> None:
    track = submit(client, "/needs/new", NEED)
    with service_engine.sessions() as session:
        need = session.scalars(select(NeedRow).where(NeedRow.title == NEED["title"])).one()
        routed = session.scalars(
            select(RoutedMatchRow).where(RoutedMatchRow.need_id == need.id)
        ).all()
        assert routed, "the demo brokers should take this need"
        broker = session.get(BrokerRow, routed[0].broker_id)
        rid, broker_ref, name, email = routed[0].id, broker.ref, broker.name, broker.email
    workers = jobs.Workers(service_engine).start()
    try:
        # 1. routed: one message, to the address in the contact field, in the need's language
        assert workers.drain(timeout=60)
        (first,) = inbox.wait(1)
        assert first["To"] == "li.wei@example.cn"
        assert need.ref in first["Subject"] and "passed to technology brokers" in first["Subject"]
        assert f"matched with {len(routed)} technologies" in _body(first)
        # 2. claimed: the broker's name and how to reach them, by mail and on the tracking page
        headers = broker_headers(broker_ref)
        claimed = client.post(f"{API}/brokers/me/inbox/{rid}/claim", headers=headers)
        assert claimed.status_code == 201, claimed.text
        assert workers.drain(timeout=60)
        second = inbox.wait(2)[1]
        assert "taken up your need" in second["Subject"] and name in _body(second)
        assert email and email in _body(second)
        page = client.get(f"{track}?lang=en").text
        assert re.search(rf'id="broker">[^<]*{re.escape(name)}', page)
        assert f'href="mailto:{email}"' in page
        # 3. each later stage
        deal = claimed.json()["id"]
        moved = client.post(f"{API}/deals/{deal}/stage", json={"to": "contacted"}, headers=headers)
        assert moved.status_code == 200, moved.text
        assert workers.drain(timeout=60)
        third = inbox.wait(3)[2]
        assert "contacted" in third["Subject"] and name in _body(third)
        # an event is reported once, however often its job runs (one row per event key)
        with service_engine.sessions() as session:
            rows = session.scalars(select(NotificationRow).order_by(NotificationRow.id)).all()
            assert [r.event for r in rows if r.side == "needs"] == [
                "routed",
                "claimed",
                "contacted",
            ]
            assert {r.status for r in rows} == {"sent"}
            assert len({r.key for r in rows}) == len(rows)
    finally:
        workers.stop()
    assert len({m["Message-ID"] for m in inbox.messages}) == len(inbox.messages)

    # 4. edit from the tracking link: the form comes filled in; a change is saved and audited
    form = client.get(f"{track}/edit?lang=en")
    assert form.status_code == 200 and NEED["title"] in form.text
    assert 'value="Li Wei &lt;li.wei@example.cn&gt;"' in form.text
    changed = {**NEED, "title": "Detect porosity in die castings", "csrf_token": csrf_of(form.text)}
    saved = client.post(f"{track}/edit?lang=en", data=changed, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:2000]
    assert "Your changes have been saved" in client.get(saved.headers["location"]).text
    with service_engine.sessions() as session:
        assert session.get(NeedRow, need.id).title == "Detect porosity in die castings"
    bad = client.post(
        f"{track}/edit?lang=en", data={**changed, "title": ""}, follow_redirects=False
    )
    assert bad.status_code == 422
    forged = client.post(f"{track}/withdraw", data={"csrf_token": "x"}, follow_redirects=False)
    assert forged.status_code == 400


def test_withdrawing_archives_and_closes_the_link_to_changes(
    client: Any, service_engine: Any, inbox: Inbox
) -> None:
    track = submit(client, "/needs/new", {**NEED, "contact": "no address, phone 021-5555"})
    page = client.get(f"{track}?lang=en")
    gone = client.post(
        f"{track}/withdraw?lang=en",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert "has been withdrawn" in client.get(gone.headers["location"]).text
    with service_engine.sessions() as session:
        need = session.scalars(select(NeedRow).where(NeedRow.title == NEED["title"])).one()
        assert need.status == "archived"
        assert not session.scalars(select(DealRow).where(DealRow.need_id == need.id)).all()
        # no address in the contact field: nothing is written to the outbox
        assert not session.scalars(select(NotificationRow)).all()
    assert client.get(f"{track}/edit").status_code == 409
    assert inbox.messages == []
