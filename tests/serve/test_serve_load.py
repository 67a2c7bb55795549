"""A bounded load test on loopback: N explanations at concurrency 8 under a hard 60 s cap, zero 5xx,
p50/p95 reported, and the server's RSS growth over the second half (a leak check)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from serve.attack_util import status_mb
from serve.serve_util import png, start_server, stop

httpx = pytest.importorskip("httpx")

N, CONCURRENCY, CAP_S = 1000, 8, 60.0


def _bodies() -> list[bytes]:
    rng = np.random.default_rng(0)
    return [png((rng.uniform(size=(28, 28)) > 0.7).astype(np.uint8) * 255) for _ in range(16)]


async def _run(base: str, runs: list[str], n: int, bodies: list[bytes]) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            t = time.perf_counter()
            r = await client.post(f"/api/explain?run={runs[i % len(runs)]}", content=bodies[i % len(bodies)],
                                  headers={"Content-Type": "image/png"})
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(CONCURRENCY))), CAP_S)
    return latencies, statuses


def test_serve_load(serve_runs, capsys):
    server = start_server([serve_runs["softmax"], serve_runs["mlp"]])
    try:
        bodies = _bodies()
        start = status_mb(server.proc.pid, "VmRSS")
        t = time.perf_counter()
        first, s1 = asyncio.run(_run(server.base, ["softmax", "mlp"], N // 2, bodies))
        middle = status_mb(server.proc.pid, "VmRSS")
        second, s2 = asyncio.run(_run(server.base, ["softmax", "mlp"], N // 2, bodies))
        wall = time.perf_counter() - t
        end = status_mb(server.proc.pid, "VmRSS")
    finally:
        stop(server)
    lat = np.array(first + second) * 1000
    statuses = {k: s1.get(k, 0) + s2.get(k, 0) for k in {*s1, *s2}}
    p50, p95, mx = np.percentile(lat, 50), np.percentile(lat, 95), lat.max()
    with capsys.disabled():
        print(f"\nload: {len(lat)} requests, concurrency {CONCURRENCY}, {wall:.1f} s ({len(lat) / wall:.0f} req/s), "
              f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {mx:.0f} ms, statuses {statuses}; RSS {start:.0f} MB at start, "
              f"{middle:.0f} MB after the first half, {end:.0f} MB at the end")
    assert len(lat) == N and statuses == {200: N}
    assert p95 < 1000
    assert end - middle < 20, f"RSS grew {end - middle:.1f} MB over the second half"


def test_idle_connections_hold_no_slot_and_are_closed(serve_runs):
    """Connections that never send a request do not count against --limit-concurrency (uvicorn's own limit counted
    them: 6 idle connections over a limit of 4 made every request a 503) and are closed after the header timeout."""
    import socket

    from nnsee.serve.server import HEADER_TIMEOUT_S

    server = start_server([serve_runs["softmax"]], "--limit-concurrency", "4")
    idle: list[socket.socket] = []
    try:
        for _ in range(6):  # keep-alive connections that never send a request
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=HEADER_TIMEOUT_S + 5))
        time.sleep(0.3)
        assert server.raw("GET", "/api/runs")[0] == 200
        t = time.perf_counter()
        for s in idle:
            assert s.recv(100) == b""  # closed by the server, with no answer: nothing was asked
        assert time.perf_counter() - t < HEADER_TIMEOUT_S + 2
    finally:
        for s in idle:
            s.close()
        stop(server)
