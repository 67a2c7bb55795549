"""A pure ASGI middleware that refuses, before any handler runs:

* a ``Host`` header not in the allowed set (DNS rebinding) → 400;
* a foreign ``Origin`` on a state-changing method (POST, PUT, PATCH, DELETE) → 403;
* a declared ``Content-Length`` over ``max_body`` → 413 without reading the body (a chunked body is counted as it
  streams by the route that reads it, :func:`nnsee.serve.app.read_limited`);
* a POST to an image route whose ``Content-Type`` is not ``image/*`` → 415 (the decoder then reads the format from
  the bytes and accepts only ``IMAGE_FORMATS``: the one allow-list).

The allowed hosts default to ``127.0.0.1``, ``localhost`` and ``[::1]`` at the port the server is bound to; on port 80
also without the port, as browsers send it (:func:`host_values`).

:class:`UploadLimit` lets at most ``limit`` requests with a body (uploads) run at once; one more waits up to ``wait``
seconds for a slot, then gets 503 with ``Retry-After``. Requests without a body are never held back.

:class:`SecurityHeaders` adds the security headers to every response, these refusals and server errors included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRY_AFTER_S = 1


def host_values(names: Iterable[str], port: int | None) -> set[str]:
    """``Host`` header values naming ``names`` at ``port``: ``name:port``, and the bare name on port 80 (a browser
    leaves out the scheme's default port, RFC 9110 §7.2)."""
    names = [n.lower() for n in names]
    if not port:
        return set(names)
    return {f"{n}:{port}" for n in names} | (set(names) if port == 80 else set())


async def _refuse(send: Send, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
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
        return host_values(LOOPBACK_NAMES, (scope.get("server") or ("", None))[1])

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
                await _refuse(send, 413, over_limit(self.max_body))
                return
        if method == "POST" and scope.get("path") in self.image_paths:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if not ctype.startswith("image/"):
                await _refuse(send, 415, "send the image as the body with an image/* Content-Type "
                              f"(got {ctype or 'none'!r})")
                return
        await self.app(scope, receive, send)


def over_limit(limit: int) -> str:
    """The 413 message for a body over ``limit`` bytes."""
    return f"body over the {limit / 2**20:g} MiB ({limit} byte) limit: send a smaller image"


class UploadLimit:
    """At most ``limit`` requests with a body (POST, PUT, PATCH, DELETE) inside ``app`` at once; one more waits up
    to ``wait`` s for a slot, then is refused with 503 and ``Retry-After`` (a bound on the memory of bodies being
    read and on the queue of work, that never holds back a cheap GET)."""

    def __init__(self, app: Any, limit: int, wait: float = 5.0) -> None:
        self.app, self.limit, self.wait = app, limit, wait
        self._slots: asyncio.Semaphore | None = None  # made on the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET").upper() not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        slots = self._slots = self._slots or asyncio.Semaphore(self.limit)
        try:
            await asyncio.wait_for(slots.acquire(), self.wait)
        except TimeoutError:
            await _refuse(send, 503, f"busy: {self.limit} uploads are being worked on; retry in a moment",
                          [(b"retry-after", str(RETRY_AFTER_S).encode())])
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()


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
