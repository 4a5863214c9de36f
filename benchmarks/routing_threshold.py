"""Where to put ``MATCHER_ROUTE_MIN_SCORE``: the scores of the demo needs' intended answers
against those of off-topic requests (``python -m benchmarks.routing_threshold``)."""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from matcher.config import Settings
from matcher.engine import Engine

# Requests a broker should never be sent: nothing in a technology catalogue answers them.
OFF_TOPIC = {
    "watch shop": "Buy cheap watches online best price free shipping click here now limited offer",
    "party catering (en)": "We are looking for a partner to organise our company's annual "
    "party and catering service",
    "party catering (zh)": "寻找合作伙伴组织公司年会和餐饮服务，要求价格便宜，服务周到",
    "window cleaning": "Need someone to clean our office windows every week, low price, "
    "reliable staff",
}


def measure(engine: Engine, threshold: float) -> dict[str, Any]:
    """Best intended-answer score per demo need, third-match scores, off-topic best scores."""
    best, third = [], []
    for need, answers in engine.demo_intended().items():
        matches = engine.match_need(need, top=10, persist=False)
        scores = {m.technology_ref: m.score for m in matches}
        found = [scores[t] for t, grade in answers.items() if t in scores and grade >= 2]
        if found:
            best.append(max(found))
        if len(matches) >= 3:
            third.append(matches[2].score)
    off = {name: engine.match_text(text, top=1)[0].score for name, text in OFF_TOPIC.items()}
    best.sort()
    return {
        "needs": len(best),
        "intended_lowest": round(best[0], 3),
        "intended_p5": round(best[len(best) // 20], 3),
        "intended_median": round(statistics.median(best), 3),
        "third_match_below_threshold": sum(s < threshold for s in third),
        "off_topic_best": {k: round(v, 3) for k, v in off.items()},
        "threshold": threshold,
        "intended_below_threshold": sum(s < threshold for s in best),
    }


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="techmatch-threshold-"))
    engine = Engine(Settings(home=home, progress=False))
    engine.load_demo()
    report = measure(engine, engine.routing_rules.min_score)
    engine.close()
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
