"""The submit path: a technology or need from someone without an account, in one step.

``submit`` validates the record (its model and the reference data), stores it, links it to
a new tracking token and audits its creation (actor ``submitter``) in one transaction: either
the record, its tracking link and its audit entry are all stored, or none is. Matching is the
caller's next step (the service queues it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from matcher.catalog import Catalog, RecordExistsError
from matcher.domain import NeedIn, Side, TechnologyIn
from matcher.errors import FieldError, RecordInvalidError
from matcher.ingest import validate_record
from matcher.permissions import Role
from matcher.store.repo import tracking
from matcher.store.repo.ownership import audit_hook

# The audit trail's name for an anonymous submitter (the API's are ``admin``, ``broker:B-01``).
SUBMITTER = Role.submitter.value
REFERENCE_DRAWS = 3  # fresh references tried when a generated one is taken meanwhile

# Stands in for the reference a submission gets when it is stored, to check the other fields.
_PLACEHOLDER_REF = "X-PENDING"
# Why a chosen id is refused: one answer whatever the id, so it tells nothing about the store.
CHOSEN_ID = FieldError(
    type="id_assigned",
    loc=("id",),
    msg="leave id out: the service assigns a reference and returns it in the answer (ref)",
)


@dataclass(frozen=True)
class Submission:
    """A stored submission: what the submitter is shown (the token only this once)."""

    side: Side
    id: int
    ref: str
    token: str  # the plain tracking token; only its hash is stored


def problems(side: Side, raw: Mapping[str, Any], catalog: Catalog) -> list[FieldError]:
    """Every problem of a raw submission (none when it would be accepted); nothing is stored."""
    try:
        validate_record(Side(side).value, {"id": _PLACEHOLDER_REF, **raw}, catalog.taxonomy)
    except RecordInvalidError as exc:
        return exc.errors
    return []


def reference_for(
    side: Side, chosen: str | None, sessions: Callable[[], Session], *, may_choose: bool
) -> str:
    """The reference a new record gets: the chosen one, or a fresh unused one (``T-…``/``N-…``).

    Only those who may choose ids (administrators) choose one; for anyone else a chosen id is
    refused before the store is read, with one answer for every id, so that creating a record
    cannot tell whether a record the caller may not read exists (a 409 would).

    Raises:
        RecordInvalidError: an id was chosen by someone who may not choose it.
    """
    if chosen:
        if not may_choose:
            raise RecordInvalidError([CHOSEN_ID])
        return chosen
    with sessions() as session:
        return tracking.new_reference(session, side=Side(side))


def submit(
    side: Side,
    raw: Mapping[str, Any],
    catalog: Catalog,
    *,
    before_commit: Callable[[Session, list[Any]], None] | None = None,
) -> Submission:
    """Validate, store, link a new record to a tracking token and audit it, in one transaction.

    Args:
        side: technologies or needs.
        raw: the record's fields as submitted; without an ``id`` a fresh reference
            (``T-…``/``N-…``) is generated.
        catalog: where it is stored and indexed.
        before_commit: run in the same transaction after the record is stored (queue its
            matching, say).

    Returns:
        The stored record's id and reference, and its tracking token.

    Raises:
        RecordInvalidError: the record is invalid (each problem a ``FieldError``).
        RecordExistsError: the given ``id`` is taken.
    """
    side = Side(side)
    token = tracking.new_token()
    stored: dict[str, int] = {}
    audit = audit_hook(side, actor=SUBMITTER, action="create")  # no creator: no broker made it

    def link(session: Session, rows: list[Any]) -> None:
        (row,) = rows
        tracking.attach_tracking(row, token=token)
        session.flush()  # a clash of tracking hashes fails here, inside the transaction
        stored["id"] = row.id
        audit(session, rows)
        if before_commit is not None:
            before_commit(session, rows)

    chosen = raw.get("id")
    # No lock around this: the encoder runs inside create with none held. A generated
    # reference taken meanwhile (by another process: they are random) is drawn again.
    for attempt in range(REFERENCE_DRAWS):
        fields = {**raw, "id": reference_for(side, chosen, catalog.sessions, may_choose=True)}
        record = validate_record(side.value, fields, catalog.taxonomy)
        assert isinstance(record, TechnologyIn | NeedIn)
        try:
            catalog.create(side, record, before_commit=link)
        except RecordExistsError:
            if chosen or attempt == REFERENCE_DRAWS - 1:
                raise
            continue
        return Submission(side=side, id=stored["id"], ref=record.id, token=token)
    raise AssertionError("unreachable")


def revise(
    side: Side,
    ref: str,
    raw: Mapping[str, Any],
    catalog: Catalog,
    *,
    before_commit: Callable[[Session, list[Any]], None] | None = None,
) -> None:
    """Replace a submission's fields with the submitter's corrected ones, audited (actor
    ``submitter``), in one transaction with ``before_commit`` (queue its matching again).

    Raises:
        RecordInvalidError: the corrected record is invalid (each problem a ``FieldError``).
    """
    side = Side(side)
    record = validate_record(side.value, {**raw, "id": ref}, catalog.taxonomy)
    audit = audit_hook(side, actor=SUBMITTER, action="update")

    def hooks(session: Session, rows: list[Any]) -> None:
        audit(session, rows)
        if before_commit is not None:
            before_commit(session, rows)

    catalog.save_records(side.value, [record], before_commit=hooks)


def withdraw(side: Side, ref: str, catalog: Catalog) -> None:
    """Archive a submission at its submitter's request (no longer matched or routed), audited."""
    side = Side(side)
    catalog.archive(
        side.value, ref, before_commit=audit_hook(side, actor=SUBMITTER, action="archive")
    )
