"""End to end over the 22,887 real SBIR award abstracts: the engine by step, and txtai."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.cache import OUT, embed
from benchmarks.speed import award_text, load_awards, load_topics, percentiles, timed_over
from matcher.config import Settings
from matcher.domain import IPStatus, NeedIn, TechnologyIn
from matcher.embed import Encoder, encode_queries, get_encoder
from matcher.engine import Engine
from matcher.retrieve.hybrid import hybrid_candidates
from matcher.taxonomy import Taxonomy

PHASE_TRL = {"Phase I": 4, "Phase II": 6}  # phase is the data set's readiness proxy


def suggest_domains(vectors: np.ndarray, taxonomy: Taxonomy, encoder: Encoder) -> list[str]:
    """The sub-field whose name is nearest to each text (the awards carry no domain codes)."""
    codes = [c for c, d in taxonomy.domains.items() if d.parent is not None]
    names = encoder.encode([taxonomy.domain_path(c) for c in codes])
    return [codes[i] for i in np.argmax(vectors @ names.T, axis=1)]


def build_engine(awards: list[dict[str, Any]], encoder: Encoder) -> Engine:
    """An engine whose store holds every award as a technology (vectors from the cache)."""
    # All awards and queries are English, and an English query over English records never
    # touches the multilingual space (matcher/match.py): leaving it off spares embedding the
    # 22,887 abstracts a second time; what it skips per query (language detection) is ~0.02 ms.
    settings = Settings(home=OUT / "e2e-home", progress=True, multilingual_model="off")
    engine = Engine(settings, encoder=encoder)
    texts = [award_text(a) for a in awards]
    vectors = embed(encoder, texts)
    if len(engine.indexes["technologies"].index) == len(awards):
        return engine
    # Hand the cached vectors to the engine's own cache: the import then embeds nothing.
    from matcher.embed import content_hash

    engine.cache.put_many(
        encoder.name, {content_hash(t): v for t, v in zip(texts, vectors, strict=True)}
    )
    engine.save_records("technologies", build_records(awards, engine, vectors))
    return engine


def build_records(
    awards: list[dict[str, Any]], engine: Engine, vectors: np.ndarray | None = None
) -> list[TechnologyIn]:
    """Awards as technologies: phase as readiness, state as region, nearest sub-field as domain."""
    if vectors is None:
        vectors = engine.encoder.encode([award_text(a) for a in awards])
    domains = suggest_domains(vectors, engine.taxonomy, engine.encoder)
    return [award_record(a, d, engine.taxonomy) for a, d in zip(awards, domains, strict=True)]


def award_record(award: dict, domain: str, tax: Taxonomy) -> TechnologyIn:
    """An SBIR award as a technology: phase → TRL, state → region, the suggested domain."""
    state = f"US-{award.get('state') or ''}"
    return TechnologyIn.model_construct(
        id=award["_id"],
        title=award["title"][:300] or "untitled",
        description=award["text"],
        owner=award.get("firm") or "unknown",
        domains=[domain],
        trl=PHASE_TRL.get(award.get("phase", ""), 5),
        region=state if tax.is_region(state) else "US",
        ip_status=IPStatus.none,
        patents=[],
        cpc=[],
        keywords=[],
        language=None,
        licensing=None,
        confidential=False,
    )


def add_needs(engine: Engine, topics: Sequence[str]) -> list[str]:
    """Store topic statements as needs so that stored-need matching can be timed."""
    encoder = engine.encoder
    vectors = encoder.encode(list(topics))
    domains = suggest_domains(vectors, engine.taxonomy, encoder)
    needs = [
        NeedIn(
            id=f"bench-{i}",
            enterprise="benchmark",
            title=t[:120],
            description=t,
            domains=[d],
            trl_min=4,
            region_scope="national",
            home_region="US-VA",
        )
        for i, (t, d) in enumerate(zip(topics, domains, strict=True))
    ]
    engine.save_records("needs", needs)
    return [n.id for n in needs]


def run_end_to_end(
    *, n_queries: int, backends: Sequence[str], with_txtai: bool, corpus_backend: str = "onnx"
) -> dict[str, Any]:
    """Time free-text and stored-need matching for each query encoder, and txtai.

    The abstracts are embedded (once, then from the cache) by ``corpus_backend``; each backend
    of ``backends`` encodes the queries.
    """
    awards = load_awards()
    topics = load_topics(n_queries)
    reference = get_encoder(backend=corpus_backend)
    engine = build_engine(awards, reference)
    out: dict[str, Any] = {
        "documents": len(awards),
        "queries": len(topics),
        "corpus_encoder": reference.name,
        "engine": {},
    }
    baseline: list[list[int]] | None = None
    for backend in backends:
        encoder = get_encoder("all-MiniLM-L6-v2", backend=backend)
        result, top10 = _measure(engine, encoder, topics)
        if baseline is None:
            baseline = top10
        else:
            result["top10_overlap_vs_first"] = round(
                float(
                    np.mean(
                        [len(set(a) & set(b)) / 10 for a, b in zip(top10, baseline, strict=True)]
                    )
                ),
                4,
            )
        out["engine"][backend] = result
    engine.use_encoder(reference)
    need_ids = add_needs(engine, topics[:200])
    stored = timed_over(lambda ref: engine.match_need(ref, top=10, persist=False), need_ids)
    out["stored_need_match"] = percentiles(stored)
    if with_txtai:
        out["txtai"] = _txtai(awards, topics, reference)
    engine.close()
    return out


def _measure(
    engine: Engine, encoder: Encoder, topics: Sequence[str]
) -> tuple[dict[str, Any], list[list[int]]]:
    """Free-text query latency through one query encoder, whole and by step."""
    engine.use_encoder(encoder)  # queries through this backend; corpus vectors stay as built
    dense = engine.indexes["technologies"].index
    lexical = engine.lexical("technologies")
    # The engine embeds a query by the encoder's query path (a quantised model for some).
    vectors = [encode_queries(encoder, [t])[0] for t in topics]
    encode = timed_over(lambda t: encode_queries(encoder, [t]), list(topics))
    retrieve = timed_over(
        lambda i: hybrid_candidates(
            query_vector=vectors[i],
            query_text=topics[i],
            dense=dense,
            lexical=lexical,
            k=engine.settings.candidates,
        ),
        list(range(len(topics))),
    )
    total = timed_over(lambda t: engine.match_text(t, top=10), list(topics))
    top10 = [[m.technology_id for m in engine.match_text(t, top=10)] for t in topics]
    return {
        "free_text_query": percentiles(total),
        "encode": percentiles(encode),
        "retrieve": percentiles(retrieve),
        "top10_overlap_vs_first": None,
    }, top10


def _txtai(awards: list[dict[str, Any]], topics: Sequence[str], encoder: Encoder) -> dict[str, Any]:
    """txtai with the same model: corpus vectors handed over, queries encoded by txtai's model."""
    from txtai import Embeddings

    from matcher.embed import PACKAGED_MODELS

    texts = [award_text(a) for a in awards]
    cached = dict(zip(texts, embed(encoder, texts, progress=False), strict=True))
    model = Embeddings({"path": PACKAGED_MODELS["all-MiniLM-L6-v2"](), "content": False})
    model.index([(0, "warm up", None)])  # loads the model once

    def transform(batch: list[str]) -> np.ndarray:
        if all(t in cached for t in batch):
            return np.stack([cached[t] for t in batch])
        return model.batchtransform(batch)

    db = Embeddings(
        {"transform": transform, "method": "external", "backend": "faiss", "content": False}
    )
    t0 = time.perf_counter()
    db.index([(i, t, None) for i, t in enumerate(texts)])
    build_from_vectors = time.perf_counter() - t0
    latency = timed_over(lambda t: db.search(t, 10), list(topics))
    return {
        "free_text_query": percentiles(latency),
        "index_build_from_cached_vectors_s": round(build_from_vectors, 2),
        "components": db.config.get("build", {}).get("settings", {}),
    }
