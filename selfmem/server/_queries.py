"""Concurrent searches embed their queries together: one model call per batch of waiting queries.

A search's cost with the real models is mostly the query's embedding (MiniLM + SmolLM2). Each
namespace has a :class:`QueryBatcher` with one worker thread per core: a search (or enrich) request
queues its text and waits; a free worker takes every text queued, embeds them in one
``Views.embed_raw`` call and puts each result in the per-process query cache that ``Memory.search``
reads first (``selfmem.retrieval._views``), so the search that follows runs no model. A small batch runs
on one intra-op thread (``threads_for``), so the workers and the group committer's add embeddings run
side by side, one core each; the embedders hold no state a call changes (private tokenizers, fixed
weights), so nothing serialises them. With one worker and one lock shared with the committer (before
issue 38's throughput work) one core did all model work while the other idled.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from concurrent.futures import Future

from ..memory import Memory
from ..retrieval import _views

__all__ = ["QueryBatcher"]


class QueryBatcher:
    """Embeds queued query texts in batches for one memory's views, filling the query cache."""

    def __init__(self, memory: Memory, *, max_batch: int = 64, workers: int | None = None) -> None:
        self.memory, self.max_batch = memory, max_batch
        self.workers = workers if workers is not None else max(1, min(4, len(os.sched_getaffinity(0))))
        self._queue: deque[tuple[str, Future[None]]] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._count_lock = threading.Lock()
        self.batches = 0
        self.embedded = 0
        self._threads = [threading.Thread(target=self._run, name="selfmem-queries", daemon=True)
                         for _ in range(self.workers)]
        for t in self._threads:
            t.start()

    def submit(self, text: str) -> Future[None]:
        """Queue ``text``; the future is done once its embedding is cached (or failed: the search then embeds)."""
        fut: Future[None] = Future()
        with self._cond:
            if self._closing:
                fut.set_result(None)
                return fut
            self._queue.append((text, fut))
            self._cond.notify()
        return fut

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                n = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
            limit = self.memory.config.max_text_chars  # longer ones are refused by the search itself
            texts = list(dict.fromkeys(t for t, _ in batch if isinstance(t, str) and t.strip() and len(t) <= limit))
            try:
                if texts:
                    self._embed(texts)
            except Exception:  # noqa: BLE001 - an input the batch could not embed: each search embeds (and reports) its own
                pass
            finally:
                for _, fut in batch:
                    fut.set_result(None)

    def _embed(self, texts: list[str]) -> None:
        views = self.memory._state.views
        fingerprints = json.dumps({r: e.fingerprint() for r, e in views.roles.items()}, sort_keys=True)
        with _views._QUERY_LOCK:
            texts = [t for t in texts if (fingerprints, t) not in _views._QUERY_CACHE]
        if not texts:
            return
        raw = views.embed_raw(texts)
        with _views._QUERY_LOCK:
            for i, t in enumerate(texts):
                _views._QUERY_CACHE[(fingerprints, t)] = {role: arr[i:i + 1] for role, arr in raw.items()}
            while len(_views._QUERY_CACHE) > _views._QUERY_CACHE_SIZE:
                _views._QUERY_CACHE.popitem(last=False)
        with self._count_lock:
            self.batches += 1
            self.embedded += len(texts)
