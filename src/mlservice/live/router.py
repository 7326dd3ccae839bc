"""``WS /ws``: live updates for the dashboard and API clients (see README, "Live updates")."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from mlservice.live.hub import HubDep

router = APIRouter(tags=["live"])


@router.websocket("/ws")
async def live_updates(websocket: WebSocket, hub: HubDep) -> None:
    await hub.serve(websocket)
