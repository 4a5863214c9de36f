"""Cross-lingual benchmark: every answer in the other language, distractors in the query's own.

The hand-written set in ``data/bench/crosslingual`` (see its README) holds 60 needs, 30 in
Chinese whose answers are English technologies and 30 in English whose answers are Chinese
ones, over 80 technologies in 10 fields. Each need's field has four technologies in the need's
own language that solve other problems of that field: they share its generic words (模块, 要求,
降低; system, module, reduce) and the field's vocabulary, which the right answer, written in the
other language, cannot share.

The set is imported into a scratch ``MATCHER_HOME`` through the real engine and import path
(``Engine.import_file``); the engine keeps its configuration (``Settings``: primary model,
multilingual model, language calibration, weights). Each need's title and description are then
matched as free text, as ``matcher match --text ... --top 10`` does (``Engine.match_text``, the
language detected from the text, no filters). Two rankings are scored per direction (zh->en,
en->zh): ``engine`` (what that command returns) and ``dense`` (the dense channel alone, ordered
by the semantic score the ranking reads). Metrics: Recall@1 (the main answer, grade 2, first),
Recall@10 (every graded answer in the top 10) and nDCG@10.

    python -m benchmarks.crosslingual [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bilingual import dense_ranking, prefill, score
from benchmarks.cache import OUT
from matcher.config import REPO_DATA_DIR, Settings
from matcher.domain import Match, NeedIn, Side, TechnologyIn
from matcher.embed import Encoder, get_encoder
from matcher.engine import Engine
from matcher.ingest import detect_language, intended_answers, read_file
from matcher.store import repo
from matcher.taxonomy import load_taxonomy

DATA = REPO_DATA_DIR / "bench" / "crosslingual"
DIRECTIONS = (("zh", "en"), ("en", "zh"))
RANKINGS = ("engine", "dense")
TOP = 10


@dataclass
class CrossLingualSet:
    """The validated records of the set and its graded answers (need → {technology: grade})."""

    directory: Path
    technologies: list[TechnologyIn]
    needs: list[NeedIn]
    qrels: dict[str, dict[str, int]]
    languages: dict[str, str]  # record id → the language it is written in

    @property
    def fields(self) -> dict[str, str]:
        """Technology id → its (first) domain code."""
        return {t.id: t.domains[0] for t in self.technologies}

    def queries(self, source: str, target: str) -> list[NeedIn]:
        """Needs written in ``source`` whose answers are all written in ``target``."""
        return [
            n
            for n in self.needs
            if self.languages[n.id] == source
            and n.id in self.qrels
            and all(self.languages[t] == target for t in self.qrels[n.id])
        ]


def load_set(directory: Path = DATA) -> CrossLingualSet:
    """Read and validate the set the way an import does; refuse it if anything is off.

    Raises:
        ValueError: a row that does not import, or a qrels id that names no record.
    """
    taxonomy = load_taxonomy(REPO_DATA_DIR)
    records: dict[str, list[Any]] = {}
    problems: list[str] = []
    for kind in ("technologies", "needs"):
        batch = read_file(directory / f"{kind}.jsonl", kind, taxonomy)
        problems += [f"{kind}.jsonl {error}" for error in batch.errors]
        records[kind] = [record for _, record in batch.records]
    qrels = intended_answers(directory / "qrels.tsv")
    techs = {t.id for t in records["technologies"]}
    needs = {n.id for n in records["needs"]}
    for need_id, answers in qrels.items():
        if need_id not in needs:
            problems.append(f"qrels.tsv: unknown need {need_id}")
        problems += [f"qrels.tsv: unknown technology {t}" for t in answers if t not in techs]
    if problems:
        raise ValueError(f"{directory}: " + "; ".join(problems))
    languages = {
        record.id: str(record.language or detect_language(repo.text_of(Side(kind), record)))
        for kind, kept in records.items()
        for record in kept
    }
    return CrossLingualSet(directory, records["technologies"], records["needs"], qrels, languages)


def default_encoders(settings: Settings) -> tuple[Encoder, Encoder]:
    """The engine's two models as configured, exported once under the benchmark folder."""
    models_dir = OUT / "models"
    backend = settings.encoder_backend
    primary = get_encoder(settings.model, backend=backend, cache_dir=models_dir)
    multilingual = get_encoder(settings.multilingual_model, backend=backend, cache_dir=models_dir)
    return primary, multilingual


def _shown(match: Match, data: CrossLingualSet) -> dict[str, Any]:
    ref = match.technology_ref or ""
    return {
        "technology": ref,
        "language": data.languages.get(ref),
        "field": data.fields.get(ref),
        "score": round(match.score, 4),
        "components": match.components.as_dict(),
        "explanation": match.explanation,
    }


def _diagnose(
    need: NeedIn, matches: list[Match], dense: list[str], data: CrossLingualSet
) -> dict[str, Any]:
    """What one need got: the top three with their features, and where its answers stand."""
    refs = [m.technology_ref or "" for m in matches]
    answers = data.qrels[need.id]
    main = next(t for t, g in answers.items() if g == 2)
    return {
        "need": need.id,
        "language": data.languages[need.id],
        "field": need.domains[0],
        "main": main,
        "engine_rank": refs.index(main) + 1 if main in refs else None,
        "dense_rank": dense.index(main) + 1 if main in dense else None,
        "engine_top": [_shown(m, data) for m in matches[:3]],
        "main_shown": next((_shown(m, data) for m in matches if m.technology_ref == main), None),
    }


def run_crosslingual(
    directory: Path = DATA,
    *,
    limit: int | None = None,
    encoders: tuple[Encoder, Encoder] | None = None,
) -> dict[str, Any]:
    """Import the set into a scratch engine, match every need as free text, score both rankings.

    Args:
        limit: only the first N needs of each direction (smoke runs); the whole pool is kept.
        encoders: (primary, multilingual) to use instead of the configured models.
    """
    data = load_set(directory)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="techmatch-crosslingual-") as home:
        settings = Settings(home=Path(home), progress=False)
        primary, multilingual = encoders or default_encoders(settings)
        engine = Engine(settings, encoder=primary, multilingual_encoder=multilingual)
        try:
            texts = [repo.technology_text(t) for t in data.technologies]
            texts += [repo.need_text(n) for n in data.needs]
            prefill(engine, [primary, multilingual], texts)
            imported = {
                kind: engine.import_file(directory / f"{kind}.jsonl", kind).created
                for kind in ("technologies", "needs")
            }
            refs = {row.id: row.ref for row in engine.view(Side.technologies).rows.values()}
            report: dict[str, Any] = {
                "data": str(directory),
                "imported": imported,
                "pool": {
                    lang: sum(data.languages[t.id] == lang for t in data.technologies)
                    for lang in ("en", "zh")
                },
                "primary": primary.name,
                "multilingual": multilingual.name,
                "calibration": settings.language_calibration,
                "directions": {},
                "needs": [],
            }
            for source, target in DIRECTIONS:
                queries = data.queries(source, target)[:limit]
                report["directions"][f"{source}->{target}"] = _run_direction(
                    engine, data, queries, refs, report["needs"]
                )
        finally:
            engine.close()
    report["diagnosis"] = diagnosis(report["needs"])
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _run_direction(
    engine: Engine,
    data: CrossLingualSet,
    queries: Sequence[NeedIn],
    refs: dict[int, str],
    diagnosed: list[dict[str, Any]],
) -> dict[str, dict[str, float]]:
    """Match each need's text both ways and score them; each need's details go to ``diagnosed``."""
    runs: dict[str, dict[str, list[str]]] = {r: {} for r in RANKINGS}
    for need in queries:
        text = repo.need_text(need)
        lang = detect_language(text)
        # What `matcher match --text TEXT --top 10` asks of the engine.
        matches = engine.match_text(text, top=TOP, lang=lang)
        dense = dense_ranking(engine, None, text, engine.embed_query(text), TOP, language=lang)
        runs["engine"][need.id] = [m.technology_ref or "" for m in matches]
        runs["dense"][need.id] = [refs[i] for i in dense]
        diagnosed.append(_diagnose(need, matches, runs["dense"][need.id], data))
    qrels = {n.id: data.qrels[n.id] for n in queries}
    return {r: score(runs[r], qrels) for r in RANKINGS}


def _mean(shown: list[dict[str, Any]], component: str) -> float:
    if not shown:
        return 0.0
    return round(sum(s["components"][component] for s in shown) / len(shown), 3)


def diagnosis(needs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per direction: how often the engine's first result is in the need's own language, and
    the mean features of a wrong first result against those of the main answer."""
    out: dict[str, dict[str, Any]] = {}
    for source, target in DIRECTIONS:
        rows = [n for n in needs if n["language"] == source]
        wrong = [n for n in rows if n["engine_rank"] != 1]
        shown = [n for n in wrong if n["main_shown"] is not None]
        tops = [n["engine_top"][0] for n in wrong if n["engine_top"]]
        answers = [n["main_shown"] for n in shown]
        out[f"{source}->{target}"] = {
            "needs": len(rows),
            "first_in_own_language": sum(
                bool(n["engine_top"]) and n["engine_top"][0]["language"] == source for n in rows
            ),
            "wrong_first_same_field": sum(
                bool(n["engine_top"]) and n["engine_top"][0]["field"] == n["field"] for n in wrong
            ),
            "wrong_first": len(wrong),
            "wrong_first_features": {c: _mean(tops, c) for c in ("semantic", "lexical")},
            "main_answer_features": {c: _mean(answers, c) for c in ("semantic", "lexical")},
            "main_answer_shown": len(shown),
        }
    return out


def table(report: dict[str, Any]) -> str:
    """A Markdown table: a row per ranking, R@1 / R@10 / nDCG@10 per direction."""
    keys = [f"{s}->{t}" for s, t in DIRECTIONS]
    head = "| ranking | " + " | ".join(f"{k} R@1 / R@10 / nDCG@10" for k in keys) + " |"
    rows = [head, "|---|" + "---|" * len(keys)]
    for ranking in RANKINGS:
        cells = []
        for key in keys:
            r = report["directions"][key][ranking]
            cells.append(f"{r['recall@1']:.3f} / {r['recall@10']:.3f} / {r['ndcg@10']:.3f}")
        rows.append(f"| {ranking} | " + " | ".join(cells) + " |")
    queries = ", ".join(f"{k} {report['directions'][k]['engine']['queries']}" for k in keys)
    pool = report["pool"]
    title = (
        f"Cross-lingual set: {pool['en']} English + {pool['zh']} Chinese technologies; "
        f"needs {queries}; {report['primary']} | {report['multilingual']}"
        f"{' +cal' if report['calibration'] else ''}"
    )
    return "\n".join([title, "", *rows])


def diagnosis_table(report: dict[str, Any]) -> str:
    """Where the engine goes wrong: first results in the query's language, and the features of
    a wrong first result against the main answer's (semantic / lexical, means)."""
    rows = [
        "| direction | first result in the need's language | wrong first (same field) | "
        "wrong first: semantic / lexical | main answer (when shown): semantic / lexical |",
        "|---|---|---|---|---|",
    ]
    for key, d in report["diagnosis"].items():
        w, m = d["wrong_first_features"], d["main_answer_features"]
        rows.append(
            f"| {key} | {d['first_in_own_language']}/{d['needs']} | "
            f"{d['wrong_first']} ({d['wrong_first_same_field']}) | "
            f"{w['semantic']:.3f} / {w['lexical']:.3f} | "
            f"{m['semantic']:.3f} / {m['lexical']:.3f} (n={d['main_answer_shown']}) |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crosslingual", description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the set")
    parser.add_argument("--limit", type=int, help="only the first N needs per direction (smoke)")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    try:
        report = run_crosslingual(args.data, limit=args.limit)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(report))
    print()
    print(diagnosis_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
