"""The FAISS vector index: a derived cache of the store's vectors.

Vectors are L2-normalised, so inner product equals cosine. The index is written
beside the store (``index.faiss`` + ``index.json``) and reconciled with the
store's ids on open; losing it loses nothing.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from .._config import IndexConfig
from .._errors import InvalidInputError
from .._types import JSON, IndexParams
from .._files import atomic_write, damaged
from ._ivfpq import IVFPQIndex, ivfpq_params

__all__ = ["INDEX_FILE", "INDEX_META", "VectorIndex", "FlatIndex", "IVFPQIndex", "load_index", "save_index", "build_index", "wanted_kind"]

INDEX_FILE = "index.faiss"
INDEX_META = "index.json"


class VectorIndex(Protocol):
    """A searchable id -> vector map (cosine on unit vectors): what the memory uses of an index.

    Implemented by :class:`FlatIndex` (exact) and :class:`IVFPQIndex` (approximate, exact re-rank).
    """

    kind: str
    dim: int
    built_for: dict[str, JSON] | None
    """The views' signature the index was built for (saved with it)."""

    def __len__(self) -> int: ...

    def ids(self) -> np.ndarray: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: Sequence[int] | np.ndarray) -> None: ...

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray: ...

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]: ...

    def relocate(self, directory: Path) -> None: ...

    def describe(self) -> IndexParams: ...


def _as_matrix(x: np.ndarray, dim: int, what: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise InvalidInputError(f"{what} must have shape (n, {dim}), got {x.shape}")
    return x


class FlatIndex:
    """Exact inner-product search with id mapping (``IndexIDMap2(IndexFlatIP)``).

    Parameters
    ----------
    dim : int
        Vector dimension.
    """

    kind = "flat"
    built_for: dict[str, JSON] | None = None

    def __init__(self, dim: int, *, _index: faiss.Index | None = None) -> None:
        self.dim = dim
        self._index = _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def describe(self) -> IndexParams:
        """Parameters beyond kind, size and dim, for ``stats`` (none for an exact index)."""
        return IndexParams()

    def relocate(self, directory: Path) -> None:
        """Nothing to move: a flat index keeps no files of its own."""

    def ids(self) -> np.ndarray:
        """Ids held, shape (n,) int64 (insertion order)."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors, shape (n, dim), under int64 ids, shape (n,)."""
        vectors = _as_matrix(vectors, self.dim, "vectors")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) != len(vectors):
            raise InvalidInputError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: Sequence[int] | np.ndarray) -> None:
        """Remove ids (unknown ids are ignored)."""
        if len(ids):
            self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` (all held), shape (len(ids), dim) float32."""
        return np.stack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else \
            np.zeros((0, self.dim), np.float32)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product.

        Parameters
        ----------
        queries : ndarray, shape (q, dim)
        k : int
        allowed : ndarray of int64 or None
            Restrict results to these ids.

        Returns
        -------
        scores : ndarray, shape (q, k) float32 (-inf where fewer than k results)
        ids : ndarray, shape (q, k) int64 (-1 where fewer than k results)
        """
        queries = _as_matrix(queries, self.dim, "queries")
        k = max(1, min(int(k), max(len(self), 1)))
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(queries, k, params=params)
        scores[ids < 0] = -np.inf
        return scores, ids


def save_index(index: VectorIndex, directory: Path, signature: dict[str, JSON]) -> None:
    """Write the index and its metadata atomically (temp file + rename)."""
    if not isinstance(index, (FlatIndex, IVFPQIndex)):
        raise InvalidInputError(f"cannot save a {type(index).__name__}: only FlatIndex and IVFPQIndex are files")
    data = faiss.serialize_index(index._index).tobytes()
    atomic_write(directory / INDEX_FILE, data)
    meta = {"kind": index.kind, "dim": index.dim, "count": len(index), "signature": signature,
            "crc32": zlib.crc32(data)}
    if isinstance(index, IVFPQIndex):
        rows = index.rerank_file.rows
        meta |= {"n_trained": index.n_trained, "nprobe": index.nprobe, "rerank": index.rerank,
                 "rerank_rows": rows, "rerank_crc32": index.rerank_file.crc32(rows)}
    atomic_write(directory / INDEX_META, json.dumps(meta, sort_keys=True))


def load_index(directory: Path, signature: dict[str, JSON], *, read_only: bool = False) -> FlatIndex | IVFPQIndex | None:
    """Load the saved index if it exists and was built for ``signature``; else None.

    A corrupt or inconsistent index is reported as None too (it is rebuilt from the store).
    """
    path, meta_path = directory / INDEX_FILE, directory / INDEX_META
    if not path.is_file() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("signature") != signature:
        return None
    data = path.read_bytes()
    if "crc32" in meta and zlib.crc32(data) != meta["crc32"]:
        damaged(path, ValueError("its checksum does not match index.json"))
        return None
    try:
        raw = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError:
        return None
    if raw.d != meta.get("dim"):
        return None
    if meta.get("kind") == FlatIndex.kind and isinstance(raw, faiss.IndexIDMap2):
        return FlatIndex(raw.d, _index=raw)
    if meta.get("kind") == IVFPQIndex.kind:
        try:
            index = IVFPQIndex(raw.d, directory, raw, n_trained=int(meta["n_trained"]), nprobe=int(meta["nprobe"]),
                               rerank=int(meta["rerank"]), read_only=read_only)
        except (KeyError, TypeError, ValueError, RuntimeError):
            return None
        if not index.rerank_file.consistent() or not np.isin(index.ids(), index.rerank_file.all_ids()).all():
            return None
        rows = meta.get("rerank_rows")
        if isinstance(rows, int) and (index.rerank_file.rows < rows or
                                      index.rerank_file.crc32(rows) != meta.get("rerank_crc32")):
            damaged(directory / "rerank.f16", ValueError("the re-rank vectors do not match their checksum"))
            return None
        return index
    return None



def wanted_kind(cfg: IndexConfig, n: int) -> str:
    """The index kind a memory of ``n`` vectors should have under IndexConfig ``cfg``."""
    if cfg.kind == "flat" or n < cfg.ivf_threshold:
        return FlatIndex.kind
    return IVFPQIndex.kind


def build_index(cfg: IndexConfig, dim: int, directory: Path, ids: np.ndarray, vectors: np.ndarray,
                *, seed: int = 0) -> FlatIndex | IVFPQIndex:
    """A new index of the kind :func:`wanted_kind` picks, holding ``vectors`` (n, dim) under ``ids``.

    IVF-PQ is trained on a random sample sized by :func:`ivfpq_params`.
    """
    n = len(ids)
    if wanted_kind(cfg, n) == FlatIndex.kind:
        index: FlatIndex | IVFPQIndex = FlatIndex(dim)
    else:
        params = ivfpq_params(n, dim)
        if cfg.nprobe:
            params["nprobe"] = cfg.nprobe
        if cfg.rerank:
            params["rerank"] = cfg.rerank
        rows = np.random.default_rng(seed).choice(n, size=params["train_size"], replace=False)
        index = IVFPQIndex.train(dim, directory, vectors[np.sort(rows)], n, opq=cfg.opq, params=params)
    for start in range(0, n, 65536):
        index.add(ids[start:start + 65536], vectors[start:start + 65536])
    return index
