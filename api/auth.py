"""Bearer tokens for the API (kept in the engine's store; see matcher.tokens)."""

from __future__ import annotations

from matcher.store.repo.tokens import find_token, hash_token, issue_token

__all__ = ["find_token", "hash_token", "issue_token"]
