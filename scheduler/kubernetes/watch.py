"""List-then-watch that survives ``410 Gone``: the informer loop, without a cache library.

:func:`watch_objects` lists (or resumes from a given ``resourceVersion``),
watches, and when the server answers ``410 Gone`` (its history was compacted
past our version, as an HTTP status or an ``ERROR`` event) lists again and
yields what changed meanwhile — ``ADDED``/``MODIFIED`` for new or changed
objects, ``DELETED`` for vanished ones, each marked ``relisted`` — before it
resumes watching from the new list's version. Streams the server closes are
resumed; ``BOOKMARK`` events only move the version on. A dropped connection is
retried ``max_retries`` times in a row before :class:`~dcops.errors.SchedulerError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dcops.kube import Kind, KubeApi, KubeApiError, Obj


@dataclass(frozen=True)
class WatchEvent:
    """One change: ``type`` is ADDED, MODIFIED or DELETED; ``obj`` the object after it."""

    type: str
    obj: Obj
    relisted: bool = False  # synthesized from a relist after 410 Gone

    @property
    def name(self) -> str:
        return str(_meta(self.obj).get("name", ""))


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _rv(obj: Obj) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


def watch_objects(
    api: KubeApi,
    kind: Kind,
    namespace: str | None,
    *,
    label_selector: str | None = None,
    resource_version: str | None = None,
    initial: bool = True,
    timeout_s: int = 60,
    deadline_s: float | None = None,
    stop: Callable[[], bool] | None = None,
    max_retries: int = 5,
    backoff_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[WatchEvent]:
    """Changes to ``kind`` objects in ``namespace`` matching ``label_selector``.

    Without ``resource_version`` the current objects are listed first (yielded as
    ``ADDED`` when ``initial``). Ends when ``stop()`` says so (checked after each
    event and each stream) or after ``deadline_s`` seconds; runs forever otherwise.
    """
    end = None if deadline_s is None else clock() + deadline_s
    known: dict[str, Obj] = {}

    def relist() -> tuple[list[WatchEvent], str]:
        items, list_rv = api.list(kind, namespace, label_selector=label_selector)
        current = {str(_meta(i).get("name")): i for i in items}
        events = [WatchEvent("DELETED", obj, True) for n, obj in known.items() if n not in current]
        for name, obj in current.items():
            if name not in known:
                events.append(WatchEvent("ADDED", obj, True))
            elif _rv(known[name]) != _rv(obj):
                events.append(WatchEvent("MODIFIED", obj, True))
        known.clear()
        known.update(current)
        return events, list_rv

    if resource_version is None:
        first, rv = relist()
        if initial:
            yield from (WatchEvent(e.type, e.obj, False) for e in first)
    else:
        rv = resource_version
    failures = 0
    while not (stop is not None and stop()):
        left = None if end is None else end - clock()
        if left is not None and left <= 0:
            return
        per_call = timeout_s if left is None else max(1, min(timeout_s, int(left + 0.999)))
        try:
            for raw in api.watch(
                kind, namespace, rv, label_selector=label_selector, timeout_s=per_call
            ):
                obj = raw.get("object")
                etype = str(raw.get("type", ""))
                if not isinstance(obj, dict):
                    continue
                rv = _rv(obj) or rv
                if etype == "BOOKMARK":
                    continue
                name = str(_meta(obj).get("name"))
                if etype == "DELETED":
                    known.pop(name, None)
                else:
                    known[name] = obj
                failures = 0
                yield WatchEvent(etype, obj)
                if stop is not None and stop():
                    return
        except KubeApiError as exc:
            if exc.status == 410:
                events, rv = relist()
                yield from events
            elif exc.status == 0 and failures < max_retries:
                failures += 1
                sleep(backoff_s * failures)
            else:
                raise
