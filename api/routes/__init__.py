"""Routers per resource; ROUTERS is what the app includes."""

from __future__ import annotations

from fastapi import APIRouter

from api import forms
from api.routes import admin, brokers, deals, needs, search, technologies

ROUTERS: list[APIRouter] = [
    technologies.router,
    needs.router,
    search.router,
    brokers.router,
    deals.router,
    admin.router,
    forms.router,
]
