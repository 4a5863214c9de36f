"""The permission table, as a table: every role × action × relation to the record."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from matcher.errors import PermissionDeniedError
from matcher.permissions import Action, Actor, RecordFacts, Role, decide, require

ME, OTHER = 1, 2
ADMIN = Actor(Role.admin)
BROKER = Actor(Role.broker, ME)
LAPSED = Actor(Role.lapsed_broker, ME)
PUBLIC = Actor(Role.submitter)

MINE = RecordFacts(created_by=ME)
ROUTED_IN_MY_DEAL = RecordFacts(routed_to=frozenset({ME}), open_deal_brokers=frozenset({ME}))
ROUTED_NO_DEAL = RecordFacts(routed_to=frozenset({ME}))
OTHERS = RecordFacts(created_by=OTHER, routed_to=frozenset({OTHER}))
IN_OTHERS_DEAL = RecordFacts(routed_to=frozenset({OTHER}), open_deal_brokers=frozenset({OTHER}))

Y, N = True, False
# actor, action, record, changed fields, allowed
TABLE = [
    # the admin may do everything, declassifying included
    (ADMIN, Action.update_record, OTHERS, {"confidential"}, Y),
    (ADMIN, Action.archive_record, IN_OTHERS_DEAL, set(), Y),
    (ADMIN, Action.search, None, set(), Y),
    # a broker changes only their own records, never `confidential`
    (BROKER, Action.update_record, MINE, {"contact"}, Y),
    (BROKER, Action.update_record, ROUTED_IN_MY_DEAL, {"description"}, Y),
    (BROKER, Action.update_record, ROUTED_NO_DEAL, {"description"}, N),
    (BROKER, Action.update_record, OTHERS, {"contact"}, N),
    (BROKER, Action.update_record, MINE, {"confidential"}, N),
    (BROKER, Action.update_record, ROUTED_IN_MY_DEAL, {"confidential", "title"}, N),
    (BROKER, Action.archive_record, MINE, set(), Y),
    (BROKER, Action.archive_record, IN_OTHERS_DEAL, set(), N),
    (BROKER, Action.archive_record, ROUTED_NO_DEAL, set(), N),
    (BROKER, Action.create_record, None, set(), Y),
    (BROKER, Action.create_record, None, {"confidential"}, N),  # set away from its default
    (ADMIN, Action.create_record, None, {"confidential"}, Y),
    (BROKER, Action.search, None, set(), Y),
    (BROKER, Action.set_webhook, None, set(), Y),
    (BROKER, Action.feedback, None, set(), Y),
    (BROKER, Action.claim, None, set(), Y),
    (BROKER, Action.work_deal, None, set(), Y),
    (BROKER, Action.read_deal, None, set(), Y),
    # an expired certificate keeps read access to the broker's own deals only
    (LAPSED, Action.read_deal, None, set(), Y),
    (LAPSED, Action.create_record, None, set(), N),
    (LAPSED, Action.update_record, MINE, {"title"}, N),
    (LAPSED, Action.archive_record, MINE, set(), N),
    (LAPSED, Action.search, None, set(), N),
    # neither set nor remove a webhook: DELETE /brokers/me/webhook checks set_webhook too
    (LAPSED, Action.set_webhook, None, set(), N),
    (LAPSED, Action.feedback, None, set(), N),
    (LAPSED, Action.claim, None, set(), N),
    (LAPSED, Action.work_deal, None, set(), N),
    (LAPSED, Action.read_inbox, None, set(), N),
    (LAPSED, Action.read_record, None, set(), N),
    # the anonymous submitter only follows their tracking link
    (PUBLIC, Action.track, None, set(), Y),
    (PUBLIC, Action.read_record, None, set(), N),
    (PUBLIC, Action.search, None, set(), N),
]


@pytest.mark.parametrize(("actor", "action", "record", "changes", "allowed"), TABLE)
def test_the_table(actor, action, record, changes, allowed) -> None:  # type: ignore[no-untyped-def]
    decision = decide(actor, action, record, changes=changes)
    assert decision.allowed is allowed, decision.reason
    if not allowed:
        assert decision.reason  # a refusal always says why
        with pytest.raises(PermissionDeniedError, match=decision.reason[:20]):
            require(actor, action, record, changes=changes)


def test_every_action_has_a_rule_and_every_role_is_covered() -> None:
    covered = {(a.role, act) for a, act, *_ in TABLE}
    assert {act for _, act in covered} >= {
        Action.update_record,
        Action.archive_record,
        Action.search,
        Action.create_record,
    }
    assert {role for role, _ in covered} == set(Role)


def test_actor_of_a_token() -> None:
    today = date(2026, 12, 3)
    valid = SimpleNamespace(id=5, valid_until=today)
    expired = SimpleNamespace(id=6, valid_until=today - timedelta(days=1))
    assert Actor.of(admin=True) == ADMIN
    assert Actor.of(admin=False, broker=valid, today=today) == Actor(Role.broker, 5)
    assert Actor.of(admin=False, broker=expired, today=today) == Actor(Role.lapsed_broker, 6)
    assert Actor.of(admin=False) == PUBLIC
    assert "expired" in decide(Actor(Role.lapsed_broker, 6), Action.search).reason


def test_the_lapsed_refusal_says_what_the_table_allows() -> None:
    """A lapsed broker reads all their own deals (open or ended), so the refusal says so."""
    reason = decide(LAPSED, Action.claim).reason
    assert "your own deals only" in reason and "open" not in reason
    assert decide(LAPSED, Action.read_deal).allowed
