"""The words of an explanation in the reader's language (English and Chinese).

The ranking layer builds each explanation from short phrases; this table holds their wording so
that the same match reads naturally to an English-speaking broker and to a Chinese enterprise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "domain.none": "no field given",
        "domain.same": "same field: {path}",
        "domain.parent": "within field: {path}",
        "domain.sibling": "related field: {path}",
        "domain.unrelated": "different field: {path}",
        "domain.inferred.need": "need's field inferred, confidence {confidence}",
        "domain.inferred.technology": "technology's field inferred, confidence {confidence}",
        "trl.plain": "TRL {trl}",
        "trl.unknown": "TRL not given",
        "trl.below": "TRL {trl} below minimum {low}",
        "trl.above": "TRL {trl} above maximum {high}",
        "trl.window": "TRL {trl} within {low}–{high}",
        "trl.min": "TRL {trl} meets minimum {low}",
        "trl.max": "TRL {trl} within maximum {high}",
        "region.none": "region not given",
        "region.same_subdivision": "same province/state ({name})",
        "region.same_grouping": "same region ({grouping})",
        "region.same_country": "same country",
        "region.near_abroad": "abroad, same bloc ({grouping})",
        "region.abroad": "abroad",
        "region.where": "{relation}, {name}, ~{km} km",
        "region.outside.local": "outside the need's local scope",
        "region.outside.national": "outside the need's national scope",
        "text.fit": "text fit {score}",
        "text.terms": "text fit {score} (shared terms: {terms})",
        "text.cross": "text fit {score} (across languages)",
        "learned.moved": "learned ranking: {features}",
        "list.sep": ", ",
        "join": "; ",
    },
    "zh": {
        "domain.none": "未给出技术领域",
        "domain.same": "同一领域：{path}",
        "domain.parent": "所属领域：{path}",
        "domain.sibling": "相关领域：{path}",
        "domain.unrelated": "不同领域：{path}",
        "domain.inferred.need": "需求领域为推断，置信度 {confidence}",
        "domain.inferred.technology": "技术领域为推断，置信度 {confidence}",
        "trl.plain": "技术成熟度 TRL {trl}",
        "trl.unknown": "未给出技术成熟度",
        "trl.below": "TRL {trl}，低于最低要求 {low}",
        "trl.above": "TRL {trl}，高于上限 {high}",
        "trl.window": "TRL {trl}，在 {low}–{high} 范围内",
        "trl.min": "TRL {trl}，达到最低要求 {low}",
        "trl.max": "TRL {trl}，未超过上限 {high}",
        "region.none": "未给出地区",
        "region.same_subdivision": "同一省/州（{name}）",
        "region.same_grouping": "同一区域（{grouping}）",
        "region.same_country": "同一国家",
        "region.near_abroad": "境外，同属{grouping}",
        "region.abroad": "境外",
        "region.where": "{relation}，{name}，约 {km} 公里",
        "region.outside.local": "超出需求的本地范围",
        "region.outside.national": "超出需求的全国范围",
        "text.fit": "文本契合度 {score}",
        "text.terms": "文本契合度 {score}（共同术语：{terms}）",
        "text.cross": "文本契合度 {score}（跨语言）",
        "learned.moved": "学习排序：{features}",
        "list.sep": "、",
        "join": "；",
    },
}

# Names of the ranking features, for explanations of a learned ranking.
FEATURE_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "semantic": "semantic similarity",
        "lexical": "keyword match",
        "bm25": "keyword weight",
        "semantic_gap": "similarity against the best",
        "lexical_gap": "keywords against the best",
        "dense_rr": "semantic search rank",
        "lexical_rr": "keyword search rank",
        "query_terms": "query length",
        "doc_terms": "length",
        "semantic_z": "similarity against the others",
        "bm25_z": "keywords against the others",
    },
    "zh": {
        "semantic": "语义相似度",
        "lexical": "关键词匹配",
        "domain": "领域",
        "readiness": "成熟度",
        "region": "地区",
        "language": "语言",
        "bm25": "关键词权重",
        "semantic_gap": "与最佳候选的语义差距",
        "lexical_gap": "与最佳候选的关键词差距",
        "dense_rr": "语义检索排名",
        "lexical_rr": "关键词检索排名",
        "query_terms": "查询长度",
        "doc_terms": "篇幅",
        "semantic_z": "相对语义相似度",
        "bm25_z": "相对关键词匹配",
    },
}


def language_of(lang: str | None) -> str:
    """``en`` or ``zh`` for a language tag (``zh-CN``, ``zh_Hans`` → ``zh``); English otherwise."""
    if not lang:
        return DEFAULT_LANGUAGE
    base = lang.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def phrase(lang: str, key: str, **params: Any) -> str:
    """The phrase ``key`` in ``lang`` (English when the language lacks it), filled in."""
    table = PHRASES.get(lang, PHRASES[DEFAULT_LANGUAGE])
    template = table.get(key) or PHRASES[DEFAULT_LANGUAGE][key]
    return template.format(**params)


def feature_name(lang: str, name: str) -> str:
    """A ranking feature's name for the reader (the code name in English)."""
    return FEATURE_NAMES.get(lang, {}).get(name, name)


def join(lang: str, parts: Sequence[str], key: str = "join") -> str:
    """Join phrases with the language's separator, skipping empty ones."""
    return phrase(lang, key).join(p for p in parts if p)
