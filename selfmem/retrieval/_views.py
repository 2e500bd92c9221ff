"""The two views of a memory (general and own model) and how they become index vectors.

Raw vectors of each view are stored per record. The index vector is derived from
them: the general vector as is, the own vector after the fitted whitening, and in
``dual`` mode their weighted concatenation (see :func:`fuse`). Changing ``mode``,
``alpha`` or the whitening therefore needs only an index rebuild, never a model run.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .._files import damaged
from .._errors import CorruptMemoryError, InvalidInputError
from .._types import JSON
from ._bulk import BULK_MIN, bulk_embed
from ._embedders import (SMALL_BATCH, Embedder, HashEmbedder, batches, l2_normalize, resolve_device,
                         vector_space)
from ._post import Whitener, fuse

__all__ = ["Views", "WHITENER_FILE"]

WHITENER_FILE = "own_whitener.npz"
_QUERY_CACHE: OrderedDict[tuple[str, str], dict[str, np.ndarray]] = OrderedDict()
_QUERY_CACHE_SIZE = 1024
_QUERY_LOCK = threading.Lock()


class Views:
    """General + optional own embedder, the own-view whitening, and fusion.

    Parameters
    ----------
    general : Embedder
    own : Embedder or None
    mode : {"general", "own", "dual"}
    alpha : float
        Weight of the general view in dual mode.
    own_dim : int
        Whitened dimension of the own view.
    shrinkage : float
        Whitening regulariser (see :class:`Whitener`).
    min_fit : int
        Records needed before the whitening is fitted; below it the memory searches
        the general view only (and says so in ``notes``).
    """

    def __init__(self, general: Embedder, own: Embedder | None, *, mode: str, alpha: float,
                 own_dim: int, shrinkage: float, min_fit: int) -> None:
        self.general = general
        self.own = own
        self.mode = mode
        self.alpha = alpha
        self.own_dim = own_dim
        self.shrinkage = shrinkage
        self.min_fit = min_fit
        self.whitener: Whitener | None = None

    # -- state ----------------------------------------------------------------------
    @property
    def roles(self) -> dict[str, Embedder]:
        """Embedders whose raw vectors are stored, by role."""
        return {"general": self.general} | ({"own": self.own} if self.own is not None else {})

    @property
    def effective_mode(self) -> str:
        """The mode in use: ``general`` while the own view's whitening is not fitted yet."""
        return self.mode if self.mode == "general" or self.whitener is not None else "general"

    @property
    def dim(self) -> int:
        mode = self.effective_mode
        own_dim = self.whitener.dim if self.whitener is not None else 0
        return {"general": self.general.dim, "own": own_dim, "dual": self.general.dim + own_dim}[mode]

    def signature(self) -> dict[str, JSON]:
        """What index vectors depend on (computed once per whitening: fingerprints stat model files)."""
        cached = getattr(self, "_signature", None)
        if cached is not None and cached[0] is self.whitener:
            return cached[1]
        sig: dict[str, JSON] = {"mode": self.effective_mode, "general": vector_space(self.general.fingerprint())}
        if self.effective_mode != "general":
            assert self.own is not None and self.whitener is not None  # effective_mode says so
            sig |= {"own": vector_space(self.own.fingerprint()), "whitener": self.whitener.digest()}
        if self.effective_mode == "dual":
            sig["alpha"] = self.alpha
        self._signature = (self.whitener, sig)
        return sig

    def notes(self, n_records: int) -> list[str]:
        if self.own is None or self.mode == "general":
            return []
        if self.whitener is None and n_records < self.min_fit:
            return [f"own view not fitted yet ({n_records} records < {self.min_fit}): searching the general view "
                    f"only; it fits automatically at {self.min_fit} records or on rebuild()"]
        if self.whitener is None:
            return [f"own view not whitened yet ({n_records} records): searching the general view only; "
                    "Memory.rebuild() fits it"]
        return [f"own view whitened to {self.whitener.dim} dims, fitted on {self.whitener.n_samples_} records"]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for prompt budgets: the own model's tokenizer when there is one."""
        for emb in (self.own, self.general):
            if emb is not None and hasattr(emb, "count_tokens"):
                return int(emb.count_tokens(text))
        return len(text.split())

    # -- whitening ------------------------------------------------------------------
    def load_whitener(self, directory: Path, owner: str = "") -> None:
        """Load ``own_whitener.npz`` unless damaged or fitted on another store (``owner``: this store's id)."""
        path = directory / WHITENER_FILE
        self.whitener = None
        if self.own is None or not path.is_file():
            return
        try:
            w = Whitener.load(path)
        except CorruptMemoryError as exc:
            damaged(path, exc)
            return  # a derived file: refitted when the memory opens for writing, or on rebuild()
        if owner and w.owner_ and w.owner_ != owner:
            damaged(path, ValueError("it was fitted on another memory's store"))
            return
        if w.mean_.shape == (self.own.dim,):
            self.whitener = w

    def fit_whitener(self, own_raw: np.ndarray) -> Whitener | None:
        """A whitening fitted on raw own vectors (n, own_dim); None without an own model or below ``min_fit``.

        Pure: the views in use are unchanged (see :meth:`with_whitener`).
        """
        if self.own is None or len(own_raw) < self.min_fit:
            return None
        return Whitener(self.own_dim, shrinkage=self.shrinkage).fit(own_raw)

    def with_whitener(self, whitener: Whitener | None) -> Views:
        """A copy of these views using ``whitener`` (the embedders are shared)."""
        out = copy.copy(self)
        out.whitener = whitener
        return out

    def save_whitener(self, directory: Path, owner: str = "") -> None:
        """Write the whitening to ``own_whitener.npz`` (or remove the file when there is none)."""
        path = directory / WHITENER_FILE
        if self.whitener is None:
            path.unlink(missing_ok=True)
        else:
            self.whitener.save(path, owner)

    # -- vectors --------------------------------------------------------------------
    def embed_raw(self, texts: Sequence[str], own_given: np.ndarray | None = None, *, progress: bool = False,
                  chunk: int = 1024) -> dict[str, np.ndarray]:
        """Raw unit vectors of every stored view, by role, each (n, dim_role)."""
        out: dict[str, np.ndarray] = {}
        if len(texts) >= BULK_MIN:  # on GPUs: one tokenize/compute pipeline for every view (see _bulk)
            todo = {r: e for r, e in self.roles.items() if not (r == "own" and own_given is not None)}
            for role, arr in bulk_embed(todo, texts, progress=progress).items():
                if not np.isfinite(arr).all():
                    raise InvalidInputError(f"the {role} embedder returned non-finite values")
                out[role] = arr
        if own_given is not None and "own" in self.roles:
            out["own"] = l2_normalize(own_given)
        rest = [r for r in self.roles if r not in out]

        def run(role: str) -> None:
            emb = self.roles[role]
            parts = [emb.embed(texts[s]) for s in batches(len(texts), chunk, progress=progress,
                                                           desc=f"embedding ({role})")]
            out[role] = np.concatenate(parts) if parts else np.zeros((0, emb.dim), np.float32)

        if (len(texts) <= SMALL_BATCH and len(rest) > 1 and all(_on_cpu(self.roles[r]) for r in rest)
                and not all(isinstance(self.roles[r], HashEmbedder) for r in rest)):
            _side_by_side(run, rest)  # a query: the two models at once, one core each
        else:
            for role in rest:
                run(role)
        for role in rest:
            arr = out[role]
            if arr.shape != (len(texts), self.roles[role].dim) or not np.isfinite(arr).all():
                raise InvalidInputError(f"the {role} embedder returned shape {arr.shape} or non-finite values")
        return {r: out[r] for r in self.roles}

    def embed_query(self, text: str) -> dict[str, np.ndarray]:
        """Raw views of one query, shape (1, dim) each; the last 1,024 distinct queries are cached
        (per process, keyed by the embedders' fingerprints), so a search followed by an ``enrich`` of
        the same prompt runs the models once."""
        key = (json.dumps({r: e.fingerprint() for r, e in self.roles.items()}, sort_keys=True), text)
        with _QUERY_LOCK:
            if key in _QUERY_CACHE:
                _QUERY_CACHE.move_to_end(key)
                return _QUERY_CACHE[key]
        raw = self.embed_raw([text])
        with _QUERY_LOCK:
            _QUERY_CACHE[key] = raw
            while len(_QUERY_CACHE) > _QUERY_CACHE_SIZE:
                _QUERY_CACHE.popitem(last=False)
        return raw

    def index_vectors(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """Index vectors (n, dim) from raw views (as from :meth:`embed_raw` or the store)."""
        mode = self.effective_mode
        general = raw["general"] if mode in ("general", "dual") else None
        own = None
        if mode in ("own", "dual"):
            assert self.whitener is not None  # effective_mode is "general" until the own view is whitened
            own = self.whitener.transform(raw["own"])
        return fuse(general, own, self.alpha)


def _on_cpu(emb: Embedder) -> bool:
    """Whether ``emb`` computes on the CPU (a hash embedder, a CPU device, or ``device="auto"`` without CUDA)."""
    return resolve_device(str(getattr(emb, "device", "cpu"))) == "cpu"


def _side_by_side(run: Callable[[str], None], roles: Sequence[str]) -> None:
    """``run(role)`` for every role at once: the first in this thread, the others in threads of their own
    (a thread per call, so a forked child holds no pool of dead threads). Each model call of a few texts
    runs on one intra-op thread (``threads_for``), so on two cores a query's two models take the time of
    the slower one rather than the sum. An error in any is raised here once all have ended.

    Only for models on the CPU: on a GPU the two calls queue on one device, and the GPU machine's query
    embedding took about 90 ms per query side by side against 10-19 ms one model after the other (H100,
    2 pinned cores, docs/benchmarks.md, section GPU)."""
    errors: list[BaseException] = []

    def guarded(role: str) -> None:
        try:
            run(role)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(r,), name=f"selfmem-embed-{r}", daemon=True)
               for r in roles[1:]]
    for t in threads:
        t.start()
    guarded(roles[0])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
