"""Run one command on many hosts at once, with a deadline that holds when hosts hang.

``run_many`` is the health sweep's engine (the job ClusterShell's ``clush``
does): a fixed set of daemon worker threads (``concurrency``) takes hosts from
a queue and calls the runner; the calling thread collects results as they come
and hands each to ``on_result`` (so a progress bar is drawn from one thread).

Time limits:

* each host gets ``timeout_s``, cut to what is left of the deadline (so the
  runner kills its remote command by then too);
* ``deadline_s`` bounds the whole call: hosts without a result by then get a
  :class:`dcops.errors.CommandTimeout` and the call returns at once. Workers
  still blocked on a hung host are abandoned (daemon threads, never joined) and
  start no new host.

A runner error (:class:`dcops.errors.RemoteError`) becomes that host's result;
another :class:`dcops.errors.DcopsError` (a bad ssh_config entry for that host)
becomes a ``RemoteError`` with the same message. Any other exception from a
runner is a bug in it; it is logged with its traceback and also recorded as a
``RemoteError`` for that host, so one bad host cannot sink a sweep of thousands.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from dcops.errors import CommandTimeout, DcopsError, RemoteError
from dcops.measurements import CommandResult
from dcops.ports import RemoteRunner

log = logging.getLogger(__name__)

Outcome = CommandResult | RemoteError
OnResult = Callable[[str, Outcome], object]

#: Default number of hosts worked on at once (clush's default fanout too).
DEFAULT_CONCURRENCY = 64


def run_many(
    runner: RemoteRunner,
    hosts: Iterable[str],
    argv: Sequence[str],
    *,
    timeout_s: float,
    concurrency: int = DEFAULT_CONCURRENCY,
    deadline_s: float | None = None,
    stdin: str | None = None,
    on_result: OnResult | None = None,
) -> dict[str, Outcome]:
    """Run ``argv`` on every host; return ``{host: result or error}`` in the hosts' order.

    Duplicate hosts run once. ``on_result(host, outcome)`` is called in the
    calling thread, once per host, as outcomes arrive (deadline misses last).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if timeout_s <= 0 or (deadline_s is not None and deadline_s <= 0):
        raise ValueError("timeout_s and deadline_s must be > 0")
    order = list(dict.fromkeys(hosts))
    if not order:
        return {}
    args = tuple(argv)
    start = time.monotonic()
    deadline = None if deadline_s is None else start + deadline_s

    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for host in order:
        todo.put(host)
    done: queue.SimpleQueue[tuple[str, Outcome]] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                host = todo.get_nowait()
            except queue.Empty:
                return
            budget = timeout_s if deadline is None else min(timeout_s, deadline - time.monotonic())
            if budget <= 0:
                return  # the collector marks it as missed
            done.put((host, _run_one(runner, host, args, budget, stdin)))

    for index in range(min(concurrency, len(order))):
        threading.Thread(target=work, name=f"dcops-fanout-{index}", daemon=True).start()

    results: dict[str, Outcome] = {}
    while len(results) < len(order):
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            break
        try:
            host, outcome = done.get(timeout=wait)
        except queue.Empty:
            break
        results[host] = outcome
        if on_result is not None:
            on_result(host, outcome)
    stop.set()
    for host in order:
        if host not in results:
            missed = CommandTimeout(host, f"no result within the {deadline_s:g}s deadline")
            results[host] = missed
            if on_result is not None:
                on_result(host, missed)
    return {host: results[host] for host in order}


def _run_one(
    runner: RemoteRunner, host: str, args: tuple[str, ...], timeout_s: float, stdin: str | None
) -> Outcome:
    try:
        return runner.run(host, args, timeout_s=timeout_s, stdin=stdin)
    except RemoteError as exc:
        return exc
    except DcopsError as exc:  # e.g. a ConfigError for this host's ssh_config entry
        error = RemoteError(host, str(exc))
        error.__cause__ = exc
        return error
    except Exception as exc:
        log.exception("%s: runner %s failed unexpectedly", host, type(runner).__name__)
        error = RemoteError(host, f"unexpected {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error
