"""The lexical channel's words: Chinese and English, stemmed, with bigrams (BM25 over them is
``matcher.retrieve.bm25``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[\u3400-\u9fff\uf900-\ufaff]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {"based", "using", "use", "used", "new", "high", "low"}
# Chinese function words and single-character particles that jieba keeps as words: like English
# stop words they say nothing about the topic, but a short Chinese query matched on them.
_STOP_ZH = frozenset(
    [
        "的",
        "了",
        "和",
        "与",
        "及",
        "或",
        "等",
        "在",
        "是",
        "对",
        "为",
        "将",
        "并",
        "其",
        "以",
        "于",
        "由",
        "从",
        "把",
        "被",
        "也",
        "都",
        "而",
        "且",
        "但",
        "则",
        "即",
        "之",
        "所",
        "可",
        "能",
        "会",
        "要",
        "需",
        "有",
        "无",
        "该",
        "此",
        "这",
        "那",
        "个",
        "种",
        "各",
        "每",
        "中",
        "上",
        "下",
        "内",
        "外",
        "式",
        "性",
        "化",
        "用",
        "用于",
        "通过",
        "进行",
        "以及",
        "及其",
        "一种",
        "一个",
        "我们",
        "我司",
        "公司",
        "企业",
        "目前",
        "现有",
        "需要",
        "希望",
        "可以",
        "能够",
        "具有",
        "实现",
        "采用",
        "其中",
        "并且",
        "或者",
        "以上",
        "以下",
        "左右",
    ]
)
# Words too generic to count as evidence in an explanation ("shared terms: need, process").
GENERIC_WORDS = frozenset(
    {
        "need",
        "needs",
        "want",
        "looking",
        "process",
        "line",
        "run",
        "work",
        "customer",
        "customers",
        "system",
        "systems",
        "method",
        "methods",
        "technology",
        "technologies",
        "tool",
        "tools",
        "current",
        "currently",
        "product",
        "products",
        "company",
        "solution",
        "solutions",
        "application",
        "applications",
        "provide",
        "provides",
        "including",
        "year",
        "years",
    }
)


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """BM25 terms: stemmed words plus adjacent-word bigrams.

    Bigrams keep phrases such as "fuel cell" apart from "fuel" and "cell" (measured: +0.02
    nDCG@10 for BM25 on sbir-dev, see benchmarks/RESULTS.md).
    """
    stems = _stemmer().stemWords(words(text))
    return stems + [f"{a}_{b}" for a, b in zip(stems, stems[1:], strict=False)]


def words(text: str) -> list[str]:
    """Lower-cased word tokens without stop words; Chinese runs are segmented into words."""
    tokens: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        if _CJK.match(word):
            tokens.extend(w for w in _jieba().lcut(word) if w.strip() and w not in _STOP_ZH)
        elif len(word) > 1 and word not in _STOP:
            tokens.append(word)
    return tokens


def stems_of(words_: Sequence[str]) -> list[str]:
    """The English stems of words (Chinese words are their own)."""
    return list(_stemmer().stemWords(list(words_)))
