"""The region a need asked for: how much of each demo need's top 10 lies in its scope.

The demo (``data/demo``: 300 technologies, 80 needs — 46 national, 11 local, 23 international)
is loaded into a scratch data directory with the real models. Each need is matched (top 10,
nothing stored) under several ``scope_margin`` values (``RankWeights``: a technology outside a
local or national need's scope loses that much of its score; 0 is the ranking before issue 14
part 4). For each margin: the share of in-scope technologies in the top 10 by scope (in scope:
``matcher.rank.pair.HARD_ALLOWED``, the province or compact grouping of a local need, the
country of a national one) and the intended-answer figures (nDCG@10, intended answer
first / in the top 5 / top 10), which must hold.

    python -m benchmarks.scope [--margins 0,0.05,0.1,0.15,0.2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.metrics import evaluate
from matcher.config import Settings
from matcher.domain import Side
from matcher.engine import Engine
from matcher.rank.pair import region_feature


def measure(engine: Engine, margin: float) -> dict[str, Any]:
    """In-scope shares by scope and the intended-answer figures under one margin (the engine's
    own margin is restored afterwards)."""
    weights = engine.settings.weights
    kept, weights.scope_margin = weights.scope_margin, margin
    try:
        return _measure(engine, margin)
    finally:
        weights.scope_margin = kept


def _measure(engine: Engine, margin: float) -> dict[str, Any]:
    intended = engine.demo_intended()
    shares: dict[str, list[float]] = defaultdict(list)
    run: dict[str, dict[str, float]] = {}
    for ref in intended:
        need = engine.catalog.stored(Side.needs, ref).row
        matches = engine.match_need(ref, top=10, persist=False)
        run[ref] = {m.technology_ref or "": m.score for m in matches}
        techs = [
            engine.catalog.stored(Side.technologies, m.technology_ref or "").row for m in matches
        ]
        inside = [region_feature(need, t, engine.taxonomy).in_scope for t in techs]
        if inside:
            shares[need.region_scope].append(sum(inside) / len(inside))
    quality = evaluate(run, intended)
    hits = {
        k: sum(
            any(answers.get(ref) == 2 for ref in list(run[n])[:k])
            for n, answers in intended.items()
        )
        / len(intended)
        for k in (1, 5, 10)
    }
    return {
        "margin": margin,
        "in_scope_top10": {scope: sum(v) / len(v) for scope, v in sorted(shares.items())},
        "needs_by_scope": {scope: len(v) for scope, v in sorted(shares.items())},
        "ndcg@10": quality["ndcg@10"],
        **{f"intended@{k}": v for k, v in hits.items()},
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    scopes = list(rows[0]["in_scope_top10"])
    counts = rows[0]["needs_by_scope"]
    head = " | ".join(f"in scope, {s} ({counts[s]})" for s in scopes)
    lines = [
        f"| scope_margin | {head} | nDCG@10 | intended @1 / @5 / @10 |",
        "|---:|" + "---:|" * (len(scopes) + 2),
    ]
    for r in rows:
        shares = " | ".join(f"{r['in_scope_top10'][s]:.3f}" for s in scopes)
        hits = f"{r['intended@1']:.3f} / {r['intended@5']:.3f} / {r['intended@10']:.3f}"
        lines.append(f"| {r['margin']:g} | {shares} | {r['ndcg@10']:.4f} | {hits} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scope", description=__doc__)
    parser.add_argument("--margins", default="0,0.05,0.1,0.15,0.2")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="techmatch-scope-") as home:
        engine = Engine(Settings(home=Path(home), progress=False))
        try:
            engine.load_demo()
            rows = [measure(engine, float(m)) for m in args.margins.split(",")]
        finally:
            engine.close()
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
