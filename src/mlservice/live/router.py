"""``WS /ws``: live updates for the dashboard and API clients (see README, "Live updates")."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

router = APIRouter(tags=["live"])


@router.websocket("/ws")
async def live_updates(websocket: WebSocket) -> None:
    await websocket.app.state.live_hub.serve(websocket)
