"""TechMatch engine: ingest → embed → index → retrieve → rank → route → deal."""

from __future__ import annotations

__version__ = "0.1.0"
ENGINE_VERSION = f"techmatch-{__version__}"
