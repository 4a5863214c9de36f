"""Who may see which technologies and needs: confidential records only when routed to you.

Administrators see everything; a broker sees every record that is not confidential and the
confidential ones that were routed to them (as the need or the technology of a routed match);
anyone else sees only records that are not confidential. The rule is one SQL condition, so
lists, counts and single reads all filter in the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, not_, or_, select, true
from sqlalchemy.orm import Session

from matcher.domain import Side
from matcher.store.models import NeedRow, RoutedMatchRow, TechnologyRow
from matcher.store.repo.records import ACTIVE, row_model


@dataclass(frozen=True)
class Viewer:
    """Who is reading: an administrator, a broker (by id), or neither."""

    admin: bool = False
    broker_id: int | None = None


def visible_clause(side: Side, *, viewer: Viewer) -> Any:
    """SQL condition: the records of ``side`` the viewer may see."""
    model = row_model(side)
    if viewer.admin:
        return true()
    if viewer.broker_id is None:
        return model.confidential.is_(False)
    column = RoutedMatchRow.technology_id if side is Side.technologies else RoutedMatchRow.need_id
    routed = select(column).where(RoutedMatchRow.broker_id == viewer.broker_id)
    return or_(model.confidential.is_(False), model.id.in_(routed))


def is_visible(session: Session, *, row: TechnologyRow | NeedRow, viewer: Viewer) -> bool:
    """Whether the viewer may see this technology or need at all."""
    if not row.confidential or viewer.admin:
        return True
    if viewer.broker_id is None:
        return False
    side = Side.technologies if isinstance(row, TechnologyRow) else Side.needs
    column = RoutedMatchRow.technology_id if side is Side.technologies else RoutedMatchRow.need_id
    hit = session.scalar(
        select(RoutedMatchRow.id)
        .where(RoutedMatchRow.broker_id == viewer.broker_id, column == row.id)
        .limit(1)
    )
    return hit is not None


def visible_ids(session: Session, *, side: Side, ids: Iterable[int], viewer: Viewer) -> set[int]:
    """The subset of ``ids`` (records of ``side``) the viewer may see."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return set()
    model = row_model(side)
    stmt = select(model.id).where(model.id.in_(wanted), visible_clause(side, viewer=viewer))
    return set(session.scalars(stmt))


def hidden_count(session: Session, *, side: Side, viewer: Viewer) -> int:
    """How many active records of ``side`` the viewer may not see (rankings ask that many more)."""
    if viewer.admin:
        return 0
    model = row_model(side)
    stmt = (
        select(func.count())
        .select_from(model)
        .where(model.status == ACTIVE, not_(visible_clause(side, viewer=viewer)))
    )
    return int(session.scalar(stmt) or 0)
