"""Route: domain codes suggested for a text, for forms and clients that help people choose."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import EngineDep, ReaderLangDep, StaffDep
from api.schemas import DomainSuggestions, QueryText
from matcher.ingest import detect_language

router = APIRouter(prefix="/api/v1/taxonomy", tags=["taxonomy"])

SuggestText = Annotated[
    QueryText,
    Query(description="the record's text (title, description); Chinese or English"),
]
SuggestTop = Annotated[int, Query(ge=1, le=20, description="how many sub-fields")]


@router.get("/suggest", response_model=DomainSuggestions)
def suggest_domains(
    engine: EngineDep, _: StaffDep, text: SuggestText, lang: ReaderLangDep, top: SuggestTop = 5
) -> Any:
    """Domain codes for a text, likeliest first, named in the reader's language (``lang``, else
    Accept-Language), each with the engine's confidence: the codes a record with this text
    saved without any would be given (inferred from the labels and the catalogue's records).
    Long texts (URLs beyond the service's limit answer 414): send the title and first lines.
    """
    language = detect_language(text)
    inference = engine.catalog.inferrer.suggest(text, language)
    return DomainSuggestions.of(engine.taxonomy, inference, language=language, lang=lang, top=top)
