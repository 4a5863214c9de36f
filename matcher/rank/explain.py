"""Explanations of shown matches, in each reader's language, and the ``Match`` they travel in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matcher.domain import Components, Match, Side
from matcher.phrases import LANGUAGES, join, language_of, phrase
from matcher.rank.features import learned_phrase
from matcher.rank.pair import domain_feature, explain, readiness_feature, region_feature
from matcher.rank.score import Scored
from matcher.taxonomy import Taxonomy


def explanations(
    query: Any,
    scored: Scored,
    target: Side,
    terms: Sequence[str],
    *,
    taxonomy: Taxonomy,
    distance_scale_km: float,
    languages: Sequence[str] = LANGUAGES,
    ranked_in: str | None = None,
) -> dict[str, str]:
    """The explanation of one shown match in each of ``languages``.

    Args:
        query: the need, technology, offer or search the match answers.
        scored: the shown candidate.
        target: the side the candidate is on.
        terms: the words the two texts share.
        ranked_in: the language the ranking wrote its domain and region phrases in; that
            language reuses them instead of describing the pair again.
    """
    row, semantic = scored.row, scored.semantic
    need, tech = (query, row) if target is Side.technologies else (row, query)
    written = {getattr(query, "language", None), row.language}
    across = None not in written and len(written) == 2
    out = {}
    for lang in languages:
        readiness = (
            phrase(lang, "trl.unknown")
            if getattr(tech, "trl", None) is None
            else readiness_feature(need, tech, lang).phrase
        )
        score = f"{semantic:.2f}"
        if across:  # a need and a technology written in different languages
            text = phrase(lang, "text.cross", score=score)
        elif terms:
            text = phrase(lang, "text.terms", score=score, terms=join(lang, terms, "list.sep"))
        else:
            text = phrase(lang, "text.fit", score=score)
        if ranked_in == lang:
            domain, region = scored.metadata.domain.phrase, scored.metadata.region.phrase
        else:
            domain = domain_feature(need, tech, taxonomy, lang).phrase
            reader = "need" if target is Side.technologies else "technology"
            region = region_feature(
                need, tech, taxonomy, distance_scale_km, lang, reader=reader
            ).phrase
        out[lang] = explain([domain, readiness, region, text], lang)
    if scored.learned is not None:  # ranked by a learned model: name what moved it most
        out = {
            code: explain([text, learned_phrase(scored.learned.moves, code)], code)
            for code, text in out.items()
        }
    return out


def match_of(
    scored: Scored, target: Side, *, rank: int, explained: dict[str, str], lang: str
) -> Match:
    """The ``Match`` of a shown candidate: score, components, details and explanations."""
    row, metadata = scored.row, scored.metadata
    components = Components(
        semantic=scored.semantic,
        lexical=scored.lexical,
        domain=metadata.domain.value,
        readiness=metadata.readiness.value,
        region=metadata.region.value,
    )
    match = Match(
        need_id=row.id if target is Side.needs else None,
        technology_id=row.id if target is Side.technologies else 0,
        score=scored.score,
        components=components,
        explanation="",
        title=row.title,
    )
    if target is Side.technologies:
        match.technology_ref = row.ref
        match.details = {"owner": row.owner, "trl": row.trl, "region": row.region}
    else:
        match.need_ref = row.ref
        match.details = {"enterprise": row.enterprise, "home_region": row.home_region}
    match.explanations = explained
    match.explanation = match.explained_in(language_of(lang))
    match.rank = rank
    return match
