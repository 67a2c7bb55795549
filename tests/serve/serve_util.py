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
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None and not any(k.lower() == "content-length" for k in headers or {}):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()


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
