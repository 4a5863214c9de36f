"""Bilingual benchmark: needs in one language, intended technologies in the other, one mixed pool.

Built from the demo data (``data/demo``) and its parallel texts (``data/demo/parallel``): every
demo record exists in English, the 80 needs and 180 of the 300 technologies also in Chinese.
The pool holds the 300 English technologies and the 180 Chinese ones; each is stored through
the real engine (a scratch ``MATCHER_HOME``) with the demo record's metadata. A direction
``q->t`` asks each need written in ``q`` for its intended technologies written in ``t``; the
copies of those intended technologies in the other language are left out of that query's pool
(``exclude``), so a hit is the answer in language ``t``, never its translation.

Metrics per direction: Recall@1 (the need's main intended technology, grade 2, ranked first),
Recall@10 (all intended technologies, grades 1–2) and nDCG@10 (graded). Two rankings are
scored: ``engine`` (what ``matcher match --need`` returns: candidates, features, weights) and
``dense`` (the dense channel alone, ordered by the semantic score the ranking reads).
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cache import OUT, bench_cache
from benchmarks.metrics import ndcg_at, recall_at
from matcher.config import REPO_DATA_DIR, Settings
from matcher.domain import NeedIn, TechnologyIn
from matcher.embed import Encoder, content_hash, embed_cached, get_encoder
from matcher.engine import Engine
from matcher.retrieve.crosslingual import dense_order
from matcher.retrieve.hybrid import hybrid_candidates
from matcher.store import repo

LANGUAGES = ("en", "zh")
DIRECTIONS = (("zh", "en"), ("en", "zh"), ("en", "en"), ("zh", "zh"))
MINILM, E5, USE = "all-MiniLM-L6-v2", "multilingual-e5-small", "use-multilingual-v3"

# name → (primary model, multilingual model or None, language calibration)
SYSTEMS: dict[str, tuple[str, str | None, bool]] = {
    "minilm": (MINILM, None, False),
    "e5": (E5, None, False),
    "e5+cal": (E5, E5, True),
    "use": (USE, None, False),
    "use+cal": (USE, USE, True),
    "minilm|e5": (MINILM, E5, False),
    "minilm|e5+cal": (MINILM, E5, True),
    "minilm|use": (MINILM, USE, False),
    "minilm|use+cal": (MINILM, USE, True),
}
DEFAULT_SYSTEMS = tuple(SYSTEMS)


@dataclass
class Bilingual:
    """Both language versions of the demo records and the intended answers.

    ``technologies[lang][demo id]`` and ``needs[lang][demo id]`` are import-ready records.
    """

    technologies: dict[str, dict[str, dict[str, Any]]]
    needs: dict[str, dict[str, dict[str, Any]]]
    intended: dict[str, dict[str, int]]

    def ref(self, demo_id: str, language: str) -> str:
        """The stored reference of one language version (the English one keeps the demo id)."""
        return demo_id if language == "en" else f"{demo_id}.{language}"

    def queries(self, source: str, target: str) -> list[str]:
        """Needs that exist in ``source`` whose intended technologies all exist in ``target``."""
        return [
            n
            for n, answers in self.intended.items()
            if n in self.needs[source] and all(t in self.technologies[target] for t in answers)
        ]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _versions(directory: Path, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Each record in each language: the shipped one, plus the parallel texts over its fields."""
    shipped = {r["id"]: r for r in _jsonl(directory / f"{kind}.jsonl")}
    out: dict[str, dict[str, dict[str, Any]]] = {lang: {} for lang in LANGUAGES}
    for demo_id, record in shipped.items():
        out[record.get("language") or "en"][demo_id] = record
    for lang in LANGUAGES:
        for path in sorted((directory / "parallel").glob(f"{kind}.{lang}*.jsonl")):
            for text in _jsonl(path):
                out[lang][text["id"]] = {**shipped[text["id"]], **text, "language": lang}
    return out


def load_bilingual(
    data_dir: Path = REPO_DATA_DIR,
    *,
    max_needs: int | None = None,
    distractors: int | None = None,
) -> Bilingual:
    """Read the demo set in both languages.

    Args:
        max_needs: keep the first N needs with intended answers (smoke runs).
        distractors: keep only this many technologies besides the kept needs' intended ones.
    """
    directory = Path(data_dir) / "demo"
    intended: dict[str, dict[str, int]] = {}
    with (directory / "intended.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            intended.setdefault(row["need_id"], {})[row["technology_id"]] = int(row["grade"])
    if max_needs is not None:
        intended = dict(list(intended.items())[:max_needs])
    technologies = _versions(directory, "technologies")
    needs = _versions(directory, "needs")
    if distractors is not None:
        wanted = {t for answers in intended.values() for t in answers}
        others = [t for t in technologies["en"] if t not in wanted][:distractors]
        keep = wanted | set(others)
        technologies = {
            lang: {i: r for i, r in recs.items() if i in keep}
            for lang, recs in technologies.items()
        }
    needs = {lang: {i: r for i, r in recs.items() if i in intended} for lang, recs in needs.items()}
    return Bilingual(technologies, needs, intended)


def _records(data: Bilingual) -> tuple[list[TechnologyIn], list[NeedIn]]:
    techs = [
        TechnologyIn(**{**record, "id": data.ref(i, lang), "language": lang})
        for lang in LANGUAGES
        for i, record in data.technologies[lang].items()
    ]
    needs = [
        NeedIn(**{**record, "id": data.ref(i, lang), "language": lang})
        for lang in LANGUAGES
        for i, record in data.needs[lang].items()
    ]
    return techs, needs


def prefill(engine: Engine, encoders: Sequence[Encoder], texts: Sequence[str]) -> None:
    """Put every text's vectors into the engine's cache from the benchmark cache (paid once)."""
    for encoder in encoders:
        vectors = embed_cached(encoder, texts, bench_cache(), progress=False)
        engine.cache.put_many(
            encoder.name, {content_hash(t): v for t, v in zip(texts, vectors, strict=True)}
        )


def _dense_only(engine: Engine, need: Any, k: int, exclude: frozenset[int]) -> list[int]:
    """Technology ids by the dense channel alone (the semantic score the ranking reads)."""
    vector = engine.indexes["needs"].index.vector(need.id)
    return dense_ranking(engine, need, repo.need_text(need), vector, k, exclude)


def dense_ranking(
    engine: Engine,
    query: Any,
    text: str,
    vector: np.ndarray,
    k: int,
    exclude: frozenset[int] = frozenset(),
    *,
    language: str | None = None,
) -> list[int]:
    """Technology ids for a query (a stored need, or free text with its primary-model vector)
    by the dense channel alone, ordered by the semantic score the ranking reads."""
    crosslingual = engine.matcher.crosslingual_query(query, text, vector, "technologies", language)
    if crosslingual is not None:
        hits, _ = dense_order(
            space=crosslingual[0],
            query=crosslingual[1],
            primary=engine.indexes["technologies"].index,
            k=k,
            exclude=exclude,
        )
        return [i for i, _ in hits][:k]
    candidates = hybrid_candidates(
        query_vector=vector,
        query_text="",
        dense=engine.indexes["technologies"].index,
        lexical=None,
        k=k,
        exclude=exclude,
    )
    return [c.id for c in sorted(candidates, key=lambda c: -c.semantic)][:k]


def score(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """R@1 (a grade-2 answer first), R@10 (every graded answer) and nDCG@10 of each query's
    ranked ids, averaged."""
    rows = []
    for need, order in rankings.items():
        rels = qrels[need]
        main = {d for d, g in rels.items() if g == 2}
        rows.append(
            (
                float(bool(order) and order[0] in main),
                recall_at(order, rels, 10),
                ndcg_at(order, rels, 10),
            )
        )
    if not rows:
        return {"recall@1": 0.0, "recall@10": 0.0, "ndcg@10": 0.0, "queries": 0}
    a = np.asarray(rows)
    return {
        "recall@1": round(float(a[:, 0].mean()), 4),
        "recall@10": round(float(a[:, 1].mean()), 4),
        "ndcg@10": round(float(a[:, 2].mean()), 4),
        "queries": len(rows),
    }


def run_system(data: Bilingual, name: str, *, encoders: dict[str, Encoder]) -> dict[str, Any]:
    """Store the pool in a scratch engine configured as ``name`` and score every direction."""
    primary_name, multilingual_name, calibrate = SYSTEMS[name]
    primary = encoders[primary_name]
    multilingual = encoders[multilingual_name] if multilingual_name else None
    techs, needs = _records(data)
    texts = [repo.technology_text(t) for t in techs] + [repo.need_text(n) for n in needs]
    out: dict[str, Any] = {
        "primary": primary.name,
        "multilingual": multilingual.name if multilingual else None,
        "calibration": calibrate,
    }
    with tempfile.TemporaryDirectory(prefix="techmatch-bilingual-") as home:
        settings = Settings(
            home=Path(home),
            progress=False,
            multilingual_model=multilingual.name if multilingual else "off",
            language_calibration=calibrate,
        )
        engine = Engine(settings, encoder=primary, multilingual_encoder=multilingual)
        try:
            prefill(engine, [e for e in (primary, multilingual) if e is not None], texts)
            engine.save_records("technologies", techs)
            engine.save_records("needs", needs)
            ids = {r.ref: r.id for r in engine.view("technologies").rows.values()}
            refs = {v: k for k, v in ids.items()}
            with engine.sessions() as session:  # whole rows: the view keeps no descriptions
                need_rows = {r.ref: r for r in repo.active_needs(session)}
            timings: list[float] = []
            for source, target in DIRECTIONS:
                queries = data.queries(source, target)
                qrels = {
                    n: {data.ref(t, target): g for t, g in data.intended[n].items()}
                    for n in queries
                }
                engine_runs: dict[str, list[str]] = {}
                dense_runs: dict[str, list[str]] = {}
                for need_id in queries:
                    copies = [
                        data.ref(t, lang)
                        for t in data.intended[need_id]
                        for lang in LANGUAGES
                        if lang != target
                    ]
                    exclude = frozenset(ids[r] for r in copies if r in ids)
                    ref = data.ref(need_id, source)
                    t0 = time.perf_counter()
                    matches = engine.match_need(ref, top=10, persist=False, exclude=exclude)
                    timings.append((time.perf_counter() - t0) * 1000)
                    engine_runs[need_id] = [m.technology_ref or "" for m in matches]
                    need = need_rows[ref]
                    dense_runs[need_id] = [refs[i] for i in _dense_only(engine, need, 10, exclude)]
                key = f"{source}->{target}"
                out[key] = {
                    "engine": score(engine_runs, qrels),
                    "dense": score(dense_runs, qrels),
                }
            out["match_ms_p50"] = round(float(np.percentile(timings, 50)), 2)
            # Free text over the mixed pool: the need texts as queries, embedded per query.
            for lang in LANGUAGES:
                texts = [repo.need_text(need_rows[data.ref(n, lang)]) for n in data.needs[lang]]
                engine.match_text(texts[0], top=10)  # warm-up
                samples = []
                for text in texts:
                    t0 = time.perf_counter()
                    engine.match_text(text, top=10)
                    samples.append((time.perf_counter() - t0) * 1000)
                out[f"text_{lang}_ms"] = {
                    "p50": round(float(np.percentile(samples, 50)), 2),
                    "p95": round(float(np.percentile(samples, 95)), 2),
                }
            out["verify_ok"] = all(index.verify().ok for index in engine.indexes.values())
        finally:
            engine.close()
    return out


def run_bilingual(
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    *,
    data_dir: Path = REPO_DATA_DIR,
    max_needs: int | None = None,
    distractors: int | None = None,
    models_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark for each system and return the report (see ``--json``)."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(
            f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}"
        )
    data = load_bilingual(data_dir, max_needs=max_needs, distractors=distractors)
    models_dir = models_dir or OUT / "models"  # the ONNX export of the primary model
    needed = {m for s in systems for m in SYSTEMS[s][:2] if m}
    encoders = {m: get_encoder(m, backend="onnx", cache_dir=models_dir) for m in sorted(needed)}
    report: dict[str, Any] = {
        "pool": {lang: len(data.technologies[lang]) for lang in LANGUAGES},
        "needs": {lang: len(data.needs[lang]) for lang in LANGUAGES},
        "systems": {},
    }
    for name in systems:
        t0 = time.perf_counter()
        report["systems"][name] = run_system(data, name, encoders=encoders)
        report["systems"][name]["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def table(report: dict[str, Any], ranking: str = "engine") -> str:
    """One Markdown table per ranking: a row per system, R@1 / R@10 / nDCG@10 per direction."""
    keys = [f"{s}->{t}" for s, t in DIRECTIONS]
    head = "| system | " + " | ".join(f"{k} R@1 / R@10 / nDCG@10" for k in keys) + " |"
    rule = "|---|" + "---|" * len(keys)
    rows = []
    for name, result in report["systems"].items():
        cells = []
        for k in keys:
            r = result[k][ranking]
            cells.append(f"{r['recall@1']:.3f} / {r['recall@10']:.3f} / {r['ndcg@10']:.3f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    pool = report["pool"]
    title = (
        f"{ranking}: pool {pool['en']} English + {pool['zh']} Chinese technologies, "
        f"{report['needs']['en']} needs per language"
    )
    return "\n".join([title, "", head, rule, *rows])


def timings_table(report: dict[str, Any]) -> str:
    """Per system: stored-need match p50 and free-text query p50 / p95 by query language."""
    head = "| system | stored need p50 ms | English text p50 / p95 ms | Chinese text p50 / p95 ms |"
    rows = [
        f"| {name} | {r['match_ms_p50']:.1f} | "
        + " | ".join(
            f"{r[f'text_{lg}_ms']['p50']:.1f} / {r[f'text_{lg}_ms']['p95']:.1f}" for lg in LANGUAGES
        )
        + " |"
        for name, r in report["systems"].items()
    ]
    return "\n".join([head, "|---|---|---|---|", *rows])
