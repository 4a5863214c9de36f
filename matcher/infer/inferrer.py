"""Inference over the catalogue: the label spaces and the nearest person-coded records.

A text is embedded in the spaces the catalogue already indexes (through the embedding cache:
a record about to be saved is embedded once, for its indexes and for this). English texts read
the labels in the primary space (the engine's English model, measured best for English);
Chinese texts read them, in both languages, in the multilingual space. The neighbours come from
the multilingual indexes of both sides (the primary ones when the multilingual space is off):
every text finds its neighbours whatever their language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from matcher.domain import InferredNeed, InferredTechnology, NeedIn, Side, TechnologyIn
from matcher.index.collection import CollectionIndex
from matcher.infer.labels import LabelSpace
from matcher.infer.vote import Inference, InferenceSettings, Neighbour, combine
from matcher.ingest import detect_language
from matcher.store import repo
from matcher.taxonomy import Taxonomy

# How many candidates each index is asked for per neighbour wanted: records whose codes were
# inferred, and the record itself, are dropped after the search.
OVERFETCH = 4
BATCH = 256  # texts inferred together (their label scores and neighbours held in memory)


class CatalogParts(Protocol):
    """What an inference reads from the catalogue (``matcher.catalog.Catalog`` has it)."""

    taxonomy: Taxonomy
    sessions: sessionmaker[Session]
    indexes: Mapping[str, CollectionIndex]
    multilingual_indexes: Mapping[str, CollectionIndex]


def person_domains(row: Any) -> list[str]:
    """A stored record's domain codes if a person set them; none if they were inferred (an
    update that leaves them out then has them inferred again, from the text as it is then)."""
    return [] if getattr(row, "domains_inferred", False) else list(row.domains)


class DomainInferrer:
    """Domain codes for texts without any: labels and person-coded neighbours combined.

    Deterministic: the same text against the same catalogue gets the same codes.
    """

    def __init__(self, parts: CatalogParts, settings: InferenceSettings | None = None) -> None:
        self.parts = parts
        self.settings = settings or InferenceSettings()
        primary = parts.indexes[Side.technologies]
        multilingual = parts.multilingual_indexes.get(Side.technologies)
        temperature = self.settings.item_temperature
        self._labels = {
            "en": LabelSpace(parts.taxonomy, primary.embed, ["en"], temperature=temperature)
        }
        self._label_index = {"en": primary}
        if multilingual is not None:
            both = LabelSpace(
                parts.taxonomy, multilingual.embed, ["en", "zh"], temperature=temperature
            )
            self._labels["zh"], self._label_index["zh"] = both, multilingual
        self._neighbour_indexes = dict(parts.multilingual_indexes or parts.indexes)

    def infer(
        self,
        texts: Sequence[str],
        languages: Sequence[str],
        *,
        own: Sequence[tuple[Side, str] | None] | None = None,
    ) -> list[Inference]:
        """The inference of each text.

        Args:
            languages: each text's language (``en``/``zh``): which label space reads it.
            own: each text's record (side, reference), left out of its own neighbours.
        """
        owners = list(own) if own is not None else [None] * len(texts)
        out: list[Inference] = []
        for start in range(0, len(texts), BATCH):
            part = slice(start, start + BATCH)
            out += self._infer_batch(texts[part], languages[part], owners[part])
        return out

    def suggest(self, text: str, language: str | None = None) -> Inference:
        """The inference of one text (its language detected unless given)."""
        return self.infer([text], [language or detect_language(text)])[0]

    def fill(self, kind: str, records: Sequence[BaseModel]) -> list[BaseModel]:
        """The records, those without domain codes with inferred ones (``Inferred*`` records,
        which store the flag and the confidence); the others as they are."""
        out = list(records)
        if kind not in (Side.technologies.value, Side.needs.value):
            return out
        side = Side(kind)
        todo = [
            i for i, r in enumerate(out) if isinstance(r, TechnologyIn | NeedIn) and not r.domains
        ]
        if not todo:
            return out
        texts = [repo.text_of(side, out[i]) for i in todo]
        written = [
            getattr(out[i], "language", None) or detect_language(text)
            for i, text in zip(todo, texts, strict=True)
        ]
        own: list[tuple[Side, str] | None] = [(side, str(getattr(out[i], "id", ""))) for i in todo]
        found = self.infer(texts, [str(getattr(w, "value", w)) for w in written], own=own)
        model = InferredTechnology if side is Side.technologies else InferredNeed
        for i, inference in zip(todo, found, strict=True):
            values = {**dict(out[i]), "domains": inference.codes}
            out[i] = model.model_construct(**values, domain_confidence=inference.confidence)
        return out

    def _infer_batch(
        self,
        texts: Sequence[str],
        languages: Sequence[str],
        own: Sequence[tuple[Side, str] | None],
    ) -> list[Inference]:
        scores = np.zeros((len(texts), len(self._labels["en"].tree.subfields)))
        for lang, space in self._labels.items():
            mine = [i for i, written in enumerate(languages) if self._space_of(written) == lang]
            if mine:
                vectors = self._label_index[lang].embed([texts[i] for i in mine])
                scores[mine] = space.scores(vectors)
        neighbours = self._neighbours(texts, own)
        tree = self._labels["en"].tree
        return [combine(scores[i], neighbours[i], tree, self.settings) for i in range(len(texts))]

    def _space_of(self, language: str) -> str:
        return "zh" if language == "zh" and "zh" in self._labels else "en"

    def _neighbours(
        self, texts: Sequence[str], own: Sequence[tuple[Side, str] | None]
    ) -> list[list[Neighbour]]:
        """Each text's nearest records (both sides) whose codes a person set."""
        found: list[list[Neighbour]] = [[] for _ in texts]
        wanted = self.settings.neighbours * OVERFETCH
        vectors: np.ndarray | None = None
        for side in Side:
            collection = self._neighbour_indexes.get(side)
            if collection is None or len(collection.index) == 0:
                continue
            if vectors is None:  # one space for both sides: embedded once
                vectors = collection.embed(list(texts))
            index = collection.index
            scores, ids = index.search(vectors, min(wanted, len(index)))
            with self.parts.sessions() as session:
                coded = repo.person_coded(session, side=side, ids=[int(i) for i in ids.ravel()])
            for row in range(len(texts)):
                for score, record_id in zip(scores[row], ids[row], strict=True):
                    entry = coded.get(int(record_id))
                    if entry is None or own[row] == (side, entry[0]) or not entry[1]:
                        continue
                    found[row].append(Neighbour(float(score), tuple(entry[1])))
        return found
