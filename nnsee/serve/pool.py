"""The live page's work off the event loop: image decoding and the model's work run in a small fixed set of threads.

At most ``workers`` jobs run at once; at most ``queue`` more wait, each at most ``wait`` seconds for a worker;
anything beyond is :class:`Busy` (the server answers 503 with ``Retry-After``). So a flood of large uploads costs
at most ``workers`` decodes of memory at a time, and the event loop stays free for cheap requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WORKERS = 2
QUEUE = 32
WAIT_S = 10.0


class Busy(RuntimeError):
    """No worker free within the wait, or too many jobs already waiting."""


class WorkPool:
    def __init__(self, workers: int = WORKERS, queue: int = QUEUE, wait: float = WAIT_S) -> None:
        self.workers, self.queue, self.wait = workers, queue, wait
        self.waiting = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nnsee-work")
        self._free: asyncio.Semaphore | None = None  # made on the server's event loop

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread, or :class:`Busy`."""
        free = self._free = self._free or asyncio.Semaphore(self.workers)
        if not free.locked():
            await free.acquire()  # a worker is free: taken at once
        elif self.waiting >= self.queue:
            raise Busy(f"busy: {self.workers} images in work and {self.waiting} waiting; retry in a moment")
        else:
            self.waiting += 1
            try:
                await asyncio.wait_for(free.acquire(), self.wait)
            except TimeoutError:
                raise Busy(f"busy: no worker free within {self.wait:g} s; retry in a moment") from None
            finally:
                self.waiting -= 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        finally:
            free.release()
