"""What the technology and need routes share, written once for both sides (``Side``).

Reading, validating, writing, importing and listing records of one side, and ranked matches
as the caller may see them. The routers (technologies, needs, search) only bind these to paths.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.deps import Caller, RecordKey
from api.deps import Offset as Offset
from api.schemas import (
    ComponentsPublic,
    ImportReport,
    MatchPublic,
    NeedPublic,
    NeedSummary,
    RowErrorPublic,
    TechnologyPublic,
    TechnologySummary,
)
from matcher.catalog import RecordExistsError
from matcher.domain import Match, Side
from matcher.engine import Engine
from matcher.infer import person_domains
from matcher.ingest import ImportFormatError, read_file, validate_record
from matcher.limits import PAST_DEADLINES_OK
from matcher.permissions import Action, require
from matcher.store import repo
from matcher.store.models import NeedRow, TechnologyRow
from matcher.store.repo import ownership
from matcher.store.repo.ownership import audit_hook, fields_of, record_facts, revealed_ids

log = logging.getLogger(__name__)

IMPORT_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv"}
TEXT_FIELDS = {"title", "description", "keywords"}
# Need fields that play no part in matching or routing: changing them does not re-match.
QUIET_FIELDS = {"id", "language", "contact", "deadline", "confidential"}
PREFIX = {Side.technologies: "T", Side.needs: "N"}  # of generated references
PUBLIC: dict[Side, type[TechnologyPublic] | type[NeedPublic]] = {
    Side.technologies: TechnologyPublic,
    Side.needs: NeedPublic,
}
SUMMARY: dict[Side, type[TechnologySummary] | type[NeedSummary]] = {
    Side.technologies: TechnologySummary,
    Side.needs: NeedSummary,
}

# -- parameters of the routes ----------------------------------------------------------------
Key = RecordKey
Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Top = Annotated[int, Query(ge=1, le=100, description="how many matches")]
TrlFilter = Annotated[int | None, Query(ge=1, le=9)]
Upload = Annotated[UploadFile, File(description=".jsonl or .csv with the fields of FORMATS.md")]
DomainFilter = Annotated[
    str | None, Query(description="domain code; a top-level code includes its sub-fields")
]
RegionFilter = Annotated[
    str | None, Query(description="country, subdivision or grouping code (CN, CN-JS, EU)")
]
TextFilter = Annotated[
    str | None,
    Query(max_length=200, description="case-insensitive substring of title or description"),
]


# -- reading ---------------------------------------------------------------------------------
def get_visible(session: Session, caller: Caller, side: Side, key: str) -> Any:
    """The row by numeric id or reference, or 404 (also when the caller may not see it)."""
    row = repo.find_record(session, side=side, key=key)
    if row is None or not repo.is_visible(session, row=row, viewer=caller.viewer):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {side.singular} with id {key!r}")
    return row


TEASER_HIDES = {"owner", "enterprise", "contact"}  # until the reader may see the parties
PARTIES = {s: dict.fromkeys(TEASER_HIDES & set(s.record_model.model_fields)) for s in Side}


def public_view(side: Side, row: TechnologyRow | NeedRow, *, full: bool = True) -> Any:
    """The public view of a stored row; a teaser (no names, no contact) unless ``full``."""
    view = PUBLIC[side].model_validate(row)
    return view if full else view.model_copy(update=PARTIES[side])


def revealed(session: Session, caller: Caller, side: Side, ids: list[int]) -> set[int]:
    """The records the caller sees in full: every one for an admin; a broker's own (created
    by them or in one of their deals)."""
    if caller.broker is None:
        return set(ids) if caller.is_admin else set()
    return revealed_ids(session, side, broker_id=caller.broker.id, ids=ids)


def show(session: Session, caller: Caller, side: Side, row: TechnologyRow | NeedRow) -> Any:
    """One record as the caller may see it (full, or a teaser)."""
    return public_view(side, row, full=row.id in revealed(session, caller, side, [row.id]))


def fresh(engine: Engine, side: Side, ref: str) -> Any:
    """The public view of a row just written (read in a new session)."""
    with engine.sessions() as session:
        row = repo.record_by_ref(session, side=side, ref=ref)
        assert row is not None
        return public_view(side, row)


def list_page(
    engine: Engine,
    session: Session,
    caller: Caller,
    side: Side,
    *,
    domain: str | None,
    trl_min: int | None,
    trl_max: int | None,
    region: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """One page of the active records the caller may see, filtered and paged by the database."""
    tax = engine.taxonomy
    if domain is not None and domain not in tax.domains:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"domain: unknown domain code {domain!r} (see data/taxonomy/domains.json)",
        )
    if region is not None and not tax.is_region(region) and region not in tax.groupings:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"region: unknown region or grouping code {region!r}; "
            "use ISO 3166 codes such as CN-SH, DE or US-CA, or a grouping from regions.json",
        )
    if trl_min is not None and trl_max is not None and trl_max < trl_min:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"trl_max ({trl_max}) is below trl_min ({trl_min})",
        )
    where = repo.CatalogFilter.resolve(
        tax, domain=domain, region=region, trl_min=trl_min, trl_max=trl_max, text=q
    )
    page = repo.list_records(
        session, side=side, viewer=caller.viewer, where=where, limit=limit, offset=offset
    )
    full = revealed(session, caller, side, [row.id for row in page.rows])
    return {
        "items": [public_view(side, row, full=row.id in full) for row in page.rows],
        "total": page.total,
        "limit": limit,
        "offset": offset,
    }


# -- writing ---------------------------------------------------------------------------------
def validate(engine: Engine, side: Side, raw: dict[str, Any], *, stored: bool = False) -> Any:
    """Validate like ``matcher import`` does; an invalid record answers 422 with each field's
    problem (``RecordInvalidError`` through api/errors). ``stored``: an update that keeps the
    stored deadline, which may have passed since."""
    context = {PAST_DEADLINES_OK: True} if stored else None
    return validate_record(side.value, raw, engine.taxonomy, context=context)


def submit(request: Request, side: Side, record_id: int) -> None:
    """After the write (matching was queued in it); a failing job never fails the write."""
    try:
        request.app.state.worker.after_commit(side.singular, record_id)
    except Exception:
        log.exception("matching job (%s, %s) failed", side.singular, record_id)


def create(request: Request, engine: Engine, caller: Caller, side: Side, body: BaseModel) -> Any:
    """Validate, refuse a taken id, store (the caller as its creator, audited), queue matching."""
    raw = body.model_dump(mode="json", exclude_unset=True)
    if not raw.get("id"):
        raw["id"] = f"{PREFIX[side]}-{uuid.uuid4().hex[:8]}"
    record = validate(engine, side, raw)
    # what a new record changes: the fields it sets away from their default (confidential)
    fields = type(record).model_fields
    changes = [k for k in record.model_fields_set if getattr(record, k) != fields[k].default]
    require(caller.acting, Action.create_record, changes=changes)
    creator = caller.broker.id if caller.broker is not None else None
    audit = audit_hook(side, actor=caller.actor, action="create", creator=creator)
    try:
        queued = request.app.state.worker.in_transaction(side, audit)
        engine.create_record(side, record, before_commit=queued)
    except RecordExistsError:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"a {side.singular} with id {record.id!r} already exists; "
            f"choose another id, or PATCH /api/v1/{side.value}/{record.id} to change it",
        ) from None
    public = fresh(engine, side, record.id)
    submit(request, side, public.id)
    return public


def _as_raw(side: Side, row: TechnologyRow | NeedRow) -> dict[str, Any]:
    """A stored row as import fields to merge an update into (inferred domains left out)."""
    raw = {name: getattr(row, name) for name in side.record_model.model_fields if name != "id"}
    raw["id"], raw["domains"] = row.ref, person_domains(row)
    return raw


def update(
    request: Request,
    engine: Engine,
    session: Session,
    caller: Caller,
    side: Side,
    key: str,
    body: BaseModel,
) -> Any:
    """Merge a partial update into the stored record, validate the whole, store, re-match."""
    row = get_visible(session, caller, side, key)
    if row.status == repo.ARCHIVED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{side.singular} {row.ref!r} is archived; import it again to restore it first",
        )
    changes = body.model_dump(mode="json", exclude_unset=True)
    if not changes:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "nothing to change: send at least one field"
        )
    require(
        caller.acting,
        Action.update_record,
        record_facts(session, side, row),
        changes=changes.keys(),
    )
    before = _as_raw(side, row)
    raw = dict(before)
    if TEXT_FIELDS & changes.keys() and "language" not in changes:
        raw["language"] = None  # the text changed: detect its language again
    raw.update(changes)
    record = validate(engine, side, raw, stored="deadline" not in changes)
    changed = any(
        getattr(record, name) != before[name]
        for name in side.record_model.model_fields
        if name not in QUIET_FIELDS
    )
    audit = audit_hook(side, actor=caller.actor, action="update", before=fields_of(side, row))
    # Every technology write may answer stored needs; a need is matched again when it changed.
    if rematch := side is Side.technologies or changed:
        audit = request.app.state.worker.in_transaction(side, audit)
    engine.save_records(side.value, [record], before_commit=audit)
    public = fresh(engine, side, row.ref)
    if rematch:
        submit(request, side, public.id)
    return public


def archive(engine: Engine, session: Session, caller: Caller, side: Side, key: str) -> Any:
    """Archive a visible record (idempotent) and return it."""
    row = get_visible(session, caller, side, key)
    require(caller.acting, Action.archive_record, record_facts(session, side, row))
    audit = audit_hook(side, actor=caller.actor, action="archive", before={"status": row.status})
    engine.archive(side.value, row.id, before_commit=audit)
    return fresh(engine, side, row.ref)


def _read_upload(upload: UploadFile, max_bytes: int) -> tuple[str, str, bytes]:
    """The upload's name, suffix and bytes; 400/413 for a file the import cannot read."""
    name = upload.filename or "upload"
    suffix = Path(name).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{name}: unsupported file type {suffix or '(none)'}; upload a .jsonl or .csv file",
        )
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{name} is larger than {max_bytes:,} bytes; split it into smaller files",
        )
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{name} is not UTF-8 text; save it as UTF-8"
        ) from None
    return name, suffix, data


def import_upload(
    request: Request,
    engine: Engine,
    caller: Caller,
    max_bytes: int,
    side: Side,
    upload: UploadFile,
    skip_invalid: bool,
) -> Any:
    """Validate an upload like ``matcher import``, store it (audited), re-match what changed."""
    name, suffix, data = _read_upload(upload, max_bytes)
    with tempfile.TemporaryDirectory(prefix="techmatch-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            batch = read_file(path, side.value, engine.taxonomy)
        except ImportFormatError as exc:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, str(exc).replace(str(path), name)
            ) from None
    errors = [RowErrorPublic(line=e.line, message=e.message) for e in batch.errors]
    if errors and not skip_invalid:
        return JSONResponse(
            {
                "detail": f"{len(errors)} invalid row(s) in {name}; nothing was imported "
                "(fix them, or add ?skip_invalid=true to import only the valid rows)",
                "errors": [e.model_dump() for e in errors],
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    records = [record for _, record in batch.records]
    refs = [r.id for r in records]  # type: ignore[attr-defined]
    with engine.sessions() as session:
        before = repo.stored_by_refs(session, side=side, refs=refs)
        audit = ownership.import_audit(session, side, before, actor=caller.actor)
    queued = request.app.state.worker.in_transaction(side, audit, unchanged=before)
    result = engine.save_records(side.value, records, before_commit=queued)
    with engine.sessions() as session:
        after = repo.stored_by_refs(session, side=side, refs=refs)
    for ref, stored in after.items():
        if getattr(before.get(ref), "content_hash", None) != stored.content_hash:
            submit(request, side, stored.id)
    return ImportReport(
        kind=side.value, created=result.created, updated=result.updated, skipped=errors
    )


# -- matches ---------------------------------------------------------------------------------
def _record_id(match: Match, side: Side) -> int:
    """The id of the record of ``side`` a match points to."""
    return match.technology_id if side is Side.technologies else match.need_id or 0


def _to_public(
    session: Session, caller: Caller, matches: Sequence[Match], side: Side, lang: str
) -> list[MatchPublic]:
    """Matches with the summary of the record of ``side`` each points to, explained in ``lang``
    (a teaser of the records the caller may not see in full)."""
    ids = [_record_id(m, side) for m in matches]
    rows = repo.rows_by_ids(session, repo.row_model(side), ids)
    full = revealed(session, caller, side, ids)
    out: list[MatchPublic] = []
    for rank, (match, row_id) in enumerate(zip(matches, ids, strict=True), start=1):
        row = rows.get(row_id)
        if row is None:
            continue
        out.append(
            MatchPublic(
                rank=rank,
                score=round(match.score, 4),
                components=ComponentsPublic(**match.components.as_dict()),
                explanation=match.explained_in(lang),
                need_id=match.need_id,
                need_ref=match.need_ref,
                technology_id=match.technology_id or None,
                technology_ref=match.technology_ref,
                title=match.title,
                record=SUMMARY[side]
                .model_validate(row)
                .model_copy(update={} if row_id in full else PARTIES[side]),
            )
        )
    return out


def hidden(session: Session, caller: Caller, side: Side) -> int:
    """How many active records of ``side`` the caller may not see (rank that many more)."""
    return repo.hidden_count(session, side=side, viewer=caller.viewer)


def keep_visible(
    session: Session,
    caller: Caller,
    matches: Sequence[Match],
    side: Side,
    top: int,
    lang: str,
) -> list[MatchPublic]:
    """Drop results (records of ``side``) the caller may not see, then keep the best ``top``."""
    ids = [_record_id(m, side) for m in matches]
    allowed = repo.visible_ids(session, side=side, ids=ids, viewer=caller.viewer)
    kept = [m for m, i in zip(matches, ids, strict=True) if i in allowed][:top]
    return _to_public(session, caller, kept, side, lang)
