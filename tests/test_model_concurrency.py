"""Model calls side by side: small calls in several threads, the server's add embeddings outside the memory's
lock, several query-batch workers (issue 38's throughput: one core did all model work before)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from helpers import hash_cfg

from selfmem import HashEmbedder, Memory
from selfmem.retrieval import _embedders
from selfmem.server._hub import Committer, PendingAdd
from selfmem.server._queries import QueryBatcher

torch = pytest.importorskip("torch")


class Gate(HashEmbedder):
    """The hash embedder, except that a call embedding a text with ``marker`` in it waits for ``release``."""

    def __init__(self, inner: HashEmbedder, marker: str) -> None:
        super().__init__(inner.dim, inner.seed)
        self.marker = marker
        self.entered = threading.Event()
        self.release = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if any(self.marker in t for t in texts):
            with self._lock:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
            self.entered.set()
            try:
                assert self.release.wait(30), "the gate was never released"
            finally:
                with self._lock:
                    self.inside -= 1
        return super().embed(texts, progress=progress)


def test_small_model_calls_in_two_threads_run_at_once_on_one_thread_each():
    both_inside = threading.Barrier(2, timeout=20)  # broken if the second call waits for the first to end
    seen: list[int] = []
    errors: list[BaseException] = []

    def small() -> None:
        try:
            with _embedders.threads_for(1):
                seen.append(torch.get_num_threads())
                both_inside.wait()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=small) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and seen == [1, 1], (errors, seen)

    bulk: list[int] = []

    def big() -> None:  # a fresh thread after the small calls: bulk work gets the process's thread count
        with _embedders.threads_for(_embedders.SMALL_BATCH + 1):
            bulk.append(torch.get_num_threads())

    t = threading.Thread(target=big)
    t.start()
    t.join()
    assert bulk == [_embedders._BULK_THREADS]


def gated(mem: Memory) -> Gate:
    """12 notes in ``mem``, then its general embedder held at texts with "SLOW" in them."""
    mem.add_many([f"note {i} about grids and colours" for i in range(12)], kind="note")
    gate = Gate(mem._state.views.general, "SLOW")
    mem._state.views.general = gate
    return gate


def test_the_committer_embeds_outside_the_memory_lock_so_searches_go_on(tmp_path):
    with Memory(tmp_path / "m", hash_cfg(), progress=False) as mem:
        gate = gated(mem)
        committer = Committer(mem, window=0.0)
        try:
            fut = committer.submit(PendingAdd("a SLOW note about grids", kind="note", key="slow-1"))
            assert gate.entered.wait(20)
            found: list[int] = []
            searcher = threading.Thread(target=lambda: found.extend(h.record.id for h in mem.search("grids", k=3)))
            searcher.start()
            searcher.join(20)
            done_while_embedding = not searcher.is_alive()
            gate.release.set()
            rid = fut.result(30)
            searcher.join(20)
        finally:
            gate.release.set()
            committer.close()
        assert done_while_embedding, "a search waited for an add's embedding"
        assert len(found) == 3 and mem.get(rid).text == "a SLOW note about grids"
        assert mem.add("a SLOW note about grids", kind="note", key="slow-1") == rid  # the key is kept


def test_query_batches_are_embedded_by_several_workers_at_once(tmp_path):
    with Memory(tmp_path / "m", hash_cfg(), progress=False) as mem:
        gate = gated(mem)
        batcher = QueryBatcher(mem, workers=2)
        try:
            first = batcher.submit("SLOW query one")
            assert gate.entered.wait(20)
            second = batcher.submit("another SLOW query")  # the first worker is held: the second takes this
            deadline = threading.Event()
            for _ in range(200):
                if gate.most_inside == 2:
                    break
                deadline.wait(0.05)
            gate.release.set()
            first.result(20)
            second.result(20)
        finally:
            gate.release.set()
            batcher.close()
        assert gate.most_inside == 2 and batcher.embedded == 2 and batcher.batches == 2


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are set on Linux only")
def test_refits_run_at_a_lower_priority_than_the_thread_that_starts_them():
    from selfmem.memory._parts import BACKGROUND_NICE, Refit

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    refit = Refit("test", background=True)
    got: list[int] = []
    refit.start(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), got.append)
    refit.join()
    assert refit.poll() and got == [min(19, mine + BACKGROUND_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller's is unchanged
