"""A fixed pool of worker threads, each owning one :class:`ApiContext` for its lifetime.

The job service and the audit log hold SQLite connections, which belong to the
thread that opened them; backends shell out or make HTTP calls and block. So
the event loop hands every blocking step to this pool: each thread builds its
context on first use (through the factory), runs tasks one at a time, and
closes its context when the pool stops.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from scheduler.api.ports import ApiContext, ContextFactory

T = TypeVar("T")
_log = logging.getLogger("dcops.api")
_Task = tuple[Callable[[ApiContext], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class WorkerPool:
    """``await pool.run(fn)`` runs ``fn(context)`` in a worker thread."""

    def __init__(self, factory: ContextFactory, workers: int = 8) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._factory = factory
        self._size = workers
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._stopped:
                return
            for i in range(self._size):
                thread = threading.Thread(target=self._work, name=f"dcops-api-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    async def run(self, fn: Callable[[ApiContext], T]) -> T:
        if self._stopped:
            raise RuntimeError("the worker pool is stopped")
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, loop, future))
        return await future

    def _work(self) -> None:
        context: ApiContext | None = None
        try:
            while True:
                task = self._queue.get()
                if task is None:
                    return
                fn, loop, future = task
                try:
                    if context is None:
                        context = self._factory()
                    result = fn(context)
                except BaseException as exc:  # noqa: BLE001 -- handed to the awaiting request
                    loop.call_soon_threadsafe(_settle, future, None, exc)
                else:
                    loop.call_soon_threadsafe(_settle, future, result, None)
        finally:
            if context is not None:
                try:
                    context.close()
                except Exception:  # noqa: BLE001 -- closing must not kill shutdown
                    _log.exception("closing an API worker context failed")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let queued tasks finish, then close every thread's context."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout_s)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
