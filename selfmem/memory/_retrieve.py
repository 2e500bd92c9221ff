"""Candidate gathering for search: dense (FAISS) and keyword (BM25) top-n, scored exactly."""

from __future__ import annotations

import numpy as np

from ..retrieval._keywords import KeywordIndex
from ..retrieval._search import Candidate
from ..retrieval._views import Views
from ._store import Store

__all__ = ["gather"]


def gather(store: Store, views: Views, index, keywords: KeywordIndex, query: str, qvec: np.ndarray,
           n: int, allowed: np.ndarray | None, mode: str) -> list[Candidate]:
    """Union of the dense and keyword top-n (per ``mode``), each with exact cosine and BM25.

    Parameters
    ----------
    qvec : ndarray, shape (1, dim)
        The query's index vector.
    n : int
        Candidates per source.
    allowed : ndarray of int64, optional
        Only these ids may be returned.
    mode : {"hybrid", "dense", "keyword"}
    """
    ids: list[int] = []
    if mode in ("hybrid", "dense", "topics") and len(index):
        _, dense = index.search(qvec, n, allowed)
        ids += [int(i) for i in dense[0] if i >= 0]
    if mode in ("hybrid", "keyword", "topics"):
        kw_ids, _ = keywords.top(query, n, allowed)
        ids += [int(i) for i in kw_ids if int(i) not in set(ids)]
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    records = store.get(ids)
    raw_parts = {role: store.vectors(role, ids) for role in views.roles}
    ref = raw_parts["general"][0]
    vecs = views.index_vectors({role: vecs for role, (_, vecs) in raw_parts.items()})
    cos = vecs @ qvec[0]
    _, bm = keywords.scores(query, ref)
    return [Candidate(id=int(i), cos=float(min(1.0, max(-1.0, c))), bm25=float(b), vector=vecs[j],
                      record=records[int(i)])
            for j, (i, c, b) in enumerate(zip(ref, cos, bm)) if int(i) in records]
