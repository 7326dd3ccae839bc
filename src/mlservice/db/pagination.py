"""Paging and ownership, shared by every list and every per-user read: one ``Page`` answer, one
``PageDep`` for ``limit``/``offset``, one ``paginate`` query, one rule for what a user may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, Self, TypeVar

from fastapi import Depends, Query, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from mlservice.errors import NotFound

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")
MAX_PAGE = 500


class Owner(Protocol):
    """What the ownership rule needs of the caller (``mlservice.principal.Principal``)."""

    user_id: int

    @property
    def is_admin(self) -> bool: ...


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


async def page_params(  # async: pure parsing, not worth a hop to the thread pool
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PageParams:
    return PageParams(limit, offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, items: list[Any], total: int, page: PageParams) -> Self:
        return cls(items=items, total=total, limit=page.limit, offset=page.offset)

    def as_response(self) -> Response:
        """Serialized in the (sync) endpoint's own worker thread. Returned as a model, it would
        be validated and serialized again in a second hop to the thread pool."""
        return Response(self.model_dump_json(), media_type="application/json")


def paginate(session: Session, query: Select[Any], *order_by: Any, limit: int, offset: int) -> tuple[list[Any], int]:
    """One page of ``query`` in the given order, and how many rows match in all."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(*order_by).limit(limit).offset(offset)).all()
    return list(rows), total


def where_given(query: Select[Any], *equal: tuple[Any, Any]) -> Select[Any]:
    """``query`` narrowed by ``column == value`` for each pair whose value was given (a list
    filter left empty matches everything)."""
    for column, value in equal:
        if value:
            query = query.where(column == value)
    return query


def within(query: Select[Any], column: Any, since: Any = None, before: Any = None) -> Select[Any]:
    """``query`` narrowed to ``since <= column < before``, each bound only when given."""
    if since:
        query = query.where(column >= since)
    if before:
        query = query.where(column < before)
    return query


def owned_or_404(row: RowT | None, principal: Owner, what: str) -> RowT:
    """``row`` when it exists and the caller may see it (its owner, or an admin). Someone else's
    row answers 404 like a missing one, so ids of other users' rows cannot be probed."""
    if row is None or (not principal.is_admin and getattr(row, "user_id") != principal.user_id):  # noqa: B009
        raise NotFound(f"{what} does not exist")
    return row


def visible_to(query: Select[Any], owner: ColumnElement[Any], principal: Owner, user_id: int | None = None) -> Select[Any]:
    """``query`` narrowed to the caller's rows; an admin sees all, or one user's with ``user_id``."""
    if not principal.is_admin:
        return query.where(owner == principal.user_id)
    return query if user_id is None else query.where(owner == user_id)
