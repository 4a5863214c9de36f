"""Server-rendered forms for enterprises and institutes (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
