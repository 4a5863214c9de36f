"""The engine's routing and deal workflow on a tiny catalogue with a fake encoder (no model)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from fakes import FakeEncoder, broker, fake_settings, need, technologies
from typer.testing import CliRunner

from matcher.engine import Engine
from matcher.errors import InvalidInputError, NotFoundError
from matcher.route import RoutingState


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    eng = Engine(fake_settings(tmp_path / "home"), encoder=FakeEncoder())
    eng.save_records("technologies", technologies())
    eng.save_records("brokers", [broker("B-1", capacity=1)])
    yield eng
    eng.close()


def test_full_broker_leaves_the_need_unrouted_until_a_deal_ends(engine) -> None:  # type: ignore[no-untyped-def]
    engine.save_records("needs", [need("N-1"), need("N-2")])
    first = engine.match_and_route("N-1")
    assert first.state is RoutingState.routed and len(first.routed_ids) == 1
    second = engine.match_and_route("N-2")
    assert second.state is RoutingState.unrouted
    assert "1 at full capacity" in second.reason["en"]
    total, waiting = engine.unrouted_needs()
    assert total == 1 and waiting[0].ref == "N-2"
    # the broker closes the first deal: capacity is free, N-2 is routed without a resubmission
    deal_id = engine.claim(engine.broker("B-1").id, first.routed_ids[0], actor="B-1")
    assert engine.change_stage(deal_id, to="closed_lost", actor="B-1", reason="no budget")
    assert engine.unrouted_needs()[0] == 0


def test_renewal_to_a_past_date_is_refused_and_a_renewal_reroutes(engine) -> None:  # type: ignore[no-untyped-def]
    engine.set_broker_status("B-1", valid_until=date.today(), reroute=False)
    with pytest.raises(InvalidInputError, match="in the past"):
        engine.set_broker_status("B-1", valid_until=date.today() - timedelta(days=1))
    with pytest.raises(NotFoundError):
        engine.set_broker_status("B-404", suspended=True)
    engine.set_broker_status("B-1", suspended=True)
    engine.save_records("needs", [need("N-1")])
    assert engine.match_and_route("N-1").state is RoutingState.unrouted
    engine.set_broker_status("B-1", suspended=False)
    assert engine.unrouted_needs()[0] == 0


def test_a_national_need_skips_the_foreign_technology(engine) -> None:  # type: ignore[no-untyped-def]
    engine.save_records("brokers", [broker("B-2", capacity=10)])
    engine.save_records("needs", [need("N-1", region_scope="national")])
    outcome = engine.match_and_route("N-1")
    assert outcome.state is RoutingState.routed
    refs = {m.technology_ref for m in engine.match_need("N-1", persist=False)}
    assert "T-3" in refs  # ranked, but never routed
    with engine.sessions() as session:
        from matcher.store.repo.routing import routed_technologies

        routed = routed_technologies(session, outcome.need_id)
    assert len(routed) == 2


def test_cli_routes_and_manages_brokers(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from matcher.cli import app
    from matcher.cli import brokers as cli_brokers

    monkeypatch.setattr(cli_brokers, "open_engine", lambda: engine)
    engine.save_records("needs", [need("N-1")])
    runner = CliRunner()
    routed = runner.invoke(app, ["route", "--need", "N-1", "--lang", "zh"])
    assert routed.exit_code == 0, routed.output
    assert "N-1" in routed.output and "routed" in routed.output and "分派" in routed.output
    listed = runner.invoke(app, ["broker", "list"])
    assert "B-1" in listed.output and "load 1/1" in listed.output
    past = runner.invoke(app, ["broker", "renew", "B-1", "--valid-until", "2020-01-01"])
    assert past.exit_code == 2 and "in the past" in past.output
    suspended = runner.invoke(app, ["broker", "suspend", "B-1"])
    assert suspended.exit_code == 0 and "suspended" in suspended.output
    unrouted = runner.invoke(app, ["route", "--unrouted"])
    assert unrouted.exit_code == 0 and "still unrouted: 1" in unrouted.output
    neither = runner.invoke(app, ["route"])
    assert neither.exit_code == 2


def test_keys_past_64_bits_are_simply_not_found(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError):
        engine.match_and_route("99999999999999999999")
    with pytest.raises(NotFoundError):
        engine.broker("²")
