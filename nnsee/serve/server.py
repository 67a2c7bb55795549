"""Running the live page: which ``Host`` headers to accept for a bind address, and the uvicorn server itself.

uvicorn's HTTP/1.1 protocol (h11) gets the limits it lacks (:class:`GuardedH11Protocol`):

* a request's line and headers must all arrive within ``HEADER_TIMEOUT_S`` of the connection (or of the previous
  answer on a kept-alive one): else 408 and close (a plain close if nothing arrived). A slow client never reaches
  the app, so it holds no slot; headers over 16 KiB are h11's 400;
* its body within ``BODY_TIMEOUT_S`` of its headers: else 408 and close;
* at most ``max_connections`` connections open at once: one more gets 503 and is closed;
* a connection closed while the client is still sending its body (an early 413 or 503) is half-closed first and up
  to ``DRAIN_BYTES`` or ``DRAIN_S`` of the rest read and dropped, so the client reads the answer instead of a reset;
* its own answers (400, 408, 503) carry the app's security headers.

uvicorn's ``limit_concurrency`` (which counts idle connections) is off; ``--limit-concurrency`` bounds the uploads
in flight instead (:class:`nnsee.serve.guard.UploadLimit`).
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from starlette.middleware import Middleware
from uvicorn.protocols.http.h11_impl import H11Protocol

from nnsee.serve.app import SECURITY_HEADERS
from nnsee.serve.guard import RETRY_AFTER_S, UploadLimit, host_values

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HEADER_TIMEOUT_S = 5.0
BODY_TIMEOUT_S = 20.0
DRAIN_BYTES = 8 * 2**20
DRAIN_S = 3.0
CONNECTIONS_PER_UPLOAD = 8


def allowed_hosts(host: str, port: int) -> list[str] | None:
    """``Host`` values a server bound to ``host:port`` accepts; None for loopback (the guard's own loopback list)."""
    if host in LOOPBACK:
        return None
    return sorted(host_values(("127.0.0.1", "localhost", "[::1]", host), port))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines, a connection cap and a lingering close."""

    max_connections = 256
    header_timeout = HEADER_TIMEOUT_S
    body_timeout = BODY_TIMEOUT_S
    drain_bytes = DRAIN_BYTES
    drain_s = DRAIN_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # uvicorn's own check counts idle connections
        self._timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # the deadline running: "headers", "body" or None
        self._lingering = False
        self._drained = 0
        self._socket: asyncio.Transport = None  # type: ignore[assignment]

    # the connection's life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._socket = transport
        super().connection_made(_GentleClose(transport, self))
        if len(self.connections) > self.max_connections:
            self._write(503, "too many connections; retry in a moment")
            self._linger()
            return
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_timer(None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drained += len(data)
            if self._drained > self.drain_bytes:
                self._socket.close()
            return
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def send_400_response(self, msg: str) -> None:
        self._write(400, msg)
        self._socket.close()

    # deadlines
    def _follow(self) -> None:
        """The deadline of the request's current phase: its headers while h11 waits for them, its body while
        it arrives, none while the app answers. A phase's deadline is set once, not moved by each byte."""
        if self._lingering or self._socket.is_closing():
            return
        their = self.conn.their_state
        phase = "headers" if their is h11.IDLE else "body" if their is h11.SEND_BODY else None
        if phase != self._phase:
            self._set_timer(phase)

    def _set_timer(self, phase: str | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._phase, self._timer = phase, None
        if phase is not None:
            seconds = self.header_timeout if phase == "headers" else self.body_timeout
            self._timer = self.loop.call_later(seconds, self._timed_out, phase, seconds)

    def _timed_out(self, phase: str, seconds: float) -> None:
        self._phase, self._timer = None, None
        if self._socket.is_closing():
            return
        started = self.cycle is not None and self.cycle.response_started
        if phase == "body" and not started:
            self._write(408, f"the request body did not arrive within {seconds:g} s")
        elif phase == "headers" and self.conn.trailing_data[0]:
            self._write(408, f"the request headers did not arrive within {seconds:g} s")
        if self.cycle is not None:
            self.cycle.disconnected = True  # the app's answer, if any, is dropped
        self._socket.close()

    # answers of the protocol itself, and the lingering close
    def _write(self, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "content-type: application/json",
                f"content-length: {len(body)}", "connection: close",
                *(f"{k}: {v}" for k, v in SECURITY_HEADERS.items())]
        if status == 503:
            head.append(f"retry-after: {RETRY_AFTER_S}")
        self._socket.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def close_gently(self) -> None:
        """Close; but while the client is still sending its body, linger first (the answer is already
        written)."""
        if self._lingering or self._socket.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:
            self._linger()
        else:
            self._socket.close()

    def _linger(self) -> None:
        """Half-close (the client sees the end of the answer), then read and drop up to ``DRAIN_BYTES`` for up
        to ``DRAIN_S`` before closing."""
        self._set_timer(None)
        self._lingering = True
        if not self._socket.can_write_eof():
            self._socket.close()
            return
        self._socket.write_eof()
        self.flow.resume_reading()
        self._socket.resume_reading()
        self._timer = self.loop.call_later(self.drain_s, self._socket.close)

class _GentleClose:
    """The connection's transport as uvicorn's protocol sees it: ``close()`` goes through
    :meth:`GuardedH11Protocol.close_gently`."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedH11Protocol) -> None:
        self._transport, self._protocol = transport, protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        self._protocol.close_gently()

    def is_closing(self) -> bool:
        return self._protocol._lingering or self._transport.is_closing()


def server_config(app: FastAPI, host: str, port: int, limit_concurrency: int, upload_wait: float = 5.0,
                  **protocol: Any) -> uvicorn.Config:
    """uvicorn's Config for ``app`` (from :func:`nnsee.serve.create_app`, not yet started): at most
    ``limit_concurrency`` uploads in flight (one more waits ``upload_wait`` s; the limit sits inside the guard, so its
    refusals come first) and ``CONNECTIONS_PER_UPLOAD`` times as many open connections; ``protocol`` overrides
    :class:`GuardedH11Protocol`'s limits (``header_timeout=1`` ...)."""
    if app.middleware_stack is not None:
        raise RuntimeError("server_config needs an app that has not served yet")
    app.user_middleware.append(Middleware(UploadLimit, limit=limit_concurrency, wait=upload_wait))  # innermost
    limits = {"max_connections": CONNECTIONS_PER_UPLOAD * limit_concurrency, **protocol}
    return uvicorn.Config(app, host=host, port=port, log_level="warning", ws="none",  # the page needs none
                          http=type("GuardedH11Protocol", (GuardedH11Protocol,), limits))


def run_server(app: FastAPI, host: str, port: int, limit_concurrency: int) -> None:
    """Serve ``app`` (from :func:`nnsee.serve.create_app`) on ``host:port`` until Ctrl-C."""
    uvicorn.Server(server_config(app, host, port, limit_concurrency)).run()
