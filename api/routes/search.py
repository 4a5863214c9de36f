"""Route: free-text search over technologies or needs, ranked and explained."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import EngineDep, SessionDep, StaffDep, preferred_language
from api.routes import records
from api.schemas import MatchList, SearchRequest
from matcher.domain import Match, Side
from matcher.engine import Engine

router = APIRouter(prefix="/api/v1", tags=["search"])


def needs_for_text(
    engine: Engine, search: SearchRequest, top: int, lang: str | None = None
) -> list[Match]:
    """Needs ranked for a free-text offer: its TRL is ``trl_min`` (or ``trl_max``).

    Explanations are written in ``lang`` (default: the request's ``lang``, else English).
    """
    return engine.match_text(
        search.text,
        target=Side.needs.value,
        domains=list(search.domains),
        min_trl=search.trl_min,
        max_trl=search.trl_max,
        region=search.region,
        hard=search.hard,
        top=top,
        lang=lang or search.lang or "en",
    )


def technologies_for_text(
    engine: Engine, search: SearchRequest, top: int, lang: str
) -> list[Match]:
    """Technologies ranked for free text; the filters describe the need it stands for."""
    return engine.match_text(
        search.text,
        domains=search.domains,
        min_trl=search.trl_min,
        max_trl=search.trl_max,
        region=search.region,
        scope=search.scope.value,
        hard=search.hard,
        top=top,
        lang=lang,
    )


@router.post("/search", response_model=MatchList)
def search(
    request: Request, engine: EngineDep, session: SessionDep, caller: StaffDep, body: SearchRequest
) -> Any:
    """Ranked, explained technologies (or needs) for free text with optional filters.

    Explanations are in ``lang`` when given, else in the Accept-Language header's language.
    """
    lang = body.lang or preferred_language(request.headers.get("accept-language", "")) or "en"
    side = body.target
    top = body.top + records.hidden(session, caller, side)
    if side is Side.technologies:
        matches = technologies_for_text(engine, body, top, lang)
    else:
        matches = needs_for_text(engine, body, top, lang)
    return MatchList(items=records.keep_visible(session, caller, matches, side, body.top, lang))
