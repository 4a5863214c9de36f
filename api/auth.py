"""Bearer tokens for the API: kept for old imports; the functions live in ``matcher.store.repo``.

New code calls ``repo.issue_token`` / ``repo.find_token`` (``from matcher.store import repo``).
"""

from __future__ import annotations

from matcher.store.repo.tokens import find_token, hash_token, issue_token

__all__ = ["find_token", "hash_token", "issue_token"]
