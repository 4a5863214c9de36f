"""DNS rebinding against webhook delivery: the POST goes to the address the URL policy checked,
never to what the name resolves to a moment later."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.webhooks import deliver
from matcher.engine import Engine
from matcher.store.models import BrokerRow
from tests.unit.fakes import FakeEncoder, broker, fake_settings, need, technologies

PUBLIC = "93.184.215.14"  # example.org's address in tests (tests/conftest.py)


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[tuple[Engine, int]]:
    """A fake-encoder engine with one need routed to broker B-1; (engine, inbox item id)."""
    engine = Engine(fake_settings(tmp_path / "home"), encoder=FakeEncoder())
    engine.save_records("technologies", technologies())
    engine.save_records("brokers", [broker("B-1")])
    engine.save_records("needs", [need("N-1")])
    outcome = engine.match_and_route("N-1")
    assert outcome.routed_ids
    yield engine, outcome.routed_ids[0]
    engine.close()


@pytest.fixture
def inside() -> Iterator[tuple[int, list[Any]]]:
    """A listener on 127.0.0.1 (the server's own machine): its port and who connected to it."""
    connected: list[Any] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            connected.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], connected
    stop.set()
    thread.join()
    listener.close()


def test_a_name_that_rebinds_inside_after_the_check_is_never_connected_to(
    routed: tuple[Engine, int], inside: tuple[int, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, routed_id = routed
    port, connected = inside
    with engine.sessions() as session:
        owner = session.query(BrokerRow).one()
        owner.webhook_url, owner.webhook_secret = f"https://example.org:{port}/hook", "s" * 20
        session.commit()

    # the fake DNS: example.org is public when first asked (the policy's check), then 127.0.0.1
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "example.org":
            lookups.append(host)
            host = PUBLIC if len(lookups) == 1 else "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)

    # where connections go: the public address cannot be reached from the tests (offline)
    real_connect = socket.create_connection
    dialled: list[Any] = []

    def connect(address: Any, *args: Any, **kwargs: Any) -> Any:
        dialled.append(address[0])
        if address[0] == PUBLIC:
            raise OSError("the public receiver is out of reach in tests")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket, "create_connection", connect)
    delivery = deliver(engine.sessions, routed_id, retries=2, backoff=0, development=False)

    assert connected == [], "the POST followed the name's new answer to 127.0.0.1"
    assert dialled == [PUBLIC]  # the first attempt: the address that was checked
    # the second attempt asks DNS again: 127.0.0.1 is refused before any connection
    assert delivery is not None and delivery.status == "failed" and delivery.attempts == 1
    assert delivery.last_error and "example.org (127.0.0.1) is a loopback address" in (
        delivery.last_error
    )


def test_a_pinned_post_keeps_the_name_for_host_and_tls(
    routed: tuple[Engine, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from matcher import webhook_policy

    engine, routed_id = routed
    with engine.sessions() as session:
        owner = session.query(BrokerRow).one()
        owner.webhook_url, owner.webhook_secret = "https://example.org/hook?x=1", "s" * 20
        session.commit()
    monkeypatch.setattr(webhook_policy, "resolve", lambda host, port: [ip_address(PUBLIC)])
    posted: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: posted.append(r) or httpx.Response(204))
    with httpx.Client(transport=transport) as http:
        delivery = deliver(engine.sessions, routed_id, client=http, development=False)
    assert delivery is not None and delivery.status == "delivered"
    (request,) = posted
    assert str(request.url) == f"https://{PUBLIC}/hook?x=1"
    assert request.headers["host"] == "example.org"
    assert request.extensions["sni_hostname"] == "example.org"
    assert delivery.url == "https://example.org/hook?x=1"
