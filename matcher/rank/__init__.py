"""Ranking: pair features (domain, readiness, region, hard filters), the feature matrix, the
fixed score, explanations; ``learned/`` holds trained rankers and their lifecycle."""
