"""IVF-PQ index with exact re-ranking, for memories too large for exact search.

FAISS IVF-PQ (inner product on unit vectors = cosine) proposes ``k * rerank``
candidates from compressed codes; their exact cosines are then computed from a
float16 copy of the vectors kept in a memory-mapped file next to the index, so
RAM per vector stays near the PQ code size. Ids are the memory's record ids.

Sizing rule (:func:`ivfpq_params`, N vectors of dimension d):

- ``nlist`` = the power of two nearest ``2 * sqrt(N)``, clamped to [16, 65536];
- ``M`` (sub-quantizers) = the divisor of d nearest ``d / 10`` (about 10 dims per
  8-bit code, e.g. 96 for d = 960, 64 for d = 640), ``nbits`` = 8;
- training sample = ``min(N, 40 * nlist)`` vectors;
- ``nprobe`` = ``max(32, nlist // 64)``; re-rank ``k * 20`` candidates.

On real dual embeddings (10k) nprobe 8 gave recall@10 0.86 and 32 gave 0.97; at 1M (d = 960,
nlist 2048) nprobe 32 gave 0.998 at p50 1.99 ms and 64 gave 0.998 at 2.77 ms (docs/benchmarks-history.md).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from .._errors import InvalidInputError
from .._types import JSON, IndexParams
from .._files import atomic_write, fsync_dir

__all__ = ["IVFPQIndex", "RerankVectors", "ivfpq_params"]

RERANK_VECS = "rerank.f16"
RERANK_IDS = "rerank.ids"


def ivfpq_params(n: int, dim: int) -> dict[str, int]:
    """The documented sizing rule for N vectors of dimension ``dim``."""
    nlist = int(2 ** round(np.log2(max(2.0 * np.sqrt(max(n, 1)), 1.0))))
    nlist = min(max(nlist, 16), 65536)
    divisors = [m for m in range(1, dim + 1) if dim % m == 0]
    m = min(divisors, key=lambda x: (abs(dim / x - 10), -x))
    return {"nlist": nlist, "m": m, "nbits": 8, "train_size": min(n, 40 * nlist),
            "nprobe": max(32, nlist // 64), "rerank": 20}


class RerankVectors:
    """Append-only float16 vectors with their int64 ids, in two flat files (memory-mapped for reads).

    Parameters
    ----------
    directory : Path
    dim : int
    read_only : bool
        Never write the files (a reader's index over a writer's directory): what is appended or reset
        is kept in this object's memory, in front of the files.
    """

    def __init__(self, directory: Path, dim: int, *, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.dim = dim
        self.read_only = read_only
        self._vecs: np.ndarray | None = None
        self._ids: np.ndarray | None = None
        self._order: np.ndarray | None = None
        self._extra: tuple[np.ndarray, np.ndarray] | None = None  # read_only: (ids, float16 vectors) held here
        self._files = True  # read_only: False after reset() (the files no longer count)

    @property
    def rows(self) -> int:
        """Rows in the files that both files hold completely (a writer may be appending to them)."""
        if not self._files:
            return 0
        v, i = self.directory / RERANK_VECS, self.directory / RERANK_IDS
        if not i.exists():
            return 0
        return min(i.stat().st_size // 8, v.stat().st_size // (self.dim * 2) if v.exists() else 0)

    def consistent(self) -> bool:
        """True when both files exist and hold the same number of rows (a reader accepts a writer's
        half-done append: both hold at least ``rows`` complete rows)."""
        v, i = self.directory / RERANK_VECS, self.directory / RERANK_IDS
        if not v.exists() or not i.exists():
            return False
        return self.read_only or v.stat().st_size == (i.stat().st_size // 8) * self.dim * 2

    def reset(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the contents (written to temp files, then renamed)."""
        self._drop_maps()
        if self.read_only:
            self._files = False
            self._extra = (np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float16))
            return
        for name, data in ((RERANK_VECS, np.asarray(vectors, dtype=np.float16)),
                           (RERANK_IDS, np.asarray(ids, dtype=np.int64))):
            atomic_write(self.directory / name, np.ascontiguousarray(data).tobytes())

    def crc32(self, rows: int) -> int:
        """CRC-32 of the first ``rows`` rows of both files (what an index save vouches for)."""
        crc = 0
        for name, width in ((RERANK_VECS, self.dim * 2), (RERANK_IDS, 8)):
            left = rows * width
            with open(self.directory / name, "rb") as fh:
                while left > 0:
                    chunk = fh.read(min(left, 1 << 24))
                    if not chunk:
                        break
                    crc = zlib.crc32(chunk, crc)
                    left -= len(chunk)
        return crc

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._drop_maps()
        if self.read_only:
            old_ids, old_vecs = self._extra or (np.zeros(0, np.int64), np.zeros((0, self.dim), np.float16))
            self._extra = (np.concatenate([old_ids, np.asarray(ids, dtype=np.int64)]),
                           np.concatenate([old_vecs, np.asarray(vectors, dtype=np.float16).reshape(-1, self.dim)]))
            return
        with open(self.directory / RERANK_VECS, "ab") as fh:
            fh.write(np.ascontiguousarray(vectors, dtype=np.float16).tobytes())
        with open(self.directory / RERANK_IDS, "ab") as fh:
            fh.write(np.ascontiguousarray(ids, dtype=np.int64).tobytes())

    def _drop_maps(self) -> None:
        self._vecs = self._ids = self._order = None

    def _maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if self._vecs is None:
            n = self.rows
            if n == 0 and self._extra is None:
                return np.zeros((0, self.dim), np.float16), np.zeros(0, np.int64), None
            if n:
                # plain views of the mappings: indexing a np.memmap costs ~70 us of subclass bookkeeping a call
                self._vecs = np.asarray(np.memmap(self.directory / RERANK_VECS, dtype=np.float16, mode="r",
                                                  shape=(n, self.dim)))
                self._ids = np.asarray(np.memmap(self.directory / RERANK_IDS, dtype=np.int64, mode="r", shape=(n,)))
            if self._extra is not None:  # a reader's own rows, in front of the files (copied once per change)
                ids, vecs = self._extra
                self._ids = ids if not n else np.concatenate([np.asarray(self._ids), ids])
                self._vecs = vecs if not n else np.concatenate([np.asarray(self._vecs), vecs])
            # ids are appended in ascending order almost always; sort only when they are not
            ids_ = np.asarray(self._ids)
            self._order = None if bool(np.all(ids_[1:] > ids_[:-1])) else np.argsort(ids_, kind="stable")
        assert self._vecs is not None and self._ids is not None
        return self._vecs, self._ids, self._order

    def all_ids(self) -> np.ndarray:
        """Every id written, shape (rows,) int64."""
        return np.asarray(self._maps()[1])

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of ``ids`` as float32, shape (len(ids), dim); the last row written wins for repeated ids."""
        vecs, all_ids, order = self._maps()
        ids = np.asarray(ids, dtype=np.int64)
        if order is None:
            rows = np.searchsorted(all_ids, ids, side="right") - 1
        else:
            pos = np.searchsorted(all_ids[order], ids, side="right") - 1
            rows = order[np.clip(pos, 0, len(order) - 1)]
        rows = np.clip(rows, 0, max(len(all_ids) - 1, 0))
        if len(all_ids) == 0 or not np.array_equal(all_ids[rows], ids):
            raise InvalidInputError("re-rank file lacks some ids; the index will be rebuilt on reopen")
        return _to_float32(np.asarray(vecs[rows]))


_TORCH_CONVERT = 1 << 16
"""From this many values on, float16 rows are widened by torch: numpy widens float16 element by element
(1.2 ms for 1,000 rows of 640 here, most of a default search's re-rank), torch with vector instructions
(0.06 ms). Widening is exact either way, so the scores are the same to the bit."""


def _to_float32(rows: np.ndarray) -> np.ndarray:
    """``rows`` (float16, any shape) as float32, the same values."""
    if rows.dtype != np.float16 or rows.size < _TORCH_CONVERT:
        return np.asarray(rows, dtype=np.float32)
    import torch

    return torch.from_numpy(np.ascontiguousarray(rows)).float().numpy()


class IVFPQIndex:
    """IVF-PQ (optionally OPQ-rotated) with exact float16 re-ranking.

    Parameters
    ----------
    dim : int
    directory : Path
        Where the re-rank files live (next to ``index.faiss``).
    index : faiss.Index
        A trained ``IndexIVFPQ`` (or ``IndexPreTransform`` over one), ids = record ids.
    n_trained : int
        Number of vectors in the memory when it was trained (retrain when it grows 4x).
    nprobe, rerank : int
        Default search breadth and re-rank factor.
    """

    kind = "ivfpq"
    built_for: dict[str, JSON] | None = None

    def __init__(self, dim: int, directory: Path, index: faiss.Index, *, n_trained: int, nprobe: int, rerank: int,
                 read_only: bool = False) -> None:
        self.dim = dim
        self.directory = Path(directory)
        self._index = index
        self._ivf = faiss.extract_index_ivf(index)
        self.n_trained = n_trained
        self.nprobe = nprobe
        self.rerank = rerank
        self.rerank_file = RerankVectors(self.directory, dim, read_only=read_only)
        self._gpu: faiss.Index | None = None

    # -- construction --------------------------------------------------------------
    @classmethod
    def train(cls, dim: int, directory: Path, sample: np.ndarray, n_total: int, *, opq: bool = False,
              params: dict[str, int] | None = None) -> IVFPQIndex:
        """Train on ``sample`` (train_size, dim) for a memory of ``n_total`` vectors (nothing added yet)."""
        p = params or ivfpq_params(n_total, dim)
        spec = (f"OPQ{p['m']}," if opq else "") + f"IVF{p['nlist']},PQ{p['m']}x{p['nbits']}"
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        # polysemous training (Hamming-ordered codes) is slow and unused: we re-rank exactly instead
        faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        out = cls(dim, directory, index, n_trained=n_total, nprobe=p["nprobe"], rerank=p["rerank"])
        out.rerank_file.reset(np.zeros(0, np.int64), np.zeros((0, dim), np.float32))
        return out

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def describe(self) -> IndexParams:
        """nlist, nprobe, rerank and the number of vectors it was trained on, for ``stats``."""
        return IndexParams(nlist=self.nlist, nprobe=self.nprobe, rerank=self.rerank, n_trained=self.n_trained)

    @property
    def nlist(self) -> int:
        """Inverted lists (coarse centroids)."""
        return int(self._ivf.nlist)

    def relocate(self, directory: Path) -> None:
        """Move the re-rank files into ``directory`` (atomic renames on one file system) and use them there."""
        directory = Path(directory)
        if directory == self.directory:
            return
        self.rerank_file._drop_maps()
        for name in (RERANK_VECS, RERANK_IDS):
            os.replace(self.directory / name, directory / name)
        fsync_dir(directory)
        self.directory = directory
        self.rerank_file = RerankVectors(directory, self.dim)

    def ids(self) -> np.ndarray:
        """Ids held, shape (n,) int64."""
        inv = self._ivf.invlists
        parts = []
        for lst in range(inv.nlist):
            size = inv.list_size(lst)
            if size:
                parts.append(faiss.rev_swig_ptr(inv.get_ids(lst), size).copy())
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    # -- updates -------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (n, dim) under ids (n,) without retraining."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(ids) != len(vectors):
            raise InvalidInputError(f"vectors must have shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        if len(ids):
            self.rerank_file.append(ids, vectors)
            self._index.add_with_ids(vectors, ids)
            self._gpu = None

    def remove(self, ids: Sequence[int] | np.ndarray) -> None:
        if len(ids):
            self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
            self._gpu = None

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The float16 re-rank copies of ``ids`` (all held), as float32 (len(ids), dim)."""
        return self.rerank_file.lookup(np.asarray(ids, dtype=np.int64))

    # -- search --------------------------------------------------------------------
    def _searcher(self) -> faiss.Index:
        """The GPU copy of the index when faiss has GPUs, else the CPU index."""
        if faiss.get_num_gpus() > 0 and hasattr(faiss, "StandardGpuResources"):  # pragma: no cover - GPU only
            if self._gpu is None:
                self._res = faiss.StandardGpuResources()
                self._gpu = faiss.index_cpu_to_gpu(self._res, 0, self._index)
            return self._gpu
        return self._index

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, *,
               nprobe: int | None = None, rerank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Approximate candidates, exact cosine re-rank.

        Parameters
        ----------
        queries : ndarray, shape (q, dim)
        k : int
        allowed : ndarray of int64, optional
            Restrict results to these ids.
        nprobe, rerank : int, optional
            Override the defaults.

        Returns
        -------
        scores : ndarray, shape (q, k) float32, exact cosines (-inf where fewer than k)
        ids : ndarray, shape (q, k) int64 (-1 where fewer than k)
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.shape[1] != self.dim:
            raise InvalidInputError(f"queries must have shape (q, {self.dim}), got {queries.shape}")
        k = max(1, int(k))
        n_cand = max(k, k * (rerank or self.rerank))
        selector = None if allowed is None else faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        params = faiss.SearchParametersIVF(nprobe=nprobe or self.nprobe)
        if selector is not None:
            params.sel = selector
        searcher = self._index if selector is not None else self._searcher()
        _, cand = searcher.search(queries, n_cand, params=params)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for qi in range(len(queries)):
            c = cand[qi][cand[qi] >= 0]
            if len(c) == 0:
                continue
            exact = self.rerank_file.lookup(c) @ queries[qi]
            top = np.argsort(-exact, kind="stable")[:k]
            scores[qi, : len(top)] = exact[top]
            ids[qi, : len(top)] = c[top]
        return scores, ids

    def memory_bytes(self) -> int:
        """Approximate RAM of the index itself: codes + ids + coarse centroids (+ OPQ matrix)."""
        codes = len(self) * (self._ivf.code_size + 8)
        return int(codes + self._ivf.nlist * self.dim * 4 + (self.dim * self.dim * 4 if self._index is not self._ivf else 0))
