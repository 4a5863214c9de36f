"""Multilingual encoders and cross-lingual matching (Chinese <-> English) with the real models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matcher.config import REPO_DATA_DIR
from matcher.domain import NeedIn, TechnologyIn
from matcher.embed import Encoder, encode_queries, get_encoder
from matcher.engine import Engine
from matcher.index import FlatIndex
from matcher.retrieve.crosslingual import CrossLingualQuery, LanguageSpace, needs_multilingual, scan
from matcher.retrieve.hybrid import hybrid_candidates
from tests.catalogue import NEEDS, TECHNOLOGIES
from tests.conftest import make_settings

DEMO = REPO_DATA_DIR / "demo"
# Demo needs whose intended technology is searched across the language line (first six).
NEED_IDS = ("N-001", "N-002", "N-003", "N-004", "N-005", "N-006")
DISTRACTORS = 40


@pytest.mark.parametrize(("fixture", "dim"), [("e5_encoder", 384), ("use_encoder", 512)])
def test_multilingual_encoders_return_unit_vectors(
    request: pytest.FixtureRequest, fixture: str, dim: int
) -> None:
    encoder: Encoder = request.getfixturevalue(fixture)
    texts = ["海上平台钢结构的长效防腐涂料", "Long-life anti-corrosion paint for offshore steel"]
    for vectors in (encoder.encode(texts), encode_queries(encoder, texts)):
        assert vectors.shape == (2, dim) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, dim)
    assert get_encoder(encoder.name) is encoder  # found by model name, loaded once
    # The translation is closer than an unrelated text.
    other = encoder.encode(["Deep-learning defect detection for printed circuit boards"])[0]
    docs = encoder.encode(texts)
    assert float(docs[0] @ docs[1]) > float(docs[0] @ other)


def test_query_path_falls_back_to_encode(encoder: Encoder) -> None:
    text = ["anti-corrosion coating for offshore steel"]
    assert not hasattr(encoder, "encode_query")
    assert np.array_equal(encode_queries(encoder, text), encoder.encode(text))


def test_calibration_maps_each_language_onto_the_reference_scale() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    vectors[30:] += 2.0 * np.eye(8, dtype=np.float32)[0]  # "zh" documents sit apart
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FlatIndex(8)
    index.add(np.arange(60, dtype=np.int64), vectors)
    languages = {i: "en" if i < 30 else "zh" for i in range(60)}
    space = LanguageSpace.build(languages, index, None)
    query = vectors[35] + 0.1
    query /= np.linalg.norm(query)
    raw = scan(space, CrossLingualQuery("zh", query, None, calibrate=False))
    fixed = scan(space, CrossLingualQuery("zh", query, None, calibrate=True))
    zh_mean, zh_std = float(raw["zh"][1].mean()), float(raw["zh"][1].std())
    assert abs(float(raw["en"][1].mean()) - zh_mean) > 0.2  # the bias the correction removes
    assert fixed["en"][1].mean() == pytest.approx(zh_mean, abs=1e-5)
    assert fixed["en"][1].std() == pytest.approx(zh_std, abs=1e-5)
    assert np.allclose(fixed["zh"][1], raw["zh"][1], atol=1e-6)  # the reference is unchanged
    assert needs_multilingual("zh", ["en"]) and needs_multilingual("en", ["en", "zh"])
    assert not needs_multilingual("en", ["en"])


# -- through the engine ------------------------------------------------------------------------
def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _both_languages(kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every demo record in English and in Chinese (shipped record + parallel texts)."""
    shipped = {r["id"]: r for r in _jsonl(DEMO / f"{kind}.jsonl")}
    out: dict[str, dict[str, dict[str, Any]]] = {"en": {}, "zh": {}}
    for demo_id, record in shipped.items():
        out[record["language"]][demo_id] = record
    for lang in out:
        for path in sorted((DEMO / "parallel").glob(f"{kind}.{lang}*.jsonl")):
            for text in _jsonl(path):
                out[lang][text["id"]] = {**shipped[text["id"]], **text, "language": lang}
    return out


def _ref(demo_id: str, lang: str) -> str:
    return demo_id if lang == "en" else f"{demo_id}.zh"


@pytest.fixture(scope="module")
def intended() -> dict[str, str]:
    rows = [line.split("\t") for line in (DEMO / "intended.tsv").read_text().splitlines()[1:]]
    return {n: t for n, t, g in rows if g == "2" and n in NEED_IDS}


@pytest.fixture(scope="module")
def bilingual_engine(
    tmp_path_factory: pytest.TempPathFactory, encoder: Encoder, intended: dict[str, str]
) -> Iterator[Engine]:
    """Six demo needs and their intended technologies, each in both languages, among 40 other
    technologies in both languages where a translation exists."""
    techs, needs = _both_languages("technologies"), _both_languages("needs")
    chosen = list(intended.values()) + [t for t in techs["zh"] if t not in intended.values()]
    chosen = chosen[: len(intended) + DISTRACTORS]
    engine = Engine(make_settings(tmp_path_factory.mktemp("bilingual")), encoder=encoder)
    engine.save_records(
        "technologies",
        [
            TechnologyIn(**{**techs[lang][t], "id": _ref(t, lang), "language": lang})
            for lang in ("en", "zh")
            for t in chosen
        ],
    )
    engine.save_records(
        "needs",
        [
            NeedIn(**{**needs[lang][n], "id": _ref(n, lang), "language": lang})
            for lang in ("en", "zh")
            for n in NEED_IDS
        ],
    )
    yield engine
    engine.close()


@pytest.mark.parametrize(("source", "target"), [("zh", "en"), ("en", "zh")])
def test_need_finds_its_intended_technology_in_the_other_language(
    bilingual_engine: Engine, intended: dict[str, str], source: str, target: str
) -> None:
    ids = {r.ref: r.id for r in bilingual_engine.view("technologies").rows.values()}
    ranks = {}
    for need, tech in intended.items():
        # The same-language copy of the answer is left out: only its translation can be found.
        exclude = frozenset({ids[_ref(tech, source)]})
        found = [
            m.technology_ref
            for m in bilingual_engine.match_need(
                _ref(need, source), top=10, persist=False, exclude=exclude
            )
        ]
        ranks[need] = found.index(_ref(tech, target)) + 1 if _ref(tech, target) in found else None
    assert all(r is not None and r <= 5 for r in ranks.values()), ranks
    assert sum(r == 1 for r in ranks.values()) >= len(ranks) - 2, ranks


def test_cross_language_semantic_is_the_calibrated_score(bilingual_engine: Engine) -> None:
    text = "A long-life protective coating against seawater corrosion of offshore steel"
    engine = bilingual_engine
    vector = engine.embed_query(text)
    crosslingual = engine.matcher.crosslingual_query(object(), text, vector, "technologies")
    assert crosslingual is not None
    space, query = crosslingual
    assert query.language == "en" and query.uses_primary and query.calibrate
    candidates = hybrid_candidates(
        query_vector=vector,
        query_text=text,
        dense=engine.indexes["technologies"].index,
        lexical=engine.lexical("technologies"),
        k=20,
        crosslingual=crosslingual,
    )
    rows = engine.view("technologies").rows
    multilingual = engine.multilingual_indexes["technologies"].index
    zh = [c for c in candidates if rows[c.id].language == "zh"]
    en = [c for c in candidates if rows[c.id].language == "en"]
    assert zh and en
    # English pairs: the primary model's cosine; Chinese documents: the multilingual score moved
    # onto the primary model's scale for this query (the raw one is systematically different).
    for cand in en:
        expected = float(engine.indexes["technologies"].index.vector(cand.id) @ vector)
        assert cand.semantic == pytest.approx(expected, abs=1e-5)
    raw = np.array([float(multilingual.vector(c.id) @ query.vector) for c in zh])
    calibrated = np.array([c.semantic for c in zh])
    assert not np.allclose(raw, calibrated, atol=1e-3)
    group = space.groups["zh"]
    scores = group.vectors @ query.vector
    assert space.primary_sample is not None
    reference = space.primary_sample @ vector
    expected = reference.mean() + (raw - scores.mean()) / scores.std() * reference.std()
    assert np.allclose(calibrated, expected, atol=1e-4)


def test_english_query_over_english_records_skips_the_multilingual_space(
    tmp_path: Path, encoder: Encoder, use_encoder: Encoder
) -> None:
    calls: list[int] = []

    class Counting:
        name, dim = use_encoder.name, use_encoder.dim

        def encode(self, texts: Any, *, progress: bool = False) -> np.ndarray:
            return use_encoder.encode(texts)

        def encode_query(self, texts: Any) -> np.ndarray:
            calls.append(len(texts))
            return use_encoder.encode(texts)

    engine = Engine(
        make_settings(tmp_path / "home"), encoder=encoder, multilingual_encoder=Counting()
    )
    try:
        engine.save_records("technologies", [TechnologyIn(**t) for t in TECHNOLOGIES])
        engine.save_records("needs", [NeedIn(**n) for n in NEEDS])
        assert engine.match_text("offshore steel corrosion protection", top=3)
        assert calls == []  # English over English: the primary model alone
        found = engine.match_text("海上钢结构防腐涂料", top=3)
        assert calls == [1] and found[0].technology_ref == "T-2"
    finally:
        engine.close()


def test_verify_and_repair_cover_the_multilingual_index(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    engine.save_records("technologies", [TechnologyIn(**t) for t in TECHNOLOGIES])
    techs = engine.indexes["technologies"]
    companion = engine.multilingual_indexes["technologies"]
    assert techs.verify().ok
    assert companion.directory.exists() and companion.directory != techs.directory
    stats = techs.stats()
    assert stats["multilingual"]["model"] == "use-multilingual-v3"
    assert stats["multilingual"]["count"] == len(TECHNOLOGIES)
    # One vector goes missing from the multilingual index only: verify sees it, repair fixes it.
    dropped = int(companion.index.ids()[0])
    companion.remove([dropped])
    report = techs.verify()
    assert not report.ok and report.missing == [dropped]
    assert report.parts["multilingual"].missing == [dropped]
    assert report.as_dict()["parts"]["multilingual"]["missing"] == 1
    techs.repair()
    assert techs.verify().ok and dropped in companion.index
    # A lost multilingual index is a problem verify names, and a rebuild brings it back.
    shutil.rmtree(companion.directory)
    companion.unload()
    report = techs.verify()
    assert not report.ok and "multilingual" in (report.problem or "")
    techs.repair(full=True)
    assert techs.verify().ok and len(companion.index) == len(TECHNOLOGIES)


def test_multilingual_space_can_be_switched_off(tmp_path: Path, encoder: Encoder) -> None:
    engine = Engine(make_settings(tmp_path / "home", multilingual_model="off"), encoder=encoder)
    try:
        engine.save_records("technologies", [TechnologyIn(**t) for t in TECHNOLOGIES])
        assert engine.multilingual_indexes == {}
        assert not (engine.settings.index_dir / "technologies.multilingual").exists()
        assert "multilingual" not in engine.indexes["technologies"].stats()
        assert engine.match_text("海上钢结构防腐涂料", top=3)  # still answers, MiniLM only
    finally:
        engine.close()


def test_chinese_is_matched_as_words_in_the_lexical_channel() -> None:
    from matcher.retrieve.bm25 import LexicalIndex
    from matcher.retrieve.lexical import words

    # jieba segments the text into words (海上 / 风电 / 防腐 / 涂层), not single characters.
    assert words("海上风电塔筒防腐涂层") == ["海上", "风电", "塔筒", "防腐", "涂层"]
    docs = {
        1: "一种用于海上钢结构的石墨烯防腐涂层",
        2: "上海的海风很大，适合放风筝",  # shares the characters 海, 上, 风 but no word
        3: "风电叶片的防冰涂层",
    }
    lexical = LexicalIndex(list(docs), list(docs.values()))
    found = dict(lexical.search("海上风电防腐涂层", 3))
    assert list(found)[:2] == [1, 3]
    assert 2 not in found
    # Function words are not evidence (they made "shared terms: 用于、的" explanations).
    assert words("用于远程监护的心电贴") == ["远程", "监护", "心电", "贴"]
    # Mixed text: English terms and Chinese words are both indexed.
    assert {"mosfet", "栅极"} <= set(words("SiC MOSFET 栅极 阈值 漂移"))
