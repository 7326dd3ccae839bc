"""Typed dependencies for the prediction objects the app keeps in ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mlservice.predictions.service import VersionResolver


async def get_version_resolver(request: Request) -> VersionResolver:
    return request.app.state.version_resolver


VersionResolverDep = Annotated[VersionResolver, Depends(get_version_resolver)]
