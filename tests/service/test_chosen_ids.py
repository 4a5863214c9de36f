"""Creating a record tells a broker nothing about records they may not read: brokers do not
choose ids (any chosen id is refused with one answer), the service assigns the reference."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.service.test_api_catalog import need, technology

API = "/api/v1"
SIDES = [
    pytest.param("technologies", technology, "T", id="technologies"),
    pytest.param("needs", need, "N", id="needs"),
]


@pytest.mark.parametrize(("side", "body", "prefix"), SIDES)
def test_a_broker_cannot_probe_confidential_ids_by_creating(  # type: ignore[no-untyped-def]
    client, admin_headers, broker_headers, side: str, body: Any, prefix: str
) -> None:
    secret = f"{prefix}-SECRET-1"
    made = client.post(
        f"{API}/{side}", json=body(id=secret, confidential=True), headers=admin_headers
    )
    assert made.status_code == 201, made.text
    broker = broker_headers("B-01")
    assert client.get(f"{API}/{side}/{secret}", headers=broker).status_code == 404

    # the confidential record's id and an id nobody has get the same answer
    taken = client.post(f"{API}/{side}", json=body(id=secret), headers=broker)
    free = client.post(f"{API}/{side}", json=body(id=f"{prefix}-NOBODY-1"), headers=broker)
    assert taken.status_code == free.status_code == 422, (taken.text, free.text)
    assert taken.json() == free.json()
    assert "leave id out" in taken.json()["detail"]
    assert client.get(f"{API}/{side}/{prefix}-NOBODY-1", headers=admin_headers).status_code == 404

    # without an id the service assigns a fresh reference and answers with it
    created = client.post(f"{API}/{side}", json=body(), headers=broker)
    assert created.status_code == 201, created.text
    ref = created.json()["ref"]
    assert re.fullmatch(rf"{prefix}-[0-9A-F]{{8}}", ref), ref
    assert client.get(f"{API}/{side}/{ref}", headers=broker).json()["id"] == created.json()["id"]

    # an admin still chooses ids, and a taken one is a conflict
    again = client.post(f"{API}/{side}", json=body(id=secret), headers=admin_headers)
    assert again.status_code == 409 and secret in again.json()["detail"]
