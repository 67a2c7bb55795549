"""The server's own limits, on raw sockets: a 413 that clients read (urllib, plain and chunked), deadlines for a
request's headers and body (408), the cap on open connections and on uploads in flight (503 with Retry-After), and
the security headers on every answer the protocol or the limits write themselves (400, 408, 413, 503).

The deadlines and caps are shortened by running the same server in this process (``server_config``)."""

from __future__ import annotations

import email
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from serve.serve_util import band, free_port
from serve.test_serve_security_headers import assert_secure

from nnsee.serve.app import create_app
from nnsee.serve.server import server_config

THREE_MIB = 3 * 2**20


def _urllib_post(port: int, data, headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/explain?run=softmax", data=data, method="POST",
                                 headers={"Content-Type": "image/png", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _error(data: bytes) -> str:
    """The message of a refusal: the guard's ``error`` or a route's ``detail``."""
    d = json.loads(data)
    return d.get("error") or d["detail"]


def _late_body(mib: int = 3, late: int = 0) -> Iterator[bytes]:
    """``mib`` MiB in 1 MiB chunks, chunk ``late`` 0.3 s after the one before: the server has answered by then, as
    it does on a slow link or a busy machine."""
    for i in range(mib):
        if i == late:
            time.sleep(0.3)
        yield b"\0" * 2**20


def test_urllib_sees_the_413_of_a_3_mib_post(server):
    """The guard refuses from Content-Length before reading; the server then drains what the client still sends, so
    urllib reads the 413 instead of a broken pipe or a reset (before: `BrokenPipeError` each time here, and often
    without the pause)."""
    for _ in range(5):
        status, data = _urllib_post(server.port, _late_body(), {"Content-Length": str(THREE_MIB)})
        assert status == 413 and "MiB" in _error(data)
    status, data = _urllib_post(server.port, b"\0" * THREE_MIB)  # all at once
    assert status == 413 and "MiB" in _error(data)


def test_urllib_sees_the_413_of_a_chunked_4_mib_post(server):
    """No length: the route counts the chunks as they stream, answers 413 once over 2 MiB and drains the rest."""
    for _ in range(3):
        status, data = _urllib_post(server.port, _late_body(4, late=3))  # no length: sent chunked
        assert status == 413 and "MiB" in _error(data)


@contextmanager
def in_process(serve_runs, limit: int = 32, upload_wait: float = 5.0, **protocol) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The server of ``nnsee serve`` on a free port in a thread of this process; yields its port."""
    port = free_port()
    app = create_app([serve_runs["softmax"]])
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, limit, upload_wait, **protocol))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _reply(s: socket.socket) -> tuple[int, email.message.Message, bytes]:
    """Everything the server sends until it closes: status, headers, body. A reset after the answer ends it too: a
    client still trickling bytes when the server answered and closed gets a RST in place of the end of stream (seen
    once in three CI runs); a reset before any answer still fails the parse below."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            if not data:
                raise
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, _, headers = head.decode("latin-1").partition("\r\n")
    return int(status_line.split()[1]), email.message_from_string(headers), body


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_slow_headers_get_408_and_idle_connections_are_closed(serve_runs):
    with in_process(serve_runs, header_timeout=1.0) as port, _connect(port) as slow, _connect(port) as idle:
        t = time.perf_counter()
        slow.sendall(f"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())  # headers never finish
        for _ in range(50):  # trickling for up to 10 s, until the answer comes: the deadline is not moved by each
            if select.select([slow], [], [], 0.2)[0]:  # byte (if it were, no answer before the trickle stops)
                break
            try:
                slow.sendall(b"X-A: b\r\n")
            except (BrokenPipeError, ConnectionResetError):  # answered and closed since the select: read it
                break
        status, headers, _ = _reply(slow)
        assert status == 408 and 1.0 <= time.perf_counter() - t < 8  # 1 s deadline; slack for a loaded machine
        assert_secure(headers)
        assert idle.recv(100) == b""  # nothing asked, nothing answered: closed


def test_a_trickling_body_gets_408(serve_runs):
    with in_process(serve_runs, body_timeout=1.0) as port, _connect(port) as s:
        s.sendall(f"POST /api/explain?run=softmax HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
                  "Content-Length: 1000\r\n\r\n".encode())
        t = time.perf_counter()
        for _ in range(3):
            s.sendall(b"\0" * 10)
            time.sleep(0.2)
        status, headers, body = _reply(s)
        assert status == 408 and "body" in _error(body)
        assert time.perf_counter() - t < 3
        assert_secure(headers)


def test_a_malformed_request_gets_400_with_the_headers(serve_runs):
    with in_process(serve_runs) as port, _connect(port) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, _ = _reply(s)
        assert status == 400
        assert_secure(headers)


def test_connections_over_the_cap_get_503_with_retry_after(serve_runs):
    with in_process(serve_runs, max_connections=3) as port:
        held = [_connect(port) for _ in range(3)]
        try:
            time.sleep(0.2)
            with _connect(port) as s:
                s.sendall(f"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                status, headers, _ = _reply(s)
            assert status == 503 and headers["retry-after"] == "1"
            assert_secure(headers)
        finally:
            for h in held:
                h.close()
        time.sleep(0.2)
        with _connect(port) as s:  # the cap counts open connections only
            s.sendall(f"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            assert _reply(s)[0] == 200


def test_uploads_over_the_limit_wait_then_get_503_while_gets_are_served(serve_runs):
    with in_process(serve_runs, limit=1, upload_wait=2.0) as port, _connect(port) as holder:
        holder.sendall(f"POST /api/explain?run=softmax HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                       "Content-Type: image/png\r\nContent-Length: 1000\r\n\r\n".encode())  # holds the one slot
        time.sleep(0.2)
        status, data = _urllib_post(port, band(0))
        assert status == 503 and "busy" in _error(data)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5) as r:
            assert r.status == 200  # a request without a body is never held back
        t = time.perf_counter()
        status, data = _urllib_post(port, b"\0" * THREE_MIB)  # the guard's refusals come before the wait
        assert status == 413 and time.perf_counter() - t < 1.5  # sooner than the 2 s wait for a slot
        with _connect(port) as s:
            s.sendall(f"POST /api/explain?run=softmax HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png"
                      f"\r\nContent-Length: {len(band(0))}\r\n\r\n".encode() + band(0))
            status, headers, _ = _reply(s)
        assert status == 503 and headers["retry-after"] == "1"
        assert_secure(headers)


@pytest.mark.parametrize("port, host, ok", [(80, "localhost", True), (80, "127.0.0.1", True), (80, "[::1]", True),
                                            (80, "localhost:80", True), (8000, "localhost", False),
                                            (80, "evil.example", False)])
def test_port_80_accepts_a_host_without_the_port(serve_runs, port, host, ok):
    """A browser sends ``Host: localhost`` for http://localhost/ (the default port is left out)."""
    testclient = pytest.importorskip("starlette.testclient")
    app = create_app([serve_runs["softmax"]])
    with testclient.TestClient(app, base_url=f"http://127.0.0.1:{port}") as client:
        r = client.get("/api/runs", headers={"Host": host})
    assert (r.status_code == 200) is ok, (r.status_code, r.text)


def test_port_80_on_another_interface_accepts_its_bare_name():
    from nnsee.serve.server import allowed_hosts

    assert {"192.168.1.5", "192.168.1.5:80", "localhost"} <= set(allowed_hosts("192.168.1.5", 80))
    assert "192.168.1.5" not in allowed_hosts("192.168.1.5", 8000)
