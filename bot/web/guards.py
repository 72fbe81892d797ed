"""What every request passes before a route sees it (ASGI middleware, outermost first in `create_app`):

- `Slashes`: repeated slashes in the path are one (Dify saves an endpoint with a trailing slash and then calls
  `…//retrieval`);
- `HostCheck`: without API keys, only requests addressed to this machine by a local name (or a name listed in
  WENDA_SERVE_ALLOWED_HOSTS) are served: a page on attacker.example whose name is made to resolve to 127.0.0.1
  (DNS rebinding) gets 421 and no answer;
- `BodyLimit`: a body over the limit is refused with 413 before any route reads it, whether it declares its
  length or arrives chunked, in the error shape of the route it was sent to (Dify's on `/retrieval`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..render import json_line

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
DIFY_PATHS = ("/retrieval",)
REPEATED = re.compile(r"//+")


def error_body(message: str, field: str | None = None, kind: str = "invalid_request") -> dict:
    """The native API's error object (also what OpenAI clients are given)."""
    return {"error": {"message": message, "field": field, "type": kind}}


async def send_error(
    scope: Scope, send: Send, status: int, message: str, field: str | None, kind: str, headers: Iterable = ()
) -> None:
    """An error answered before the application: in Dify's shape on Dify's route, the native one elsewhere."""
    if scope.get("path", "").rstrip("/") in DIFY_PATHS:
        body: dict = {"error_code": status, "error_msg": message}
    else:
        body = error_body(message, field, kind)
    data = json_line(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class Slashes:
    """`//retrieval` and `/v1//ask/` are `/retrieval` and `/v1/ask`: repeated slashes are one and a trailing one
    goes, so every client reaches the route itself (the application's own answer was an empty 307 redirect,
    which Dify and some HTTP clients do not follow for a POST)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def mend(path: str) -> str:
        path = REPEATED.sub("/", path)
        return path.rstrip("/") or "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and ("//" in path or (path.endswith("/") and path != "/")):
            scope = {**scope, "path": self.mend(path)}
            if scope.get("raw_path"):
                scope["raw_path"] = self.mend(scope["raw_path"].decode("latin-1")).encode("latin-1")
        await self.app(scope, receive, send)


def host_name(value: str) -> str:
    """The name of a Host header without its port, lower-cased ("[::1]:8000" → "::1")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostCheck:
    """Serve only requests whose Host names this machine locally or one of `allowed` (used without API keys:
    the server then listens on loopback only, and the Host header is what tells a local client from a page in
    a browser that was pointed here by a rebound DNS name)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = LOCAL_NAMES | {host_name(name) for name in allowed if name.strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                message = (
                    "this server answers requests to localhost only; add the name to WENDA_SERVE_ALLOWED_HOSTS "
                    "or set WENDA_API_KEYS"
                )
                await send_error(scope, send, 421, message, "host", "misdirected")
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413: by its Content-Length before reading, else by
    reading it (at most `limit` + one message) before the route does, then handing the route what was read."""

    def __init__(self, app: ASGIApp, limit: int, uploads: tuple[str, int, str] | None = None) -> None:
        """`uploads`: (path prefix, its limit, the setting that sets it), for the management page's uploads."""
        self.app, self.default, self.uploads = app, limit, uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.default, "WENDA_SERVE_MAX_BODY_KB"
        if self.uploads is not None and scope["path"].startswith(self.uploads[0]):
            limit, setting = self.uploads[1], self.uploads[2]
        too_large = f"request body over {limit // 1024} KB ({setting})"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await send_error(scope, send, 413, too_large, "body", "too_large", [(b"connection", b"close")])
            return
        if declared is not None:  # within the limit as declared; the server holds the body to its length
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > limit:
                await send_error(scope, send, 413, too_large, "body", "too_large", [(b"connection", b"close")])
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        await self.app(scope, replay, send)
