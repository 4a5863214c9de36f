"""Routes: the catalogue of technologies and needs, free-text search and matches both ways."""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from api.deps import (
    AdminDep,
    ApiSettingsDep,
    Caller,
    CallerDep,
    EngineDep,
    ReaderLangDep,
    SessionDep,
    preferred_language,
)
from api.schemas import (
    ComponentsPublic,
    ImportReport,
    MatchList,
    MatchPublic,
    NeedCreate,
    NeedPublic,
    NeedSummary,
    NeedUpdate,
    Page,
    RowErrorPublic,
    SearchRequest,
    TechnologyCreate,
    TechnologyPublic,
    TechnologySummary,
    TechnologyUpdate,
)
from matcher.domain import Match, NeedIn, TechnologyIn
from matcher.engine import Engine
from matcher.ingest import ImportFormatError, read_file, validate_record
from matcher.store import repo
from matcher.store.models import NeedRow, RoutedMatchRow, TechnologyRow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")

IMPORT_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv"}
TEXT_FIELDS = {"title", "description", "keywords"}
# Need fields that play no part in matching or routing: changing them does not re-match.
QUIET_FIELDS = {"id", "language", "contact", "deadline", "confidential"}


@dataclass(frozen=True)
class Kind:
    """What differs between the technology and the need endpoints."""

    collection: str  # engine collection: "technologies" | "needs"
    job: str  # worker job kind: "technology" | "need"
    label: str
    prefix: str
    row: type[TechnologyRow] | type[NeedRow]
    record: type[TechnologyIn] | type[NeedIn]
    public: type[TechnologyPublic] | type[NeedPublic]
    region_attr: str


TECH = Kind(
    collection="technologies",
    job="technology",
    label="technology",
    prefix="T",
    row=TechnologyRow,
    record=TechnologyIn,
    public=TechnologyPublic,
    region_attr="region",
)
NEED = Kind(
    collection="needs",
    job="need",
    label="need",
    prefix="N",
    row=NeedRow,
    record=NeedIn,
    public=NeedPublic,
    region_attr="home_region",
)


# -- who may read and write -------------------------------------------------------------------
def require_staff(caller: CallerDep) -> Caller:
    """Admins and brokers in good standing; the public only uses the forms."""
    if caller.broker is not None and caller.broker.suspended:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your broker account is suspended")
    if not caller.is_admin and caller.broker is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "administrators and brokers only")
    return caller


StaffDep = Annotated[Caller, Depends(require_staff)]


def visibility_clause(caller: Caller, model: type[TechnologyRow] | type[NeedRow]) -> Any:
    """SQL condition: rows of ``model`` the caller may see (confidential ones only if routed)."""
    if caller.is_admin:
        return true()
    if caller.broker is None:
        return model.confidential.is_(False)
    column = RoutedMatchRow.technology_id if model is TechnologyRow else RoutedMatchRow.need_id
    routed = select(column).where(RoutedMatchRow.broker_id == caller.broker.id)
    return or_(model.confidential.is_(False), model.id.in_(routed))


def visible(session: Session, caller: Caller, row: TechnologyRow | NeedRow) -> bool:
    """Whether the caller may see this technology or need at all."""
    if not row.confidential or caller.is_admin:
        return True
    if caller.broker is None:
        return False
    tech = isinstance(row, TechnologyRow)
    column = RoutedMatchRow.technology_id if tech else RoutedMatchRow.need_id
    hit = session.scalar(
        select(RoutedMatchRow.id)
        .where(RoutedMatchRow.broker_id == caller.broker.id, column == row.id)
        .limit(1)
    )
    return hit is not None


def visible_ids(
    session: Session, caller: Caller, model: type[TechnologyRow] | type[NeedRow], ids: Sequence[int]
) -> set[int]:
    """The subset of ``ids`` the caller may see."""
    if not ids:
        return set()
    stmt = select(model.id).where(model.id.in_(list(ids)), visibility_clause(caller, model))
    return set(session.scalars(stmt))


def hidden_count(
    session: Session, caller: Caller, model: type[TechnologyRow] | type[NeedRow]
) -> int:
    """How many active rows the caller may not see (ranking asks for that many more)."""
    if caller.is_admin:
        return 0
    active = model.status == repo.ACTIVE
    everything = session.scalar(select(func.count()).select_from(model).where(active)) or 0
    seen = (
        session.scalar(
            select(func.count()).select_from(model).where(active, visibility_clause(caller, model))
        )
        or 0
    )
    return int(everything) - int(seen)


def _get_visible(session: Session, caller: Caller, kind: Kind, key: str) -> Any:
    """The row by numeric id or reference, or 404 (also when the caller may not see it)."""
    row = repo.get_by_ref_or_id(session, kind.row, key)
    if row is None or not visible(session, caller, row):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {kind.label} with id {key!r}")
    return row


# -- validation and writing --------------------------------------------------------------------
def _validate(engine: Engine, kind: Kind, raw: dict[str, Any]) -> Any:
    """Validate like ``matcher import`` does; 422 with the field-specific problems."""
    try:
        return validate_record(kind.collection, raw, engine.taxonomy)
    except ValueError as exc:
        message = str(exc).replace("row: Value error, ", "")
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message) from None


def _as_raw(kind: Kind, row: TechnologyRow | NeedRow) -> dict[str, Any]:
    """A stored row as the import fields, ready to merge a partial update into."""
    raw = {name: getattr(row, name) for name in kind.record.model_fields if name != "id"}
    raw["id"] = row.ref
    return raw


def _fresh(engine: Engine, kind: Kind, ref: str) -> Any:
    """The public view of a row just written (read in a new session)."""
    with engine.sessions() as session:
        row = session.scalar(select(kind.row).where(kind.row.ref == ref))
        assert row is not None
        return kind.public.model_validate(row)


def _submit(request: Request, job: str, record_id: int) -> None:
    """Queue matching + routing; a failing job never fails the write that caused it."""
    try:
        request.app.state.worker.submit(job, record_id)
    except Exception:
        log.exception("matching job (%s, %s) failed", job, record_id)


def _create(request: Request, engine: Engine, kind: Kind, body: BaseModel) -> Any:
    """Validate, refuse a taken id, store, then queue matching."""
    raw = body.model_dump(mode="json", exclude_unset=True)
    if not raw.get("id"):
        raw["id"] = f"{kind.prefix}-{uuid.uuid4().hex[:8]}"
    record = _validate(engine, kind, raw)
    # The engine lock makes "is the id free?" and the write one step (save_records upserts).
    with engine._lock:
        with engine.sessions() as session:
            taken = session.scalar(select(kind.row.id).where(kind.row.ref == record.id))
        if taken is not None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"a {kind.label} with id {record.id!r} already exists; "
                f"choose another id, or PATCH /api/v1/{kind.collection}/{record.id} to change it",
            )
        engine.save_records(kind.collection, [record])
    public = _fresh(engine, kind, record.id)
    _submit(request, kind.job, public.id)
    return public


def _update(
    request: Request,
    engine: Engine,
    session: Session,
    caller: Caller,
    kind: Kind,
    key: str,
    body: BaseModel,
) -> Any:
    """Merge a partial update into the stored record, validate the whole, store, re-match."""
    row = _get_visible(session, caller, kind, key)
    if row.status == repo.ARCHIVED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{kind.label} {row.ref!r} is archived; import it again to restore it first",
        )
    changes = body.model_dump(mode="json", exclude_unset=True)
    if not changes:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "nothing to change: send at least one field"
        )
    before = _as_raw(kind, row)
    raw = dict(before)
    if TEXT_FIELDS & changes.keys() and "language" not in changes:
        raw["language"] = None  # the text changed: detect its language again
    raw.update(changes)
    record = _validate(engine, kind, raw)
    changed = any(
        getattr(record, name) != before[name]
        for name in kind.record.model_fields
        if name not in QUIET_FIELDS
    )
    engine.save_records(kind.collection, [record])
    public = _fresh(engine, kind, row.ref)
    # Every technology write may answer stored needs; a need is matched again when it changed.
    if kind is TECH or changed:
        _submit(request, kind.job, public.id)
    return public


def _archive(engine: Engine, session: Session, caller: Caller, kind: Kind, key: str) -> Any:
    """Archive a visible record (idempotent) and return it."""
    row = _get_visible(session, caller, kind, key)
    engine.archive(kind.collection, row.id)
    return _fresh(engine, kind, row.ref)


def _list(
    engine: Engine,
    session: Session,
    caller: Caller,
    kind: Kind,
    *,
    domain: str | None,
    trl_min: int | None,
    trl_max: int | None,
    region: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """One page of the active records the caller may see, filtered."""
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
    model = kind.row
    conditions: list[ColumnElement[bool]] = [
        model.status == repo.ACTIVE,
        visibility_clause(caller, model),
    ]
    if model is TechnologyRow:
        if trl_min is not None:
            conditions.append(TechnologyRow.trl >= trl_min)
        if trl_max is not None:
            conditions.append(TechnologyRow.trl <= trl_max)
    else:  # a need matches when its readiness window overlaps the one asked for
        if trl_max is not None:
            conditions.append(NeedRow.trl_min <= trl_max)
        if trl_min is not None:
            conditions.append(or_(NeedRow.trl_max.is_(None), NeedRow.trl_max >= trl_min))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                model.title.ilike(pattern, escape="\\"),
                model.description.ilike(pattern, escape="\\"),
            )
        )
    rows: Sequence[Any] = session.scalars(select(model).where(*conditions).order_by(model.id)).all()
    if domain is not None:
        rows = [r for r in rows if any(domain in tax.ancestors(code) for code in r.domains)]
    if region is not None:
        rows = [r for r in rows if tax.region_in(getattr(r, kind.region_attr), region)]
    page = rows[offset : offset + limit]
    return {
        "items": [kind.public.model_validate(r) for r in page],
        "total": len(rows),
        "limit": limit,
        "offset": offset,
    }


def _import(
    request: Request,
    engine: Engine,
    max_bytes: int,
    kind: Kind,
    upload: UploadFile,
    skip_invalid: bool,
) -> Any:
    """Validate an uploaded file like ``matcher import``, store it, re-match what changed."""
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
    with tempfile.TemporaryDirectory(prefix="techmatch-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            batch = read_file(path, kind.collection, engine.taxonomy)
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
    before: dict[str, str] = {}
    if refs:
        with engine.sessions() as session:
            found = session.execute(
                select(kind.row.ref, kind.row.content_hash).where(kind.row.ref.in_(refs))
            )
            before = {ref: digest for ref, digest in found}
    result = engine.save_records(kind.collection, records)
    if refs:
        with engine.sessions() as session:
            after = session.execute(
                select(kind.row.ref, kind.row.id, kind.row.content_hash).where(
                    kind.row.ref.in_(refs)
                )
            ).all()
        # New records and records whose text changed are matched (and routed) again.
        for ref, row_id, new_hash in after:
            if before.get(ref) != new_hash:
                _submit(request, kind.job, row_id)
    return ImportReport(
        kind=kind.collection, created=result.created, updated=result.updated, skipped=errors
    )


# -- matches -----------------------------------------------------------------------------------
def _to_public(
    session: Session, matches: Sequence[Match], target: str, lang: str
) -> list[MatchPublic]:
    """Matches with the summary of the record each points to, explained in ``lang``."""
    model = TechnologyRow if target == "technologies" else NeedRow
    ids = [m.technology_id if target == "technologies" else m.need_id or 0 for m in matches]
    rows = repo.rows_by_ids(session, model, ids)
    out: list[MatchPublic] = []
    for rank, (match, row_id) in enumerate(zip(matches, ids, strict=True), start=1):
        row = rows.get(row_id)
        if row is None:
            continue
        summary: TechnologySummary | NeedSummary = (
            TechnologySummary.model_validate(row)
            if target == "technologies"
            else NeedSummary.model_validate(row)
        )
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
                record=summary,
            )
        )
    return out


def _keep_visible(
    session: Session,
    caller: Caller,
    matches: Sequence[Match],
    target: str,
    top: int,
    lang: str,
) -> list[MatchPublic]:
    """Drop results the caller may not see, then keep the best ``top``."""
    model = TechnologyRow if target == "technologies" else NeedRow
    ids = [m.technology_id if target == "technologies" else m.need_id or 0 for m in matches]
    allowed = visible_ids(session, caller, model, ids)
    kept = [m for m, i in zip(matches, ids, strict=True) if i in allowed][:top]
    return _to_public(session, kept, target, lang)


def needs_for_text(
    engine: Engine, search: SearchRequest, top: int, lang: str | None = None
) -> list[Match]:
    """Needs ranked for a free-text offer: its TRL is ``trl_min`` (or ``trl_max``).

    Explanations are written in ``lang`` (default: the request's ``lang``, else English).
    """
    return engine.match_text(
        search.text,
        target="needs",
        domains=list(search.domains),
        min_trl=search.trl_min,
        max_trl=search.trl_max,
        region=search.region,
        hard=search.hard,
        top=top,
        lang=lang or search.lang or "en",
    )


# -- technologies ------------------------------------------------------------------------------
Key = Annotated[str, PathParam(description="numeric id or reference, e.g. 17 or T-0001")]
Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Offset = Annotated[int, Query(ge=0, description="records to skip")]
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


@router.post(
    "/technologies",
    tags=["technologies"],
    status_code=status.HTTP_201_CREATED,
    response_model=TechnologyPublic,
)
def create_technology(
    request: Request, engine: EngineDep, caller: StaffDep, body: TechnologyCreate
) -> Any:
    """Add a technology (admin or broker); validated like ``matcher import``."""
    return _create(request, engine, TECH, body)


@router.post("/technologies/import", tags=["technologies"], response_model=ImportReport)
def import_technologies(
    request: Request,
    engine: EngineDep,
    settings: ApiSettingsDep,
    caller: AdminDep,
    file: Upload,
    skip_invalid: bool = False,
) -> Any:
    """Bulk import (admin): all or nothing, unless ``skip_invalid`` imports the valid rows."""
    return _import(request, engine, settings.max_upload_bytes, TECH, file, skip_invalid)


@router.get("/technologies", tags=["technologies"], response_model=Page[TechnologyPublic])
def list_technologies(
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    domain: DomainFilter = None,
    trl_min: TrlFilter = None,
    trl_max: TrlFilter = None,
    region: RegionFilter = None,
    q: TextFilter = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Any:
    """Active technologies the caller may see, filtered and paginated (by id)."""
    return _list(
        engine,
        session,
        caller,
        TECH,
        domain=domain,
        trl_min=trl_min,
        trl_max=trl_max,
        region=region,
        q=q,
        limit=limit,
        offset=offset,
    )


@router.get("/technologies/{key}", tags=["technologies"], response_model=TechnologyPublic)
def get_technology(session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """One technology by numeric id or reference."""
    return TechnologyPublic.model_validate(_get_visible(session, caller, TECH, key))


@router.patch("/technologies/{key}", tags=["technologies"], response_model=TechnologyPublic)
def update_technology(
    request: Request,
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    body: TechnologyUpdate,
) -> Any:
    """Change some fields; the whole record is validated again, re-embedded and re-indexed."""
    return _update(request, engine, session, caller, TECH, key, body)


@router.delete("/technologies/{key}", tags=["technologies"], response_model=TechnologyPublic)
@router.post("/technologies/{key}/archive", tags=["technologies"], response_model=TechnologyPublic)
def archive_technology(engine: EngineDep, session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """Archive a technology: kept in the store, gone from lists, search and matches."""
    return _archive(engine, session, caller, TECH, key)


@router.get("/technologies/{key}/matches", tags=["matches"], response_model=MatchList)
def technology_matches(
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    lang: ReaderLangDep,
    top: Top = 10,
) -> Any:
    """Needs ranked for a technology (matching the other way round)."""
    row = _get_visible(session, caller, TECH, key)
    extra = hidden_count(session, caller, NeedRow)
    matches = engine.match_technology(row.id, top=top + extra)
    return MatchList(items=_keep_visible(session, caller, matches, "needs", top, lang))


# -- needs -------------------------------------------------------------------------------------
@router.post(
    "/needs", tags=["needs"], status_code=status.HTTP_201_CREATED, response_model=NeedPublic
)
def create_need(request: Request, engine: EngineDep, caller: StaffDep, body: NeedCreate) -> Any:
    """Add a need (admin or broker); it is matched and routed to brokers."""
    return _create(request, engine, NEED, body)


@router.post("/needs/import", tags=["needs"], response_model=ImportReport)
def import_needs(
    request: Request,
    engine: EngineDep,
    settings: ApiSettingsDep,
    caller: AdminDep,
    file: Upload,
    skip_invalid: bool = False,
) -> Any:
    """Bulk import (admin): all or nothing, unless ``skip_invalid`` imports the valid rows."""
    return _import(request, engine, settings.max_upload_bytes, NEED, file, skip_invalid)


@router.get("/needs", tags=["needs"], response_model=Page[NeedPublic])
def list_needs(
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    domain: DomainFilter = None,
    trl_min: TrlFilter = None,
    trl_max: TrlFilter = None,
    region: RegionFilter = None,
    q: TextFilter = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Any:
    """Active needs the caller may see; the TRL filter keeps windows that overlap it."""
    return _list(
        engine,
        session,
        caller,
        NEED,
        domain=domain,
        trl_min=trl_min,
        trl_max=trl_max,
        region=region,
        q=q,
        limit=limit,
        offset=offset,
    )


@router.get("/needs/{key}", tags=["needs"], response_model=NeedPublic)
def get_need(session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """One need by numeric id or reference."""
    return NeedPublic.model_validate(_get_visible(session, caller, NEED, key))


@router.patch("/needs/{key}", tags=["needs"], response_model=NeedPublic)
def update_need(
    request: Request,
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    body: NeedUpdate,
) -> Any:
    """Change some fields; the whole record is validated again and, if changed, re-matched."""
    return _update(request, engine, session, caller, NEED, key, body)


@router.delete("/needs/{key}", tags=["needs"], response_model=NeedPublic)
@router.post("/needs/{key}/archive", tags=["needs"], response_model=NeedPublic)
def archive_need(engine: EngineDep, session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """Archive a need: kept in the store, gone from lists, search and matches."""
    return _archive(engine, session, caller, NEED, key)


@router.get("/needs/{key}/matches", tags=["matches"], response_model=MatchList)
def need_matches(
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    lang: ReaderLangDep,
    top: Top = 10,
) -> Any:
    """Technologies ranked for a need (not stored; routing keeps its own copy)."""
    row = _get_visible(session, caller, NEED, key)
    extra = hidden_count(session, caller, TechnologyRow)
    matches = engine.match_need(row.id, top=top + extra, persist=False)
    return MatchList(items=_keep_visible(session, caller, matches, "technologies", top, lang))


# -- search ------------------------------------------------------------------------------------
@router.post("/search", tags=["search"], response_model=MatchList)
def search(
    request: Request, engine: EngineDep, session: SessionDep, caller: StaffDep, body: SearchRequest
) -> Any:
    """Ranked, explained technologies (or needs) for free text with optional filters.

    Explanations are in ``lang`` when given, else in the Accept-Language header's language.
    """
    lang = body.lang or preferred_language(request.headers.get("accept-language", "")) or "en"
    if body.target == "technologies":
        extra = hidden_count(session, caller, TechnologyRow)
        matches = engine.match_text(
            body.text,
            domains=body.domains,
            min_trl=body.trl_min,
            max_trl=body.trl_max,
            region=body.region,
            scope=body.scope.value,
            hard=body.hard,
            top=body.top + extra,
            lang=lang,
        )
    else:
        extra = hidden_count(session, caller, NeedRow)
        matches = needs_for_text(engine, body, body.top + extra, lang)
    return MatchList(items=_keep_visible(session, caller, matches, body.target, body.top, lang))
