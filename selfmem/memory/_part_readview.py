"""The read-view part: publishes the store for readers (see :mod:`selfmem.store._readview`).

Rules: a writer publishes when it opens a memory whose view is missing or behind, then whenever
records changed, at most every ``MemoryConfig.view_interval`` seconds and no more often than 20 times
the last publication took (so publishing costs a writer at most 5% of its time, however large the
memory), and at ``close()`` (inline: a closed memory's view equals its store). With background refits
a publisher thread does this from a read snapshot, also while the writer sits idle; with
``background=False`` it happens inline in the write that makes it due. A delete or a re-embedding
makes the next publication a full one.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np


from .._types import JSON
from ._parts import AddBatch, Part, PartContext, report_failure
from ..store import DATABASE_ERRORS
from ..store._readview import VIEW_DIR, behind, publish, read_manifest, retire

__all__ = ["ReadViewPart", "COST_FACTOR"]

COST_FACTOR = 20.0
"""Publish no more often than this many times the duration of the last publication."""


class ReadViewPart(Part):
    """Keeps ``view/`` a few seconds behind the store while a writer writes."""

    name = "read view"
    files = (VIEW_DIR,)

    def __init__(self, ctx: PartContext) -> None:
        super().__init__(ctx)
        self.manifest: dict[str, JSON] | None = None
        self._dirty = False
        self._full = False
        self._last = 0.0  # monotonic time of the last publication's start
        self._cost = 0.0  # seconds the last publication took
        self._mutex = threading.Lock()  # one publication at a time; guards the fields above
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._topics_seen = -1  # the store's topics_generation at the last publication (topic swaps change tables)

    # -- contract -------------------------------------------------------------------
    def open(self) -> None:
        if not self.ctx.writable or self.ctx.store.shared:  # a shared store's readers connect to it directly
            return
        self.manifest = read_manifest(self.ctx.directory)
        self._dirty = behind(self.manifest, self.ctx.store) is not None
        self._topics_seen = self.ctx.store.topics_generation
        if self.manifest is None:  # publish before the first write: a reader must not copy a store newer than
            self._publish(self.ctx.store)  # the view it opens next (the copy would show records the view lacks)
        if self.ctx.config.background:
            self._thread = threading.Thread(target=_publisher, args=(weakref.ref(self), self._wake),
                                            name="selfmem-view-publisher", daemon=True)
            self._thread.start()
            self._wake.set()

    def on_add(self, batch: AddBatch) -> None:
        self._changed(full=False)

    def on_delete(self, ids: Sequence[int] | np.ndarray) -> None:
        self._changed(full=True)

    def maintain(self) -> None:
        if self.ctx.writable and not self.ctx.store.shared and self._thread is None and self._due():
            self._publish(self.ctx.store)
        self._report()

    def poll(self) -> bool:
        self._report()  # the publisher thread's failure reaches the caller's next call, read or write
        return False

    def rebuild(self) -> None:
        self._changed(full=True)
        if not self.ctx.store.shared:
            self._publish(self.ctx.store)

    def publish_pending(self) -> None:
        """Publish now (inline) if anything changed since the last publication."""
        if not self.ctx.store.shared and self._pending():
            self._publish(self.ctx.store)

    def wait(self) -> None:
        with self._mutex:  # an in-flight publication finishes
            pass
        self._report()

    @property
    def busy(self) -> bool:
        return False

    def stop(self) -> None:
        """End the publisher thread (an in-flight publication finishes first)."""
        if self._thread is not None:
            self._stop = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def save(self) -> None:
        """At close: stop the publisher and publish what changed since its last publication (inline)."""
        self.stop()
        self.publish_pending()
        self._report()

    def notes(self) -> list[str]:
        manifest = self.ctx.store.view_manifest
        if self.ctx.writable or manifest is None:
            return []
        at = float(manifest["published_at"])
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
        return [f"read-only: the memory as its writer last published it, at {stamp} (a writer publishes every "
                "few seconds while it writes, and when it closes)"]

    # -- publishing -----------------------------------------------------------------
    def _changed(self, *, full: bool) -> None:
        self._dirty = True
        self._full = self._full or full
        self._wake.set()

    def _pending(self) -> bool:
        """Something changed since the last publication (records, or a topic refit's topics and edges)."""
        if self.ctx.store.topics_generation != self._topics_seen:
            self._dirty = True
        return self._dirty

    def _due(self) -> bool:
        throttle = COST_FACTOR * self._cost if self._thread is not None else 0.0  # inline: the interval only
        return self._pending() and time.monotonic() - self._last >= max(self.ctx.config.view_interval, throttle)

    def _publish(self, store: Any) -> None:
        with self._mutex:
            previous, full = self.manifest, self._full
            self._dirty = self._full = False
            self._topics_seen = self.ctx.store.topics_generation
            start = self._last = time.monotonic()
            try:
                with store.read_transaction():
                    manifest = publish(store, self.ctx.directory, previous, full=full)
                retire(self.ctx.directory, manifest, previous)
            except BaseException:
                self._dirty, self._full = True, self._full or full
                raise
            self.manifest = manifest
            self._cost = time.monotonic() - start

    def _step(self) -> bool:
        """One round of the publisher thread; False when it should stop."""
        if self._stop:
            return False
        if not self._due():
            if self._dirty:  # due later: come back then
                self._wake.set()
                time.sleep(min(0.5, max(self.ctx.config.view_interval, COST_FACTOR * self._cost)))
            return True
        try:
            reader = self.ctx.store.reader()
        except DATABASE_ERRORS + (AttributeError,):  # the store was closed under us
            return False
        except BaseException as exc:  # e.g. MemoryError: reported by the writer's next call; retried when due
            self._error = exc
            return True
        try:
            self._publish(reader)
        except BaseException as exc:  # any failure: reported once by the writer's next call; retried when due
            self._error = exc
        finally:
            reader.close()
        return True

    def _report(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            report_failure("publishing the read view", error,
                           "readers see the previous view until the next publication succeeds")


def _publisher(ref: weakref.ref[ReadViewPart], wake: threading.Event) -> None:
    """The publisher thread's loop. It holds its part weakly, so a Memory dropped without ``close()`` is
    collected (and its thread ends) as usual."""
    while True:
        part = ref()
        if part is None:
            return
        timeout = max(part.ctx.config.view_interval, 0.05)
        del part
        wake.wait(timeout=timeout)
        wake.clear()
        part = ref()
        if part is None or not part._step():
            return
        del part
