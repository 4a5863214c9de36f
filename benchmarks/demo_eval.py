"""How well the engine finds the intended answers of the shipped demo needs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.metrics import evaluate
from matcher.config import Settings
from matcher.engine import Engine


def run_demo_eval(home: Path | None = None) -> dict[str, Any]:
    """Load the demo into a scratch data directory and score every demo need's matches."""
    home = home or Path(tempfile.mkdtemp(prefix="techmatch-demo-"))
    engine = Engine(Settings(home=home, progress=False))
    engine.load_demo()
    intended = engine.demo_intended()
    run = {
        need: {
            m.technology_ref or "": m.score for m in engine.match_need(need, top=100, persist=False)
        }
        for need in intended
    }
    scores = evaluate(run, intended)
    hits = {
        k: sum(
            any(ref in answers and answers[ref] == 2 for ref in list(run[n])[:k])
            for n, answers in intended.items()
        )
        / len(intended)
        for k in (1, 5, 10)
    }
    engine.close()
    return {
        "needs": len(intended),
        **{m: round(v, 4) for m, v in scores.items()},
        **{f"intended@{k}": round(v, 4) for k, v in hits.items()},
    }


if __name__ == "__main__":
    print(run_demo_eval())
