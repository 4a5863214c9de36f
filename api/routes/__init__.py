"""Routers per resource of the JSON API; ROUTERS is what the app includes (the HTML pages
are api.web's)."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    admin,
    analytics,
    brokers,
    competency,
    deals,
    market,
    needs,
    search,
    taxonomy,
    technologies,
)

ROUTERS: list[APIRouter] = [
    technologies.router,
    needs.router,
    search.router,
    taxonomy.router,
    brokers.router,
    competency.router,
    deals.router,
    market.router,
    analytics.router,
    admin.router,
]
