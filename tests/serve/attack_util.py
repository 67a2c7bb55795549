"""Hostile clients against a real server, for the starvation test and for measuring: slow-header clients (one header
byte at a time, reconnecting when dropped), clients posting large images in a loop, and a well-behaved client whose
``GET /api/runs`` latencies and statuses are recorded. Run as a script for the figures of a server started here:
``python tests/serve/attack_util.py RUN...``."""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image


def large_png(side: int = 4000) -> bytes:
    """A ``side`` x ``side`` RGB PNG (16 MP at 4000) of bands and noise stripes that compresses to well under 2 MiB."""
    a = np.zeros((side, side, 3), np.uint8)
    a[side // 4 : side // 2] = 255
    a[:, ::97] = np.random.default_rng(0).integers(0, 256, size=(side, 1, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


@dataclass
class Tally:
    statuses: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, latency: float | None = None) -> None:
        with self.lock:
            self.statuses[outcome] = self.statuses.get(outcome, 0) + 1
            if latency is not None:
                self.latencies.append(latency)


def slow_header_client(port: int, stop: threading.Event, tally: Tally, gap: float = 0.5) -> None:
    """Sends a request line and headers one byte every ``gap`` s, forever; reconnects when the server drops it."""
    request = f"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: {'a' * 4000}\r\n\r\n".encode()
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                tally.add("connected")
                for i in range(len(request)):
                    if stop.wait(gap):
                        return
                    s.sendall(request[i : i + 1])
        except OSError:
            tally.add("dropped")
            stop.wait(0.05)


def image_client(port: int, stop: threading.Event, tally: Tally, body: bytes, run: str = "softmax") -> None:
    """Posts ``body`` to /api/explain again and again, recording each status (or the error's name)."""
    while not stop.is_set():
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("POST", f"/api/explain?run={run}", body, {"Content-Type": "image/png"})
            r = conn.getresponse()
            r.read()
            tally.add(str(r.status), time.perf_counter() - t)
        except OSError as e:
            tally.add(type(e).__name__)
            stop.wait(0.05)
        finally:
            conn.close()


def good_client(port: int, stop: threading.Event, tally: Tally, timeout: float = 10.0, gap: float = 0.1) -> None:
    """``GET /api/runs`` every ``gap`` s on a fresh connection, with a ``timeout`` s limit."""
    while not stop.is_set():
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", "/api/runs")
            r = conn.getresponse()
            r.read()
            tally.add(str(r.status), time.perf_counter() - t)
        except OSError as e:
            tally.add(type(e).__name__, time.perf_counter() - t)
        finally:
            conn.close()
        stop.wait(gap)


def attack(port: int, seconds: float, slow: int = 40, images: int = 25, body: bytes | None = None,
           warmup: float = 1.0) -> dict[str, Tally]:
    """Runs ``slow`` slow-header and ``images`` image clients for ``seconds`` while the good client measures (from
    ``warmup`` s on, once the attackers are connected). Returns the tallies by client kind."""
    stop, started = threading.Event(), threading.Event()
    tallies = {"slow": Tally(), "images": Tally(), "good": Tally()}
    body = large_png() if body is None and images else body
    threads = [threading.Thread(target=slow_header_client, args=(port, stop, tallies["slow"])) for _ in range(slow)]
    threads += [threading.Thread(target=image_client, args=(port, stop, tallies["images"], body))
                for _ in range(images)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    good = threading.Thread(target=good_client, args=(port, started, tallies["good"]))
    good.start()
    time.sleep(seconds)
    started.set()
    good.join()
    stop.set()
    for t in threads:
        t.join()
    return tallies


def burst(port: int, clients: int = 100, seconds: float = 5.0) -> Tally:
    """``clients`` well-behaved clients at once, each a GET /api/runs loop for ``seconds``: statuses and latencies."""
    stop, tally = threading.Event(), Tally()
    threads = [threading.Thread(target=good_client, args=(port, stop, tally, 10.0, 0.0)) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return tally


def summary(tally: Tally) -> str:
    lat = np.array(tally.latencies or [0.0]) * 1000
    return (f"{sum(tally.statuses.values())} answers {dict(sorted(tally.statuses.items()))}, p50 {np.median(lat):.0f} "
            f"ms, p95 {np.percentile(lat, 95):.0f} ms, max {lat.max():.0f} ms")


def status_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory field of the process's /proc status in MB: ``VmHWM`` its peak resident memory, ``VmRSS`` now."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from serve.serve_util import start_server, stop

    seconds = 15.0
    server = start_server([Path(p) for p in sys.argv[1:]])
    try:
        print(f"100 clients at once: {summary(burst(server.port))}", flush=True)
    finally:
        stop(server)
    for name, slow, images in [("slow headers", 40, 0), ("large images", 0, 25), ("both", 40, 25)]:
        server = start_server([Path(p) for p in sys.argv[1:]])
        try:
            base = status_mb(server.proc.pid)
            t = attack(server.port, seconds, slow, images)
            print(f"{name}: good client {summary(t['good'])}; image clients {dict(t['images'].statuses)}; "
                  f"slow clients {dict(t['slow'].statuses)}; server peak {status_mb(server.proc.pid):.0f} MB "
                  f"(idle {base:.0f} MB)", flush=True)
        finally:
            stop(server)
