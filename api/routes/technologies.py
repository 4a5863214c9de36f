"""Routes: technologies (the supply side) and the needs ranked for each."""

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
    Page,
    TechnologyCreate,
    TechnologyPublic,
    TechnologyUpdate,
)
from matcher import intake
from matcher.domain import Side

router = APIRouter(prefix="/api/v1/technologies", tags=["technologies"])
SIDE = Side.technologies


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TechnologyPublic)
def create_technology(
    request: Request, engine: EngineDep, caller: StaffDep, body: TechnologyCreate
) -> Any:
    """Add a technology (admin or broker); validated like ``matcher import``.

    A broker leaves ``id`` out (the service assigns the reference); an admin may choose it.
    """
    ref = intake.reference_for(SIDE, body.id, engine.sessions, may_choose=caller.is_admin)
    return records.create(request, engine, caller, SIDE, body.model_copy(update={"id": ref}))


@router.post("/import", response_model=ImportReport)
def import_technologies(
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


@router.get("", response_model=Page[TechnologyPublic])
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


@router.get("/{key}", response_model=TechnologyPublic)
def get_technology(session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """One technology by numeric id or reference."""
    return records.show(session, caller, SIDE, records.get_visible(session, caller, SIDE, key))


@router.patch("/{key}", response_model=TechnologyPublic)
def update_technology(
    request: Request,
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    body: TechnologyUpdate,
) -> Any:
    """Change some fields; the whole record is validated again, re-embedded and re-indexed."""
    return records.update(request, engine, session, caller, SIDE, key, body)


@router.delete("/{key}", response_model=TechnologyPublic)
@router.post("/{key}/archive", response_model=TechnologyPublic)
def archive_technology(engine: EngineDep, session: SessionDep, caller: StaffDep, key: Key) -> Any:
    """Archive a technology: kept in the store, gone from lists, search and matches."""
    return records.archive(engine, session, caller, SIDE, key)


@router.get("/{key}/matches", tags=["matches"], response_model=MatchList)
def technology_matches(
    engine: EngineDep,
    session: SessionDep,
    caller: StaffDep,
    key: Key,
    lang: ReaderLangDep,
    top: Top = 10,
) -> Any:
    """Needs ranked for a technology (matching the other way round)."""
    row = records.get_visible(session, caller, SIDE, key)
    extra = records.hidden(session, caller, SIDE.other)
    matches = engine.match_technology(row.id, top=top + extra)
    return MatchList(items=records.keep_visible(session, caller, matches, SIDE.other, top, lang))
