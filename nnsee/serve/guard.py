"""A pure ASGI middleware that refuses, before any handler runs:

* a ``Host`` header not in the allowed set (DNS rebinding) → 400;
* a foreign ``Origin`` on a state-changing method (POST, PUT, PATCH, DELETE) → 403;
* a declared ``Content-Length`` over ``max_body`` → 413 without reading the body (a chunked body is counted as it
  streams by the route that reads it, :func:`nnsee.serve.app.read_limited`);
* a POST to an image route whose ``Content-Type`` is not an image → 415.

The allowed hosts default to ``127.0.0.1``, ``localhost`` and ``[::1]`` at the port the server is bound to.

:class:`SecurityHeaders` adds the security headers to every response, these refusals and server errors included.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/bmp"})


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: Any, max_body: int, allowed_hosts: Iterable[str] | None = None,
                 image_paths: Iterable[str] = ("/api/explain",)) -> None:
        self.app = app
        self.max_body = max_body
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.image_paths = frozenset(image_paths)

    def _hosts(self, scope: Scope) -> set[str]:
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        port = (scope.get("server") or ("", None))[1]
        return {f"{name}:{port}" for name in LOOPBACK_NAMES} if port else set(LOOPBACK_NAMES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        hosts = self._hosts(scope)
        if headers.get("host", "").lower() not in hosts:
            await _refuse(send, 400, "unexpected Host header (this server answers only on loopback)")
            return
        method = scope.get("method", "GET").upper()
        origin = headers.get("origin")
        if method in STATE_CHANGING and origin is not None and origin.lower() not in {f"http://{h}" for h in hosts}:
            await _refuse(send, 403, "cross-origin request refused")
            return
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _refuse(send, 400, "bad Content-Length")
                return
            if int(length) > self.max_body:
                await _refuse(send, 413, f"body over the {self.max_body} byte limit")
                return
        if method == "POST" and scope.get("path") in self.image_paths:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in IMAGE_TYPES:
                await _refuse(send, 415, f"send the image as the body with Content-Type {' or '.join(IMAGE_TYPES)}")
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds ``headers`` to every HTTP response that does not set them itself: pages, files, JSON, the refusals
    above and the 500s of Starlette's error middleware (so it must wrap the whole stack)."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(k).lower() for k, _ in headers}
                message = {**message, "headers": headers + [(k, v) for k, v in self.headers if k not in present]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
