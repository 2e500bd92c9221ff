"""Where a search's time goes: named stages timed only while a caller collects them.

The search pipeline marks its stages with :func:`stage`; outside :func:`collect_stages` a stage costs
one context-variable read, so the pipeline runs unchanged. ``benchmarks/search_latency.py`` collects
them to break a search's latency down (embed, index, keyword, store, fusion, topics, graph).

>>> with collect_stages() as spent:
...     with stage("embed"):
...         pass
...         with stage("store"):
...             pass
>>> sorted(spent)
['embed', 'store']
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["stage", "collect_stages"]

_SPENT: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("selfmem_stages", default=None)
_OPEN: contextvars.ContextVar[list[str]] = contextvars.ContextVar("selfmem_open_stages")


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the seconds spent in the block to ``name`` of the collection in progress (if any); a stage opened
    inside another counts to itself only (the records ranking reads count to ``store``, not ``fusion``)."""
    spent = _SPENT.get()
    if spent is None:
        yield
        return
    opened = _OPEN.get()
    t = time.perf_counter()
    opened.append(name)
    try:
        yield
    finally:
        opened.pop()
        dt = time.perf_counter() - t
        spent[name] = spent.get(name, 0.0) + dt
        if opened:
            spent[opened[-1]] = spent.get(opened[-1], 0.0) - dt


@contextlib.contextmanager
def collect_stages() -> Iterator[dict[str, float]]:
    """Collect the stages run in the block: a dict of stage name -> seconds, filled as they run."""
    spent: dict[str, float] = {}
    token = _SPENT.set(spent)
    opened = _OPEN.set([])
    try:
        yield spent
    finally:
        _OPEN.reset(opened)
        _SPENT.reset(token)
