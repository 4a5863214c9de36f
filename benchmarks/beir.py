"""Read data sets in the BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"


@dataclass
class BeirDataset:
    """A BEIR data set in memory.

    corpus: id → {title, text, metadata}; queries: id → {text, metadata};
    qrels: qid → {docid: grade}.
    """

    name: str
    corpus: dict[str, dict[str, Any]]
    queries: dict[str, dict[str, Any]]
    qrels: dict[str, dict[str, int]]
    split: str = "dev"
    extra: dict[str, Any] = field(default_factory=dict)

    def doc_text(self, doc_id: str) -> str:
        """Title and text joined, as every system sees a document."""
        doc = self.corpus[doc_id]
        title = (doc.get("title") or "").strip()
        return f"{title}. {doc['text']}" if title else doc["text"]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_beir(
    directory: Path, split: str = "dev", *, max_queries: int | None = None
) -> BeirDataset:
    """Load a BEIR data set; only queries with at least one relevant document are kept.

    Args:
        directory: folder holding corpus.jsonl, queries.jsonl and qrels/.
        split: name of the qrels file (``qrels/<split>.tsv``).
        max_queries: keep the first N judged queries (for smoke runs).
    """
    directory = Path(directory)
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for needed in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} not found: is {directory} a BEIR data set?")
    corpus = {
        d["_id"]: {
            "title": d.get("title", ""),
            "text": d.get("text", ""),
            "metadata": d.get("metadata", {}),
        }
        for d in _jsonl(directory / "corpus.jsonl")
    }
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header and header[-1].strip().lstrip("-").isdigit():  # no header line after all
            qrels.setdefault(header[0], {})[header[1]] = int(header[2])
        for row in reader:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {
        q["_id"]: {"text": q["text"], "metadata": q.get("metadata", {})}
        for q in _jsonl(directory / "queries.jsonl")
        if q["_id"] in qrels
    }
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    qrels = {q: rel for q, rel in qrels.items() if q in queries}
    return BeirDataset(directory.name, corpus, queries, qrels, split)
