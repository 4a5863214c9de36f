"""What queries read without touching the database: a collection's active records, slim.

``CollectionView`` holds, for every active record, the columns ranking reads (a ``ViewRecord``:
one slotted object, no per-record dict, without the description, which only the lexical and
vector indexes need) and a BM25 index over the texts; the writes keep it up to date one record
at a time. ``Record`` / ``record_of`` are the whole row, detached, for callers that show it.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar

from sqlalchemy import inspect as sa_inspect

from matcher.retrieve.bm25 import LexicalIndex
from matcher.retrieve.crosslingual import LanguageSpace

# Columns the in-memory view leaves out: long texts and bookkeeping that ranking never reads.
VIEW_LEAVES_OUT = frozenset(
    {"description", "content_hash", "tracking_hash", "created_at", "updated_at"}
)
# A string column this short holds few distinct values (a region, a status, a language): one
# shared copy of each value serves every row.
SHARED_STRING_LENGTH = 32
# List values (domain codes, CPC classes) become tuples, one shared copy of each distinct
# value, while there are fewer distinct values than this (then each row keeps its own).
SHARED_TUPLES = 100_000


def language(row: Any) -> str:
    """The language a record is written in (English when not recorded)."""
    return getattr(row, "language", None) or "en"


class Record(SimpleNamespace):
    """A stored row's column values as plain attributes, detached from the database.

    Ranking reads several attributes of every candidate (~200 per query); an ORM attribute
    costs several times a plain one, so the in-memory view holds plain objects instead of rows.
    """


def record_of(row: Any) -> Record:
    """All the column values of an ORM row as a ``Record``."""
    return Record(**{c.key: getattr(row, c.key) for c in sa_inspect(row).mapper.column_attrs})


def _short_string(column: Any) -> bool:
    """Whether a column holds short strings (``String(n)``, n ≤ SHARED_STRING_LENGTH)."""
    length = getattr(column.columns[0].type, "length", None)
    return length is not None and length <= SHARED_STRING_LENGTH


class ViewRecord:
    """The columns of one row that ranking reads, in slots (a subclass per table).

    Values are stored compactly: short strings interned, lists as shared tuples, so a row of a
    million-record catalogue costs its distinct texts (reference, title, owner) and little else.
    """

    __slots__ = ()
    fields: ClassVar[tuple[str, ...]] = ()
    shared: ClassVar[frozenset[str]] = frozenset()
    _types: ClassVar[dict[type, type[ViewRecord]]] = {}
    _tuples: ClassVar[dict[tuple[Any, ...], tuple[Any, ...]]] = {}

    @classmethod
    def of(cls, row: Any) -> ViewRecord:
        """The view's record of an ORM row."""
        kind = cls._types.get(type(row))
        if kind is None:
            columns = [
                c for c in sa_inspect(type(row)).column_attrs if c.key not in VIEW_LEAVES_OUT
            ]
            names = tuple(c.key for c in columns)
            shared = frozenset(c.key for c in columns if _short_string(c))
            kind = type(
                f"{type(row).__name__}View",
                (cls,),
                {"__slots__": names, "fields": names, "shared": shared},
            )
            cls._types[type(row)] = kind
        record = object.__new__(kind)
        for name in kind.fields:
            value = getattr(row, name)
            if isinstance(value, str) and name in kind.shared:
                value = sys.intern(value)
            elif isinstance(value, list):
                value = cls._tuple(value)
            object.__setattr__(record, name, value)
        return record

    @classmethod
    def _tuple(cls, values: list[Any]) -> tuple[Any, ...]:
        """A list value as a tuple, one shared copy per distinct value while there are few."""
        value = tuple(sys.intern(v) if isinstance(v, str) else v for v in values)
        shared = cls._tuples.get(value)
        if shared is not None:
            return shared
        if len(cls._tuples) < SHARED_TUPLES:
            cls._tuples[value] = value
        return value

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.fields[:4])
        return f"{type(self).__name__}({shown}, …)"


@dataclass(frozen=True)
class CollectionView:
    """A collection's active records for ranking: BM25 and slim detached rows by id.

    Built once from the store, then kept up to date one record at a time by the writes
    (``Catalog.reindex``): nothing is rebuilt per write.
    """

    lexical: LexicalIndex
    rows: dict[int, Any]
    # How many active records are written in each language.
    language_counts: Counter[str] = field(default_factory=Counter, compare=False)
    # The multilingual space of these rows, built on the first query that needs it (and again
    # after a write changed the rows).
    spaces: dict[str, LanguageSpace] = field(default_factory=dict, compare=False)

    @property
    def languages(self) -> frozenset[str]:
        """What the active records are written in."""
        return frozenset(lg for lg, n in self.language_counts.items() if n > 0)

    def put(self, row_id: int, record: Any | None) -> None:
        """Replace a record (``None``: remove it) in the rows and language counts."""
        old = self.rows.pop(row_id, None)
        if old is not None:
            self.language_counts[language(old)] -= 1
        if record is not None:
            self.rows[row_id] = record
            self.language_counts[language(record)] += 1
        self.spaces.clear()
