"""Helpers of the server tests: a real `nnsee serve` subprocess on a free loopback port, raw requests, PNGs."""

from __future__ import annotations

import http.client
import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc, self.port = proc, port
        self.base = f"http://127.0.0.1:{port}"

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            skip_host: bool = False) -> tuple[int, bytes]:
        """One request with http.client: the path and headers are sent exactly as given (no normalization)."""
        status, _, data = self.exchange(method, path, body, headers, skip_host)
        return status, data

    def exchange(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                 skip_host: bool = False) -> tuple[int, http.client.HTTPMessage, bytes]:
        """As :meth:`raw`, with the response's headers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None and not any(k.lower() == "content-length" for k in headers or {}):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()


def post_chunked_over_limit(server: Server, mib: int = 3) -> bytes:
    """POST ``mib`` MiB of chunked body to /api/explain on a raw socket; the reply's status line and headers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"POST /api/explain?run=softmax HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                  "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"\0" * (1024 * 1024)
        try:
            for _ in range(mib):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close once it has refused
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = s.recv(4096)
            if not data:
                break
            reply += data
    return reply.split(b"\r\n\r\n")[0]


def start_server(runs: list[Path], *extra: str) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "nnsee.cli", "serve", *map(str, runs), "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = Server(proc, port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read().decode(errors='replace')}")
        try:
            if server.raw("GET", "/api/runs", headers={"Host": f"127.0.0.1:{port}"}, skip_host=True)[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)
    stop(server)
    raise RuntimeError("server did not answer within 60 s")


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)


def png(array: np.ndarray, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def band(k: int, size: int = 64) -> bytes:
    """White band on black where class k's training images are bright (rows 2k..2k+2 of 8)."""
    a = np.zeros((size, size), np.uint8)
    s = size // 8
    a[2 * k * s : (2 * k + 3) * s] = 255
    return png(a)
