from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

RowT = TypeVar("RowT")


def paginate(session: Session, query: Select[Any], *order_by: Any, limit: int, offset: int) -> tuple[list[Any], int]:
    """One page of ``query`` in the given order, and how many rows match in all."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(*order_by).limit(limit).offset(offset)).all()
    return list(rows), total
