"""The work pool: at most ``workers`` jobs at once, a bounded queue with a bounded wait, :class:`Busy` beyond; a
full pool is the explain route's 503 with ``Retry-After`` and the security headers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from serve.serve_util import band
from serve.test_serve_security_headers import _message, assert_secure

from nnsee.serve.app import create_app
from nnsee.serve.pool import Busy, WorkPool


def test_at_most_workers_run_at_once_and_the_queue_is_bounded():
    release = threading.Event()
    running: list[int] = []
    peak = [0]

    def job() -> int:
        running.append(1)
        peak[0] = max(peak[0], len(running))
        release.wait(5)
        running.pop()
        return 7

    async def main() -> list[object]:
        pool = WorkPool(workers=2, queue=2, wait=0.5)
        tasks = [asyncio.create_task(pool.run(job)) for _ in range(4)]  # 2 run, 2 wait
        await asyncio.sleep(0.1)
        with pytest.raises(Busy, match="2 waiting"):  # the queue is full: refused at once
            await pool.run(job)
        t = time.perf_counter()
        done = await asyncio.gather(*tasks, return_exceptions=True)  # the 2 waiting give up after 0.5 s
        assert 0.4 < time.perf_counter() - t < 2
        release.set()
        return done

    threading.Timer(1.0, release.set).start()
    done = asyncio.run(main())
    assert done[:2] == [7, 7] and all(isinstance(d, Busy) for d in done[2:])
    assert peak[0] == 2


def test_a_full_pool_is_503_with_retry_after(serve_runs):
    testclient = pytest.importorskip("starlette.testclient")
    pool = WorkPool(workers=1, queue=0)
    pool._free = asyncio.Semaphore(0)  # its one worker taken
    app = create_app([serve_runs["softmax"]], allowed_hosts=["testserver"], pool=pool)
    with testclient.TestClient(app) as client:
        r = client.post("/api/explain?run=softmax", content=band(0), headers={"Content-Type": "image/png"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["detail"]
        assert_secure(_message(r.headers.multi_items()))
        assert client.get("/api/runs").status_code == 200
