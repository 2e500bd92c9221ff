"""Test helpers shared by every test module: the hash-embedder configs and a writer in another process.

``hash_cfg()`` is the one place the fast fake configuration is written down (the ``hash_config``
fixture in conftest returns its default). ``Writer`` runs a memory writer in a child process and
waits for its ready signal (never a fixed sleep).
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from selfmem import EmbeddingConfig, MemoryConfig

__all__ = ["hash_cfg", "HASH", "Writer", "texts", "results", "QUERIES", "make_arc_task"]


def hash_cfg(dim: int = 64, *, own: int | None = None, own_dim: int | None = None, own_min_fit: int | None = None,
                alpha: float | None = None, **config: Any) -> MemoryConfig:
    """A memory config on the deterministic hash embedder: ``general="hash:<dim>"``, and with ``own`` a
    second hash view of that size (dual mode); ``config`` sets other MemoryConfig fields."""
    emb: dict[str, Any] = {"general": f"hash:{dim}", "own": None if own is None else f"hash:{own}",
                           "mode": "general" if own is None else "dual"}
    for name, value in (("own_dim", own_dim), ("own_min_fit", own_min_fit), ("alpha", alpha)):
        if value is not None:
            emb[name] = value
    return MemoryConfig(embedding=EmbeddingConfig(**emb), **config)


HASH = hash_cfg()

WORDS = np.array("grid rotate colour swap mirror tile object count fill border crop scale shift line dot".split())
QUERIES = ("rotate the grid", "colour swap", "count the objects", "mirror border", "item 7")


def texts(n: int, seed: int = 0) -> list[str]:
    """``n`` short texts of grid words, each ending in its number (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 4)) + f" item {i}" for i in range(n)]


def results(mem: Any) -> list[list[int]]:
    """The ids ``mem.search`` returns (k=8) for each of :data:`QUERIES`: what two memories must agree on."""
    return [[h.record.id for h in mem.search(q, k=8)] for q in QUERIES]

_SCRIPT = r"""
import json, os, sys, time
from selfmem import Memory, MemoryConfig
path, spec = sys.argv[1], json.loads(sys.argv[2])
cfg = None if spec["config"] is None else MemoryConfig.from_dict(spec["config"])
m = Memory(path, cfg, progress=False)
if spec["add"]:
    m.add_many(spec["add"])
for rid in spec["delete"]:
    m.delete(rid)
if spec["mode"] == "crash":
    os._exit(0)  # no close(): derived files are left behind the store
print("ready", flush=True)
if spec["mode"] == "loop":
    for i in range(100000):
        m.add_many([f"live note {i} part {j}" for j in range(5)])
        time.sleep(0.005)
time.sleep(60)
"""


class Writer:
    """A process that opens ``path`` for writing, adds ``add``, deletes ``delete`` and then, by ``mode``:
    ``"hold"`` keeps the memory open, ``"loop"`` keeps adding batches of 5 ("live note {i} part {j}"),
    ``"crash"`` exits without closing (run to the end by :meth:`start`).

    Use as a context manager: ``with Writer(path) as w:`` returns once the writer is ready (or has
    crashed, for ``"crash"``) and kills it at the end.
    """

    def __init__(self, path: Path, *, add: list[str] = (), delete: list[int] = (), mode: str = "hold",
                 config: MemoryConfig | None = HASH, timeout: float = 60.0) -> None:
        self.spec = {"config": None if config is None else config.to_dict(), "add": list(add),
                     "delete": list(delete), "mode": mode}
        self.path, self.timeout = path, timeout
        self.proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Writer:
        self._err = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty writer never blocks on it
        self.proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(self.path), json.dumps(self.spec)],
                                     stdout=subprocess.PIPE, stderr=self._err, text=True)
        if self.spec["mode"] == "crash":
            self.proc.wait(timeout=self.timeout)
            assert self.proc.returncode == 0, self._stderr()
            return self
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(self.timeout):
            self.stop()
            raise AssertionError(f"the writer was not ready within {self.timeout} s")
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise AssertionError(f"the writer did not start: {line!r} {self._stderr()}")
        return self

    def _stderr(self) -> str:
        self._err.seek(0)
        return self._err.read()[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_arc_task(tid: str, program: Any, seed: int, n_train: int = 3) -> Any:
    """An ARC task whose outputs are ``program`` run on random 6x6 grids with one coloured block."""
    from selfmem.solver.arc import ARCTask, run_program

    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_train + 1):
        g = np.zeros((6, 6), np.int8)
        h, w = rng.integers(2, 4, size=2)
        y, x = rng.integers(0, 6 - h), rng.integers(0, 6 - w)
        g[y:y + h, x:x + w] = rng.integers(1, 9, size=(h, w))
        pairs.append((g, run_program(program, g)))
    return ARCTask(tid, tuple(pairs[:-1]), (pairs[-1][0],), (pairs[-1][1],))


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail the test saying ``what`` did not happen within ``timeout`` s.

    For state another thread or process publishes: the timeout bounds a hang, it is not a speed claim
    (speeds are measured by the scripts in ``benchmarks/``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)
