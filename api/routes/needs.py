"""Routes: needs (the demand side) and the technologies ranked for each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from api.deps import AdminDep, ApiSettingsDep, EngineDep, ReaderLangDep, SessionDep, StaffDep
from api.routes import records
from api.routes.records import (
    DomainFilter,
    Key,
    Limit,
    Offset,
    RegionFilter,
    TextFilter,
    Top,
    TrlFilter,
    Upload,
)
from api.schemas import (
    ImportReport,
    MatchList,
    NeedCreate,
    NeedPublic,
    NeedUpdate,
    Page,
)
from matcher import intake
from matcher.domain import Side

router = APIRouter(prefix="/api/v1/needs", tags=["needs"])
SIDE = Side.needs


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NeedPublic)
def create_need(request: Request, engine: EngineDep, caller: StaffDep, body: NeedCreate) -> Any:
    """Add a need (admin or broker); it is matched and routed to brokers.

    A broker leaves ``id`` out (the service assigns the reference); an admin may choose it.
    """
    ref = intake.reference_for(SIDE, body.id, engine.sessions, may_choose=caller.is_admin)
    return records.create(request, engine, caller, SIDE, body.model_copy(update={"id": ref}))


@router.post("/import", response_model=ImportReport)
def import_needs(
    request: Request,
    engine: EngineDep,
    settings: ApiSettingsDep,
    caller: AdminDep,
    file: Upload,
    skip_invalid: bool = False,
) -> Any:
    """Bulk import (admin): all or nothing, unless ``skip_invalid`` imports the valid rows."""
    return records.import_upload(
        request, engine, caller, settings.max_upload_bytes, SIDE, file, skip_invalid
    )


@router.get("", response_model=Page[NeedPublic])
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
    return records.list_page(
        engine,
        session,
        caller,
        SIDE,
        domain=domain,
        trl_min=trl_min,
        trl_max=trl_max,
        region=region,
        q=q,
        limit=limit,
        offset=offset,
    )


@router.get("/{key}", response_model=NeedPublic)
def get_need(session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """One need by numeric id or reference."""
    return records.show(session, caller, SIDE, records.get_visible(session, caller, SIDE, key))


@router.patch("/{key}", response_model=NeedPublic)
def update_need(
    request: Request,
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    body: NeedUpdate,
) -> Any:
    """Change some fields; the whole record is validated again and, if changed, re-matched."""
    return records.update(request, engine, session, caller, SIDE, key, body)


@router.delete("/{key}", response_model=NeedPublic)
@router.post("/{key}/archive", response_model=NeedPublic)
def archive_need(engine: EngineDep, session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """Archive a need: kept in the store, gone from lists, search and matches."""
    return records.archive(engine, session, caller, SIDE, key)


@router.get("/{key}/matches", tags=["matches"], response_model=MatchList)
def need_matches(
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    lang: ReaderLangDep,
    top: Top = 10,
) -> Any:
    """Technologies ranked for a need (not stored; routing keeps its own copy)."""
    row = records.get_visible(session, caller, SIDE, key)
    extra = records.hidden(session, caller, SIDE.other)
    matches = engine.match_need(row.id, top=top + extra, persist=False)
    return MatchList(items=records.keep_visible(session, caller, matches, SIDE.other, top, lang))
