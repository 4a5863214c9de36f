"""Every SQL statement of the project, by concern (records, tokens, …); ``repo.x`` reads them."""

from __future__ import annotations

from matcher.store.repo.records import (
    ACTIVE,
    ARCHIVED,
    SqlEmbeddingCache,
    active_needs,
    active_technologies,
    get_by_ref_or_id,
    need_text,
    replace_matches,
    row_model,
    rows_by_ids,
    technology_text,
    text_of,
    upsert_broker,
    upsert_need,
    upsert_technology,
)

__all__ = [
    "ACTIVE",
    "ARCHIVED",
    "SqlEmbeddingCache",
    "active_needs",
    "active_technologies",
    "get_by_ref_or_id",
    "need_text",
    "replace_matches",
    "row_model",
    "rows_by_ids",
    "technology_text",
    "text_of",
    "upsert_broker",
    "upsert_need",
    "upsert_technology",
]
