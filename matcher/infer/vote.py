"""The decision: label scores and the neighbours' codes combined into one inference.

Pure functions over arrays and plain rows (no model, no database), so that the rules are tested
in milliseconds. A text gets a probability for every code of the taxonomy: from the label
channel (how close it is to what each sub-field covers) and from a vote of its nearest records
whose codes a person set; the field (top level) is the one with the most probability, itself
and its sub-fields together, and the sub-field the likeliest within that field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.taxonomy import Taxonomy


@dataclass(frozen=True)
class InferenceSettings:
    """How the two channels are weighed; measured on the demo data (``benchmarks.domains``).

    Attributes:
        item_temperature: softness of a sub-field's score over its items (log-sum-exp).
        label_temperature: softness of the label channel's probabilities over sub-fields.
        neighbours: how many person-coded records vote.
        neighbour_temperature: how fast a neighbour's vote fades with its distance from the
            nearest one.
        neighbour_weight: the vote's share when all ``neighbours`` were found (less when fewer
            were: a catalogue of three records says little).
    """

    item_temperature: float = 0.05
    label_temperature: float = 0.03
    neighbours: int = 20
    neighbour_temperature: float = 0.05
    neighbour_weight: float = 0.6


@dataclass(frozen=True)
class DomainGuess:
    """One domain code and how sure the engine is of it (a probability, 0–1)."""

    code: str
    confidence: float


@dataclass(frozen=True)
class Inference:
    """Domain codes inferred for one text.

    Attributes:
        field: the top-level field.
        subfield: the likeliest sub-field within ``field`` (the code stored).
        ranked: every sub-field, likeliest first (suggestions).
        fields: every top-level field, likeliest first.
    """

    field: DomainGuess
    subfield: DomainGuess
    ranked: tuple[DomainGuess, ...]
    fields: tuple[DomainGuess, ...]

    @property
    def codes(self) -> list[str]:
        """The codes stored for the record."""
        return [self.subfield.code]

    @property
    def confidence(self) -> float:
        """The confidence stored with them: the sub-field's."""
        return self.subfield.confidence


@dataclass(frozen=True)
class Neighbour:
    """A stored record near the text, with the codes a person gave it."""

    similarity: float
    domains: tuple[str, ...]


@dataclass(frozen=True)
class CodeTree:
    """The taxonomy's codes in one fixed order, with the positions the arrays use."""

    codes: tuple[str, ...]
    subfields: tuple[int, ...]  # positions of the codes that have a parent
    fields: tuple[int, ...]  # positions of the top-level codes
    children: dict[int, tuple[int, ...]]  # field position -> its sub-fields' positions

    @classmethod
    def of(cls, taxonomy: Taxonomy) -> CodeTree:
        """The tree of a taxonomy (codes in the order of ``domains.json``)."""
        codes = tuple(taxonomy.domains)
        at = {code: i for i, code in enumerate(codes)}
        fields = tuple(i for i, c in enumerate(codes) if taxonomy.domains[c].parent is None)
        children = {
            f: tuple(i for i, c in enumerate(codes) if taxonomy.domains[c].parent == codes[f])
            for f in fields
        }
        subfields = tuple(i for i, c in enumerate(codes) if taxonomy.domains[c].parent in at)
        return cls(codes=codes, subfields=subfields, fields=fields, children=children)

    def index(self, code: str) -> int | None:
        """The position of a code (None for one the taxonomy lacks)."""
        try:
            return self.codes.index(code)
        except ValueError:
            return None


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities from scores along the last axis (stable: the largest score is shifted)."""
    z = (scores - scores.max(axis=-1, keepdims=True)) / temperature
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def neighbour_vote(
    neighbours: Sequence[Neighbour], tree: CodeTree, settings: InferenceSettings
) -> tuple[np.ndarray, int]:
    """The neighbours' codes as probabilities over every code, and how many voted.

    The nearest ``settings.neighbours`` vote; each one's weight falls off with its distance
    from the nearest, and is split between its codes. Unknown codes are ignored.
    """
    votes = np.zeros(len(tree.codes))
    nearest = sorted(neighbours, key=lambda n: -n.similarity)[: settings.neighbours]
    voters = 0
    for neighbour in nearest:
        known = [i for i in (tree.index(c) for c in neighbour.domains) if i is not None]
        if not known:
            continue
        voters += 1
        gap = neighbour.similarity - nearest[0].similarity
        weight = float(np.exp(gap / settings.neighbour_temperature))
        for i in known:
            votes[i] += weight / len(known)
    total = votes.sum()
    return (votes / total if total > 0 else votes), voters


def combine(
    label_scores: np.ndarray,
    neighbours: Sequence[Neighbour],
    tree: CodeTree,
    settings: InferenceSettings,
) -> Inference:
    """One text's inference from its label scores (one a sub-field, in ``tree.subfields``
    order) and its neighbours.

    Ties go to the code that comes first in the taxonomy, so the answer is deterministic.
    """
    probability = np.zeros(len(tree.codes))
    probability[list(tree.subfields)] = softmax(label_scores, settings.label_temperature)
    votes, voters = neighbour_vote(neighbours, tree, settings)
    share = settings.neighbour_weight * min(voters, settings.neighbours) / settings.neighbours
    probability = (1.0 - share) * probability + share * votes
    field_mass = {
        f: probability[f] + probability[list(tree.children[f])].sum() for f in tree.fields
    }
    fields = sorted(tree.fields, key=lambda f: (-field_mass[f], f))
    best = fields[0]
    subfield = min(tree.children[best] or (best,), key=lambda i: (-probability[i], i))
    ranked = sorted(tree.subfields, key=lambda i: (-probability[i], i))
    return Inference(
        field=DomainGuess(tree.codes[best], round(float(field_mass[best]), 4)),
        subfield=DomainGuess(tree.codes[subfield], round(float(probability[subfield]), 4)),
        ranked=tuple(DomainGuess(tree.codes[i], round(float(probability[i]), 4)) for i in ranked),
        fields=tuple(DomainGuess(tree.codes[f], round(float(field_mass[f]), 4)) for f in fields),
    )
