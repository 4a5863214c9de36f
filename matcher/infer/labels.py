"""The label channel: what each sub-field covers, embedded once, and a text's score for each.

A sub-field is described by its name and the items of its scope (``domain_scopes.json``), in
one or both languages. A text scores each sub-field by a soft maximum (log-sum-exp) of its
similarity to these descriptions: one close item counts, several close ones count a little more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from matcher.infer.vote import CodeTree
from matcher.taxonomy import Taxonomy

Embed = Callable[[Sequence[str]], np.ndarray]


def descriptions(taxonomy: Taxonomy, code: str, languages: Sequence[str]) -> list[str]:
    """A sub-field's name and scope items in each of ``languages``."""
    domain = taxonomy.domains[code]
    return [text for lang in languages for text in (domain.name(lang), *domain.scope(lang))]


class LabelSpace:
    """The sub-fields' descriptions in one vector space (embedded on first use, then kept).

    Args:
        embed: texts -> unit vectors of the space (an index's cached ``embed``).
        languages: the languages of the descriptions embedded (``en``, ``zh``).
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        embed: Embed,
        languages: Sequence[str],
        *,
        temperature: float,
    ) -> None:
        self.tree = CodeTree.of(taxonomy)
        self.languages = tuple(languages)
        self.temperature = temperature
        self._taxonomy = taxonomy
        self._embed = embed
        self._lock = threading.Lock()
        self._items: np.ndarray | None = None
        self._owner = np.zeros(0, dtype=np.int64)  # each item's sub-field (its position)

    def _described(self) -> np.ndarray:
        with self._lock:
            if self._items is None:
                texts: list[str] = []
                owner: list[int] = []
                for k, i in enumerate(self.tree.subfields):
                    found = descriptions(self._taxonomy, self.tree.codes[i], self.languages)
                    texts += found
                    owner += [k] * len(found)
                self._owner = np.asarray(owner, dtype=np.int64)
                self._items = np.asarray(self._embed(texts), dtype=np.float32)
            return self._items

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Each text's score for each sub-field: (n texts, n sub-fields), in tree order."""
        items = self._described()
        similarity = np.asarray(vectors, dtype=np.float32).reshape(-1, items.shape[1]) @ items.T
        out = np.full((similarity.shape[0], len(self.tree.subfields)), -np.inf)
        for k in range(len(self.tree.subfields)):
            mine = similarity[:, self._owner == k] / self.temperature
            if mine.shape[1]:
                top = mine.max(axis=1, keepdims=True)
                out[:, k] = (top[:, 0] + np.log(np.exp(mine - top).sum(axis=1))) * self.temperature
        return out
