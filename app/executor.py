"""The executor that runs model work off the IOLoop, behind a bounded queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Overloaded(RuntimeError):
    """The queue in front of the models is full; the caller answers 503 with Retry-After."""


class ModelExecutor:
    """A fixed thread pool plus an admission limit of ``workers + queue_size`` jobs in flight.

    Admission is counted on the IOLoop thread, so no lock is needed; the pool itself is
    Python's. When the limit is reached ``submit`` raises ``Overloaded`` at once instead of
    letting latency grow without bound.
    """

    def __init__(self, workers: int, queue_size: int, name: str = "models") -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.queue_size = queue_size
        self.capacity = workers + queue_size
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=name
        )
        self._in_flight = 0
        self._running = 0

    @property
    def in_flight(self) -> int:
        """Jobs admitted and not finished (running plus waiting)."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Jobs admitted and still waiting for a thread."""
        return max(0, self._in_flight - self._running)

    async def submit(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the pool, or raise ``Overloaded`` if the queue is full."""
        if self._in_flight >= self.capacity:
            raise Overloaded(f"{self._in_flight} jobs in flight (limit {self.capacity})")
        self._in_flight += 1
        loop = asyncio.get_running_loop()

        def run() -> T:
            loop.call_soon_threadsafe(self._started)
            return fn(*args)

        try:
            return await loop.run_in_executor(self._pool, run)
        finally:
            self._in_flight -= 1
            self._running = max(0, self._running - 1)

    def _started(self) -> None:
        self._running += 1

    def run_blocking(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Schedule work that is not a request (model loading) without admission control."""
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
