"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streams and cost latency)."""

from __future__ import annotations

from typing import ClassVar

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlservice.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised mid-stream; an HTTPException so FastAPI's body parsing passes it through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, describe_limit(max_bytes))


def describe_limit(max_bytes: int) -> str:
    return (
        f"request body is larger than the {max_bytes / (1024 * 1024):g} MB limit (ML_MAX_BODY_MB)"
    )


class BodySizeLimit:
    """Refuse bodies over the limit with 413, by Content-Length up front or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> object:
        return error_response(413, "payload_too_large", describe_limit(self.max_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._too_large()(scope, receive, send)  # type: ignore[operator]
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._too_large()(scope, receive, send)  # type: ignore[operator]


NUL = "\x00"


class RefuseNul:
    """No query parameter (name or value) and no path may contain a NUL character: no stored text
    holds one, and PostgreSQL refuses one in a query where SQLite compares it, so
    ``GET /jobs?model_key=%00`` answered 422 on one backend and an empty 200 on the other. One
    rule in front of every route, so a filter added later follows it too. A middleware rather than
    an app-wide dependency: FastAPI's dependency machinery would cost every request ~10 us of CPU,
    this two substring scans."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            b"%00" not in scope["query_string"] and NUL not in scope["path"]
        ):
            await self.app(scope, receive, send)
            return
        query = QueryParams(scope["query_string"]).multi_items()
        fields = [f"query.{name}" for name, value in query if NUL in name + value]
        fields += ["path"] if NUL in scope["path"] else []
        fields = [field.replace(NUL, "\\x00") for field in fields]  # shown escaped, never raw
        first = (
            f"query parameter '{fields[0][len('query.') :]}'" if fields[0] != "path" else "the path"
        )
        details = [
            {"field": field, "message": "cannot contain the NUL character"} for field in fields
        ]
        refusal = error_response(
            422, "invalid_value", f"{first} cannot contain the NUL character (\\x00)", details
        )
        await refusal(scope, receive, send)


class SecurityHeaders:
    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"SAMEORIGIN"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)
