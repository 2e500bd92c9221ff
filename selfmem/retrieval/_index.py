"""The FAISS vector index: a derived cache of the store's vectors.

Vectors are L2-normalised, so inner product equals cosine. The index is written
beside the store (``index.faiss`` + ``index.json``) and reconciled with the
store's ids on open; losing it loses nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

from .._errors import InvalidInputError

__all__ = ["VectorIndex", "FlatIndex", "load_index", "save_index"]

INDEX_FILE = "index.faiss"
INDEX_META = "index.json"


class VectorIndex(Protocol):
    """A searchable id -> vector map (cosine on unit vectors)."""

    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: Sequence[int]) -> None: ...

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]: ...


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

    def __init__(self, dim: int, *, _index: Any = None) -> None:
        self.dim = dim
        self._index = _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

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

    def remove(self, ids: Sequence[int]) -> None:
        """Remove ids (unknown ids are ignored)."""
        if len(ids):
            self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

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


def save_index(index: FlatIndex, directory: Path, signature: dict[str, Any]) -> None:
    """Write the index and its metadata atomically (temp file + rename)."""
    tmp = directory / (INDEX_FILE + ".tmp")
    faiss.write_index(index._index, str(tmp))
    os.replace(tmp, directory / INDEX_FILE)
    meta = {"kind": index.kind, "dim": index.dim, "count": len(index), "signature": signature}
    tmp_meta = directory / (INDEX_META + ".tmp")
    tmp_meta.write_text(json.dumps(meta, sort_keys=True))
    os.replace(tmp_meta, directory / INDEX_META)


def load_index(directory: Path, signature: dict[str, Any]) -> FlatIndex | None:
    """Load the saved index if it exists and was built for ``signature``; else None.

    A corrupt index file is reported as None too (it is rebuilt from the store).
    """
    path, meta_path = directory / INDEX_FILE, directory / INDEX_META
    if not path.is_file() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("signature") != signature or meta.get("kind") != FlatIndex.kind:
        return None
    try:
        raw = faiss.read_index(str(path))
    except RuntimeError:
        return None
    if raw.d != meta.get("dim") or not isinstance(raw, faiss.IndexIDMap2):
        return None
    return FlatIndex(raw.d, _index=raw)


def reconcile(index: FlatIndex, store_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids the index lacks and ids it holds that the store does not.

    Returns
    -------
    missing : ndarray of int64 (in store, not in index)
    extra : ndarray of int64 (in index, not in store)
    """
    held = index.ids()
    missing = np.setdiff1d(store_ids, held, assume_unique=False)
    extra = np.setdiff1d(held, store_ids, assume_unique=False)
    return missing, extra

