"""Brokers' feedback, simulated on the real SBIR corpora: does the learned ranker find what they
want, and after how many judged matches does it overtake the fixed weights?

Needs are SBIR topic statements (first 60 words; topic phase → the TRL the enterprise needs,
a random US state → its home region), technologies are SBIR award abstracts (phase I → TRL 4,
phase II → TRL 6, the firm's state → region). Simulated brokers have hidden preferences: a
match is worth ``relevance + near × region bonus + later phase × phase bonus``, where relevance
is the cosine of the *full* topic text with the abstract (the engine only sees 60 words). They
see the top three matches of each need as the engine ranks them (the fixed weights until a
learned ranker is promoted), accept or decline them (with a reason code), and some accepted
matches become deals that are agreed or lost. Everything goes through the real store, the real
``matcher ranker`` training (``--from-feedback``) and promotion.

Ground truth for nDCG@10: each evaluation need's candidates graded by their hidden worth
(3 for the best three, 2 for the next seven, 1 for the next ten).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from benchmarks.cache import OUT, embed
from benchmarks.e2e import award_record, suggest_domains
from benchmarks.speed import SHARED, award_text
from matcher.config import Settings
from matcher.domain import BrokerIn, NeedIn
from matcher.embed import Encoder, get_encoder
from matcher.engine import Engine
from matcher.rank.features import fixed_scores
from matcher.rank.learned import lifecycle as learn
from matcher.rank.learned.model import K, LabelledSet, ideal_dcg, mean_ndcg
from matcher.rank.learned.registry import RankerError, store_for
from matcher.store import repo
from matcher.store.db import transaction
from matcher.store.models import BrokerRow, DealRow, FeedbackRow, RoutedMatchRow
from matcher.store.repo.routing import routed_row, routed_technologies


@dataclass(frozen=True)
class Preferences:
    """What the simulated brokers want beyond relevance (hidden from the engine)."""

    region_bonus: float = 1.0  # same state as the enterprise (half of it within 800 km)
    phase_bonus: float = 0.7  # a phase II award (TRL 6) rather than phase I (TRL 4)
    temperature: float = 0.35  # how noisy a broker's verdict is


@dataclass(frozen=True)
class SimPool:
    """A simulated need's candidates as serving ranks them, and their hidden worth."""

    ids: list[int]
    matrix: np.ndarray
    worth: np.ndarray  # what the simulated brokers value (relevance plus preferences)


def _jsonl(name: str) -> list[dict[str, Any]]:
    with (SHARED / "sbir-corpora" / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def load_data(
    n_needs: int, n_awards: int, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A seeded sample of topics (needs) and awards (technologies) with a known US state."""
    rng = np.random.default_rng(seed)
    topics = [
        t
        for t in _jsonl("topics_demand.jsonl")
        if len((t.get("title") or "").strip()) >= 5 and len((t.get("text") or "").split()) >= 40
    ]
    awards = [a for a in _jsonl("awards_supply.jsonl") if a.get("state")]
    picked_topics = [topics[i] for i in sorted(rng.choice(len(topics), n_needs, replace=False))]
    picked_awards = [awards[i] for i in sorted(rng.choice(len(awards), n_awards, replace=False))]
    return picked_topics, picked_awards


def short_text(topic: dict[str, Any]) -> str:
    """What an enterprise types: the topic's first 60 words."""
    return " ".join(f"{topic['title']}. {topic['text']}".split()[:60])


def build(
    topics: list[dict[str, Any]], awards: list[dict[str, Any]], encoder: Encoder, seed: int
) -> Engine:
    """A fresh engine whose store holds the awards as technologies and the topics as needs."""
    from matcher.embed import content_hash

    home = OUT / "feedback-sim-home"
    shutil.rmtree(home, ignore_errors=True)
    # English records only: the multilingual channel would add nothing but encoding time.
    settings = Settings(home=home, progress=False, multilingual_model="off")
    engine = Engine(settings, encoder=encoder)
    tax = engine.taxonomy
    award_texts = [award_text(a) for a in awards]
    titles = [" ".join(t["title"].split())[:120] for t in topics]
    need_texts = [f"{title}. {short_text(t)}" for title, t in zip(titles, topics, strict=True)]
    vectors = {"award": embed(encoder, award_texts), "need": embed(encoder, need_texts)}
    # Hand the cached vectors to the engine's own cache: storing the records embeds nothing.
    engine.cache.put_many(
        encoder.name,
        {
            content_hash(t): v
            for texts, key in ((award_texts, "award"), (need_texts, "need"))
            for t, v in zip(texts, vectors[key], strict=True)
        },
    )
    award_domains = suggest_domains(vectors["award"], tax, encoder)
    technologies = [award_record(a, d, tax) for a, d in zip(awards, award_domains, strict=True)]
    states = [t.region for t in technologies if t.region != "US"]
    rng = np.random.default_rng(seed)
    need_domains = suggest_domains(vectors["need"], tax, encoder)
    needs = [
        NeedIn(
            id=f"sim-{t['_id']}",
            enterprise="simulated enterprise",
            title=title,
            description=short_text(t),
            domains=[d],
            # A phase I topic asks for a feasibility result, a phase II one for a prototype.
            trl_min=3 if t.get("phase", "Phase I") == "Phase I" else 5,
            region_scope="national",
            home_region=str(rng.choice(states)),
        )
        for t, title, d in zip(topics, titles, need_domains, strict=True)
    ]
    brokers = [
        BrokerIn(
            id=f"SB-{i}",
            name=f"simulated broker {i}",
            certificate_no=f"SIM-{i:04d}",
            level="advanced",
            valid_until=date(2099, 12, 31),
            domains=[],
            regions=["US"],
        )
        for i in range(5)
    ]
    engine.save_records("brokers", brokers)
    engine.save_records("technologies", technologies)
    engine.save_records("needs", needs)
    return engine


class World:
    """The hidden side: every need's candidates, their worth, and the brokers' verdicts."""

    def __init__(
        self,
        engine: Engine,
        topics: list[dict[str, Any]],
        encoder: Encoder,
        prefs: Preferences,
        seed: int,
    ) -> None:
        self.engine, self.prefs = engine, prefs
        self.rng = np.random.default_rng(seed)
        full = embed(encoder, [f"{t['title']}. {t['text']}" for t in topics], progress=False)
        with engine.sessions() as session:
            needs = {n.ref: n for n in repo.active_needs(session)}
        view = engine.view("technologies")
        tax = engine.taxonomy
        index = engine.indexes["technologies"].index
        self.needs: list[int] = []
        self.pools: dict[int, SimPool] = {}
        for topic, vector in zip(topics, full, strict=True):
            need = needs[f"sim-{topic['_id']}"]
            table = engine.need_features(need.id)
            if len(table.ids) < 20:
                continue
            relevance = np.array([float(index.vector(i) @ vector) for i in table.ids])
            relevance = (relevance - relevance.mean()) / (relevance.std() + 1e-9)
            near = []
            for tech_id in table.ids:
                where = view.rows[tech_id].region
                km = tax.distance_km(need.home_region, where)
                same = where == need.home_region
                near.append(1.0 if same else 0.5 if km is not None and km <= 800 else 0.0)
            later = np.array([view.rows[i].trl >= 6 for i in table.ids], dtype=np.float64)
            worth = relevance + prefs.region_bonus * np.array(near) + prefs.phase_bonus * later
            self.needs.append(need.id)
            self.pools[need.id] = SimPool(table.ids, table.matrix, worth)

    def truth(self, need_id: int) -> np.ndarray:
        """Graded hidden worth of a need's candidates: 3 / 2 / 1 for ranks 1-3 / 4-10 / 11-20."""
        worth = self.pools[need_id].worth
        order = np.argsort(-worth, kind="stable")
        grades = np.zeros(len(worth))
        grades[order[:3]], grades[order[3:10]], grades[order[10:20]] = 3, 2, 1
        return grades

    def labelled(self, need_ids: list[int]) -> LabelledSet:
        """Evaluation needs as a labelled set against the hidden-preference ground truth."""
        matrices, grades, sizes, ideal = [], [], [], []
        for need_id in need_ids:
            g = self.truth(need_id)
            matrices.append(self.pools[need_id].matrix)
            grades.append(g)
            sizes.append(len(g))
            ideal.append(ideal_dcg(g.tolist()))
        return LabelledSet(
            np.concatenate(matrices),
            np.concatenate(grades),
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            np.asarray(ideal),
            [str(n) for n in need_ids],
        )

    def judge(self, need_id: int, tech_id: int) -> tuple[bool, str | None]:
        """A broker's verdict on one routed match: accept, or decline with a reason code."""
        ids, worth = self.pools[need_id].ids, self.pools[need_id].worth
        i = ids.index(tech_id)
        # The bar is the worth of the need's tenth best candidate: better ones are usually taken.
        bar = np.sort(worth)[-K]
        accept = self.rng.random() < 1.0 / (
            1.0 + np.exp(-(worth[i] - bar) / self.prefs.temperature)
        )
        if accept:
            return True, None
        row = self.engine.view("technologies").rows[tech_id]
        if row.trl < 6 and self.rng.random() < 0.5:
            return False, "trl_mismatch"
        return False, "region_mismatch" if self.rng.random() < 0.5 else "not_relevant"


def feedback_round(world: World, need_ids: list[int], broker_ids: list[int]) -> int:
    """Route each need's top three (as the engine ranks now) and record the brokers' verdicts.

    A need that comes round again gets its best technologies not yet routed to it, as the
    service's router does (a pair is routed once).
    """
    engine, events = world.engine, 0
    need_ids = list(dict.fromkeys(need_ids))  # a small pool can wrap within one round
    with engine.sessions() as session:
        routed_before = {n: routed_technologies(session, n) for n in need_ids}
    shown = {
        need_id: engine.match_need(
            need_id, top=3, persist=False, exclude=frozenset(routed_before[need_id])
        )
        for need_id in need_ids
    }
    with transaction(engine.sessions) as session:
        for n, need_id in enumerate(need_ids):
            broker = broker_ids[n % len(broker_ids)]
            for match in shown[need_id]:
                routed = routed_row(match, need_id=need_id, broker_id=broker, reason="simulation")
                session.add(routed)
                session.flush()
                accepted, reason = world.judge(need_id, match.technology_id)
                decision = "accept" if accepted else "decline"
                session.add(
                    FeedbackRow(
                        routed_id=routed.id, broker_id=broker, decision=decision, reason_code=reason
                    )
                )
                if accepted and world.rng.random() < 0.4:  # some accepted matches become deals
                    stage = "agreed" if world.rng.random() < 0.6 else "closed_lost"
                    session.add(
                        DealRow(
                            routed_id=routed.id,
                            broker_id=broker,
                            need_id=need_id,
                            technology_id=match.technology_id,
                            stage=stage,
                        )
                    )
                events += 1
    return events


def _clear_feedback(engine: Engine) -> None:
    with transaction(engine.sessions) as session:
        for model in (DealRow, FeedbackRow, RoutedMatchRow):
            session.execute(delete(model))
    shutil.rmtree(store_for(engine.settings).root, ignore_errors=True)


def simulate(
    *,
    n_needs: int = 400,
    n_awards: int = 3000,
    eval_needs: int = 100,
    per_round: int = 10,
    checkpoints: tuple[int, ...] = (30, 60, 90, 150, 210, 300, 450, 600, 750, 900),
    repeats: int = 3,
    min_feedback: int = 200,
    prefs: Preferences | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the feedback loop ``repeats`` times; nDCG@10 of fixed and learned per checkpoint."""
    prefs = prefs or Preferences()
    encoder = get_encoder()
    started = time.perf_counter()
    topics, awards = load_data(n_needs, n_awards, seed)
    engine = build(topics, awards, encoder, seed)
    world = World(engine, topics, encoder, prefs, seed)
    setup_seconds = time.perf_counter() - started
    evaluation, training = world.needs[:eval_needs], world.needs[eval_needs:]
    test = world.labelled(evaluation)
    fixed = mean_ndcg(fixed_scores(test.matrix, engine.settings.weights), test)
    with engine.sessions() as session:
        broker_ids = list(session.scalars(select(BrokerRow.id)))
    runs = []
    for repeat in range(repeats):
        _clear_feedback(engine)
        world.rng = np.random.default_rng(seed + 1000 + repeat)
        order = list(world.rng.permutation(training))
        engine.settings.ranker_min_feedback = 0  # the curve trains at every checkpoint ...
        events, position, curve = 0, 0, []
        for target in checkpoints:
            while events < target:
                batch = [int(order[(position + j) % len(order)]) for j in range(per_round)]
                position += per_round
                events += feedback_round(world, batch, broker_ids)
            row: dict[str, Any] = {"events": events}
            try:
                trained = learn.train_from_feedback(engine, folds=3)
                row["learned"] = mean_ndcg(trained.ranker.decision(test.matrix), test)
                row["model"] = trained.meta["cross_validation"]["best"]
                # ... while what is served follows the real rules: the minimum, then promotion.
                engine.settings.ranker_min_feedback = min_feedback
                try:
                    verdict = learn.promote(engine, trained.model_id)
                    row["promoted"] = verdict.promoted
                except RankerError:
                    row["promoted"] = False
                engine.settings.ranker_min_feedback = 0
            except RankerError as exc:
                row["learned"], row["error"] = None, str(exc)
            served = store_for(engine.settings).active_id()
            if served:
                ranker = store_for(engine.settings).load(served)
                row["served"] = mean_ndcg(ranker.decision(test.matrix), test)
            else:
                row["served"] = fixed
            curve.append(row)
            print(
                f"  repeat {repeat + 1}: {events} events, fixed {fixed:.4f}, learned "
                f"{row['learned'] if row['learned'] is None else round(row['learned'], 4)}, "
                f"served {row['served']:.4f}",
                flush=True,
            )
        runs.append(curve)
    return _summary(runs, fixed, prefs, len(world.needs), eval_needs, n_awards, setup_seconds)


def _summary(
    runs: list[list[dict[str, Any]]],
    fixed: float,
    prefs: Preferences,
    needs: int,
    eval_needs: int,
    n_awards: int,
    setup_seconds: float,
) -> dict[str, Any]:
    points = []
    for k in range(len(runs[0])):
        learned = [r[k]["learned"] for r in runs if r[k].get("learned") is not None]
        points.append(
            {
                "events": int(np.mean([r[k]["events"] for r in runs])),
                "learned_ndcg@10": round(float(np.mean(learned)), 4) if learned else None,
                "learned_min": round(float(np.min(learned)), 4) if learned else None,
                "learned_max": round(float(np.max(learned)), 4) if learned else None,
                "served_ndcg@10": round(float(np.mean([r[k]["served"] for r in runs])), 4),
                "promoted_runs": sum(bool(r[k].get("promoted")) for r in runs),
            }
        )
    crossover = crossover_events(points, fixed)
    return {
        "needs": needs,
        "evaluation_needs": eval_needs,
        "technologies": n_awards,
        "repeats": len(runs),
        "preferences": prefs.__dict__,
        "fixed_ndcg@10": round(fixed, 4),
        "curve": points,
        "crossover_events": crossover,
        "setup_seconds": round(setup_seconds, 1),
    }


def crossover_events(points: list[dict[str, Any]], fixed: float) -> int | None:
    """The first checkpoint from which on the mean learned nDCG@10 stays above the fixed one."""
    found = None
    for p in points:
        above = p["learned_ndcg@10"] is not None and p["learned_ndcg@10"] > fixed
        if above and found is None:
            found = p["events"]
        elif not above:
            found = None
    return found


def plot(report: dict[str, Any], path: Any) -> None:
    """nDCG@10 against feedback events: fixed, learned (mean and range), served."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in report["curve"] if p["learned_ndcg@10"] is not None]
    x = [p["events"] for p in points]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.axhline(report["fixed_ndcg@10"], color="grey", linestyle="--", label="fixed weights")
    ax.plot(x, [p["learned_ndcg@10"] for p in points], marker="o", label="learned (mean)")
    ax.fill_between(
        x,
        [p["learned_min"] for p in points],
        [p["learned_max"] for p in points],
        alpha=0.2,
        label="learned (range over runs)",
    )
    served = [p["served_ndcg@10"] for p in points]
    ax.plot(x, served, marker=".", label="served (fixed until a model is promoted)")
    if report["crossover_events"]:
        ax.axvline(report["crossover_events"], color="green", alpha=0.4)
        ax.annotate(
            f"crossover ≈ {report['crossover_events']} events",
            (report["crossover_events"], report["fixed_ndcg@10"]),
            textcoords="offset points",
            xytext=(8, -14),
            fontsize=8,
        )
    ax.set_xlabel("brokers' feedback events (judged routed matches)")
    ax.set_ylabel("nDCG@10 vs hidden preferences")
    ax.set_title("Simulated brokers on SBIR: learned ranker vs fixed weights")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
