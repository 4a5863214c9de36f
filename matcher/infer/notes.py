"""What a reader is told about inferred codes: a note on a match's explanation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matcher.domain import Side
from matcher.phrases import join, phrase


def note_inferred(
    explained: Mapping[str, str], query: Any, candidate: Any, target: Side
) -> dict[str, str]:
    """The explanations (by language), each followed by a note for every side of the pair
    whose domain codes were inferred, not set by a person: "need's field inferred, confidence
    0.72" / "需求领域为推断，置信度 0.72".

    Args:
        query: the need, technology or text the match answers.
        candidate: the record of ``target`` it was matched with.
    """
    sides = ((target.other, query), (target, candidate))
    inferred = [(s, r) for s, r in sides if getattr(r, "domains_inferred", False)]
    if not inferred:
        return dict(explained)
    out = {}
    for lang, text in explained.items():
        notes = [
            phrase(
                lang,
                f"domain.inferred.{side.singular}",
                confidence=f"{getattr(record, 'domain_confidence', None) or 0.0:.2f}",
            )
            for side, record in inferred
        ]
        out[lang] = join(lang, [text, *notes])
    return out
