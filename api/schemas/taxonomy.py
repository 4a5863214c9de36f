"""Domain codes suggested for a text: what a record saved without codes would be given."""

from __future__ import annotations

from pydantic import BaseModel, Field

from matcher.infer import DomainGuess, Inference
from matcher.taxonomy import Taxonomy


class DomainSuggestion(BaseModel):
    """One suggested domain code, named in the reader's language."""

    code: str
    name: str = Field(description="the code's name in the reader's language")
    path: str = Field(description="field › sub-field, in the reader's language")
    confidence: float = Field(ge=0, le=1, description="the engine's confidence (0–1)")

    @classmethod
    def of(cls, taxonomy: Taxonomy, guess: DomainGuess, lang: str) -> DomainSuggestion:
        """A guess of the engine, named in ``lang``."""
        return cls(
            code=guess.code,
            name=taxonomy.domains[guess.code].name(lang),
            path=taxonomy.domain_path(guess.code, lang),
            confidence=guess.confidence,
        )


class DomainSuggestions(BaseModel):
    """Domain codes for a text, likeliest first (the first is what saving it would store)."""

    language: str = Field(description="the language the text is written in (detected)")
    field: DomainSuggestion = Field(description="the likeliest top-level field")
    items: list[DomainSuggestion] = Field(description="sub-fields, likeliest first")

    @classmethod
    def of(
        cls, taxonomy: Taxonomy, inference: Inference, *, language: str, lang: str, top: int
    ) -> DomainSuggestions:
        """The suggestions of an inference, the best ``top`` sub-fields named in ``lang``.

        The stored sub-field comes first, even where another field's sub-field is likelier
        on its own (the field is decided first, over all its sub-fields together).
        """
        rest = [g for g in inference.ranked if g.code != inference.subfield.code]
        ranked = [inference.subfield, *rest][:top]
        return cls(
            language=language,
            field=DomainSuggestion.of(taxonomy, inference.field, lang),
            items=[DomainSuggestion.of(taxonomy, g, lang) for g in ranked],
        )
