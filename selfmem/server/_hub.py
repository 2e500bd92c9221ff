"""The memories a server owns (one per namespace) and the group commit of their adds.

:class:`Hub` opens a namespace's :class:`~selfmem.Memory` on first use and closes them all on shutdown.
:class:`Committer` is each namespace's one writer thread: concurrent single adds wait in a bounded
queue; the thread takes everything queued (after a short window, up to ``max_batch``) and commits it
with one ``add_many`` call, so the models run once per batch instead of once per request. A request
is answered only after its batch was committed; a full queue raises :class:`ServerBusyError` (429).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .._config import MemoryConfig, derived_schema
from .._errors import InvalidInputError, MemoryClosedError, SelfmemError
from .._types import Metadata
from ..memory import Memory
from ..memory import _validate as v
from ._errors import NamespaceNotFoundError, ServerBusyError
from ._queries import QueryBatcher
from ._wire import NAMESPACE_RE, check_namespace

__all__ = ["Hub", "Committer", "PendingAdd", "NAMESPACE_RE", "check_namespace", "namespace_schema"]

log = logging.getLogger("selfmem.server")
_MARK = "config.toml"  # every memory directory has one (a PostgreSQL memory's holds only caches besides)


def namespace_schema(prefix: str, name: str) -> str:
    """The PostgreSQL schema of namespace ``name``: the prefix, the name made an SQL name, and a digest of the
    exact name (``Team-A`` and ``team_a`` get different schemas); at most 63 characters."""
    return derived_schema(prefix, name, name)


@dataclass
class PendingAdd:
    """One single add waiting for its batch (the arguments of ``Memory.add``)."""

    text: str
    kind: str = "output"
    metadata: Metadata | None = None
    session: str | None = None
    importance: float = 1.0
    parents: Sequence[int] = ()
    own_embedding: list[float] | None = None
    created_at: datetime | None = None
    key: str | None = None
    future: Future[int] = field(default_factory=Future)

    def group(self) -> bool:
        """Adds of one group are committed together (all with an own embedding, or none)."""
        return self.own_embedding is None


class Committer:
    """A namespace's writer thread: batches queued single adds into ``add_many`` calls (group commit).

    Parameters
    ----------
    memory : Memory
    window : float
        Seconds to wait after the first queued add for others to join its batch.
    max_batch : int
        Adds committed in one call at most.
    max_queue : int
        Adds waiting at most; more raise ServerBusyError (HTTP 429).
    """

    def __init__(self, memory: Memory, *, window: float = 0.002, max_batch: int = 256, max_queue: int = 4096) -> None:
        self.memory, self.window, self.max_batch, self.max_queue = memory, window, max_batch, max_queue
        self._queue: deque[PendingAdd] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self.batches = 0
        self.committed = 0
        self._thread = threading.Thread(target=self._run, name="selfmem-committer", daemon=True)
        self._thread.start()

    def submit(self, item: PendingAdd) -> Future[int]:
        """Queue one add; its future gets the id once the batch holding it is committed."""
        with self._cond:
            if self._closing:
                raise MemoryClosedError("the server is shutting down; retry against the restarted server")
            if len(self._queue) >= self.max_queue:
                raise ServerBusyError(f"{len(self._queue)} adds are waiting to be committed; retry in a second")
            self._queue.append(item)
            self._cond.notify()
        return item.future

    @property
    def queued(self) -> int:
        """Adds waiting to be committed."""
        return len(self._queue)

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    def _take(self) -> list[PendingAdd] | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
        if self.window > 0 and not self._closing:
            time.sleep(self.window)  # let concurrent adds join this batch
        with self._cond:
            n = min(len(self._queue), self.max_batch)
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            groups: dict[bool, list[PendingAdd]] = {}
            for item in batch:
                groups.setdefault(item.group(), []).append(item)
            for items in groups.values():
                self._commit(items)

    def _commit(self, items: list[PendingAdd]) -> None:
        # the same key twice in one batch (a client retrying while its first try waits) is one add
        first: dict[str, PendingAdd] = {}
        unique, copies = [], []
        for it in items:
            if isinstance(it.key, str) and it.key in first:
                copies.append((it, first[it.key]))
            else:
                if isinstance(it.key, str):
                    first[it.key] = it
                unique.append(it)
        ids: list[int] | None = None
        try:
            ids = self._add(unique)
        except SelfmemError as exc:
            if len(unique) == 1:
                unique[0].future.set_exception(exc)
            else:  # nothing was written (add_many is all or nothing): commit one at a time, so only the bad add fails
                for it in unique:
                    self._commit([it])
        except BaseException as exc:  # a bug or a broken store: every waiter gets the error, the thread goes on
            for it in unique:
                it.future.set_exception(exc)
        if ids is not None:
            for it, rid in zip(unique, ids):
                it.future.set_result(rid)
            self.batches += 1
            self.committed += len(unique)
        for copy, orig in copies:
            _follow(orig.future, copy.future)

    def _add(self, items: list[PendingAdd]) -> list[int]:
        return add_mixed(self.memory, items)


def add_mixed(mem: Memory, items: list[PendingAdd]) -> list[int]:
    """``Memory.add_many`` for single adds of different sessions (and times): each is validated as its own
    add, then all are embedded in one batch and written in one transaction (add_many takes one session).
    Keys already stored return their first id, as in ``add_many``; nothing is written if any add is invalid.

    The texts are embedded before the handle's lock is taken, so searches (and the query batcher's model
    calls, on the other core) go on meanwhile; only the write holds the lock."""
    texts = [v.check_text(it.text, mem.config.max_text_chars) for it in items]
    own = None
    if items[0].own_embedding is not None:
        if mem._state.views.own is None:
            raise InvalidInputError("own_embedding given but this memory has no own model (config.embedding.own)")
        own = v.check_vectors([it.own_embedding for it in items], len(items), mem._state.views.own.dim, "own_embedding")
    mem._state.same_process()
    raw = mem._state.views.embed_raw(texts, own)
    with mem._state.lock:  # what Memory's guard does for add_many: open, writable, finished refits swapped in
        store = mem._state.writable()
        mem._state.poll()
        rows = []
        for it in items:
            rows += v.check_batch([it.text], [it.kind], [it.metadata], it.session, [it.importance], [it.parents],
                                  kinds=mem.config.kinds, max_chars=mem.config.max_text_chars,
                                  existing=store.existing, created_at=None if it.created_at is None else [it.created_at],
                                  keys=[it.key])
        done = store.ids_of_keys([r.key for r in rows if r.key is not None])
        fresh = [i for i, r in enumerate(rows) if r.key not in done]
        new_ids = iter(mem._writer.add_rows([rows[i] for i in fresh], None, False, {r: a[fresh] for r, a in raw.items()})
                       if fresh else [])
        return [done[r.key] if r.key in done else next(new_ids) for r in rows]


def _follow(src: Future[int], dst: Future[int]) -> None:
    def copy(f: Future[int]) -> None:
        exc = f.exception()
        if exc is not None:
            dst.set_exception(exc)
        else:
            dst.set_result(f.result())

    src.add_done_callback(copy)


class Hub:
    """The namespaces under ``root``: each a memory directory, opened once and kept open.

    Parameters
    ----------
    root : Path
        The directory holding one memory directory per namespace.
    config : MemoryConfig, optional
        The configuration of namespaces created by this server (default: ``MemoryConfig()``).
    committer : callable, optional
        Makes the Committer of a newly opened memory (window and limits).
    max_open : int
        Namespaces kept open at most: opening one more closes the least recently used idle one (a memory
        holds its index, keywords, topic model and a few threads).
    idle_close : float
        Seconds after its last request at which an open namespace is closed (0: never); it reopens on the
        next request.
    """

    def __init__(self, root: Path, config: MemoryConfig | None = None,
                 committer: Callable[[Memory], Committer] = Committer, *, max_open: int = 64,
                 idle_close: float = 600.0) -> None:
        if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
            raise InvalidInputError(f"max_open must be an integer >= 1, got {max_open!r}")
        if isinstance(idle_close, bool) or not isinstance(idle_close, (int, float)) or idle_close < 0:
            raise InvalidInputError(f"idle_close must be a number of seconds >= 0, got {idle_close!r}")
        self.root, self.config, self._make_committer = Path(root), config, committer
        self.max_open, self.idle_close = max_open, float(idle_close)
        self._open: dict[str, tuple[Memory, Committer]] = {}
        self._queries: dict[str, QueryBatcher] = {}
        self._used: dict[str, float] = {}  # monotonic time of each open namespace's last request
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        if self.idle_close:
            self._reaper = threading.Thread(target=self._reap, name="selfmem-namespace-reaper", daemon=True)
            self._reaper.start()

    def exists(self, name: str) -> bool:
        return name in self._open or (self.root / check_namespace(name) / _MARK).is_file()

    def opened(self, name: str) -> tuple[Memory, Committer] | None:
        """The memory and committer of ``name`` if it is open already (never blocks)."""
        found = self._open.get(name)
        if found is not None:
            self._used[name] = time.monotonic()
        return found

    def default_config(self) -> MemoryConfig:
        return self.config if self.config is not None else MemoryConfig()

    def namespace_config(self, name: str) -> MemoryConfig | None:
        """The config of a new namespace. On a shared store (PostgreSQL) every namespace gets a schema of its
        own, always: ``<prefix>_<name>_<digest>``, the prefix being the config's ``store_schema`` (default
        ``selfmem_ns``), so tenants never share tables and every server over that database serves one memory
        per name."""
        cfg = self.config
        if cfg is None or cfg.store == "duckdb":
            return cfg
        return cfg.replace(store_schema=namespace_schema(cfg.store_schema or "selfmem_ns", name))

    def get(self, name: str, *, create: bool = False) -> tuple[Memory, Committer]:
        """The open memory and committer of namespace ``name`` (created when ``create``)."""
        check_namespace(name)
        found = self._open.get(name)
        if found is not None:
            self._used[name] = time.monotonic()
            return found
        with self._lock:
            if self._closed:
                raise MemoryClosedError("the server is shutting down; retry against the restarted server")
            found = self._open.get(name)
            if found is not None:
                return found
            path = self.root / name
            if not (path / _MARK).is_file():
                if not create:
                    raise NamespaceNotFoundError(f"no namespace {name!r} on this server; a token with the write "
                                                 "role creates it (RemoteMemory(..., create=True) or a first add)")
                mem = Memory(path, self.namespace_config(name), progress=False)
            else:
                mem = Memory(path, progress=False)
            committer = self._make_committer(mem)
            self._queries[name] = QueryBatcher(mem)
            found = self._open[name] = (mem, committer)
            self._used[name] = time.monotonic()
            over = len(self._open) > self.max_open
        if over:  # close the least recently used idle namespace, off this request's path
            threading.Thread(target=self.evict, name="selfmem-namespace-evict", daemon=True).start()
        return found

    def evict(self, now: float | None = None) -> list[str]:
        """Close the namespaces idle for ``idle_close`` seconds and, beyond ``max_open``, the least recently used
        ones idle for a second or more with nothing queued; returns their names. A request to one reopens it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            order = sorted(self._open, key=lambda n: self._used.get(n, 0.0))
            idle = [n for n in order if not self._open[n][1].queued]
            victims = [n for n in idle if self.idle_close and now - self._used.get(n, 0.0) >= self.idle_close]
            for n in idle:
                if len(self._open) - len(victims) <= self.max_open:
                    break
                if n not in victims and now - self._used.get(n, 0.0) >= 1.0:
                    victims.append(n)
            closing = [(self._open.pop(n), self._queries.pop(n, None)) for n in victims]
            for n in victims:
                self._used.pop(n, None)
        for (mem, committer), batcher in closing:
            if batcher is not None:
                batcher.close()
            committer.close()
            mem.close()
        return victims

    def _reap(self) -> None:
        while not self._stop.wait(max(0.05, self.idle_close / 4)):
            try:
                self.evict()
            except SelfmemError as exc:  # a memory that failed to close: logged, the server goes on
                log.warning("closing an idle namespace failed: %s", exc)

    def queries(self, name: str) -> QueryBatcher | None:
        """The query batcher of an open namespace (None if it is not open)."""
        return self._queries.get(name)

    def names(self) -> list[str]:
        """Namespaces open now or present on disk."""
        on_disk = {p.name for p in self.root.iterdir() if (p / _MARK).is_file()} if self.root.is_dir() else set()
        return sorted(on_disk | set(self._open))

    def close(self) -> None:
        """Commit every queued add, then close every memory (saving its derived files)."""
        self._stop.set()
        if self._reaper is not None and self._reaper is not threading.current_thread():
            self._reaper.join()
        with self._lock:
            self._closed = True
            opened, self._open = list(self._open.values()), {}
            batchers, self._queries = list(self._queries.values()), {}
        for batcher in batchers:
            batcher.close()
        for mem, committer in opened:
            committer.close()
            mem.close()
