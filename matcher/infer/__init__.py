"""Domain codes inferred from a record's text (Chinese or English), with a confidence.

A technology or need may come without domain codes (a university's list of results, a patent
export without CPC classes, a need typed in a hurry). Its codes are inferred when it is saved:
``labels`` scores the text against what each sub-field covers, ``vote`` adds the codes of the
nearest records whose codes a person set and decides, ``inferrer`` wires both to the
catalogue's spaces and indexes. Stored codes keep a flag that they were inferred, and the
confidence; codes a person sets later replace them and clear the flag. ``notes`` words the flag
for a match's reader.
"""

from __future__ import annotations

from matcher.infer.inferrer import CatalogParts, DomainInferrer, person_domains
from matcher.infer.labels import LabelSpace, descriptions
from matcher.infer.notes import note_inferred
from matcher.infer.vote import (
    CodeTree,
    DomainGuess,
    Inference,
    InferenceSettings,
    Neighbour,
    combine,
    neighbour_vote,
    softmax,
)

__all__ = [
    "CatalogParts",
    "CodeTree",
    "DomainGuess",
    "DomainInferrer",
    "Inference",
    "InferenceSettings",
    "LabelSpace",
    "Neighbour",
    "combine",
    "descriptions",
    "neighbour_vote",
    "note_inferred",
    "person_domains",
    "softmax",
]
