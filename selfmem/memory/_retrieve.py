"""Candidate gathering for search: dense (FAISS) and keyword (BM25) top-n, scored exactly."""

from __future__ import annotations

import numpy as np

from ..retrieval._keywords import KeywordIndex
from ..retrieval._search import Candidate
from ._store import Store

__all__ = ["gather"]


def gather(store: Store, index, keywords: KeywordIndex, query: str, qvec: np.ndarray,
           n: int, allowed: np.ndarray | None, mode: str) -> list[Candidate]:
    """Union of the dense and keyword top-n (per ``mode``), each with its cosine and BM25 score.

    Cosines come from the vectors the index holds (exact for the flat index; the float16
    re-rank copy for IVF-PQ), so no vector is read from the store on the search path.

    Parameters
    ----------
    qvec : ndarray, shape (1, dim)
        The query's index vector.
    n : int
        Candidates per source.
    allowed : ndarray of int64, optional
        Only these ids may be returned.
    mode : {"hybrid", "dense", "keyword", "topics"}
    """
    ids: list[int] = []
    if mode != "keyword" and len(index):
        _, dense = index.search(qvec, n, allowed)
        ids += [int(i) for i in dense[0] if i >= 0]
    kw_ids, kw_scores = keywords.scores(query)
    if mode != "dense" and len(kw_ids):
        pool = np.isin(kw_ids, allowed) if allowed is not None else np.ones(len(kw_ids), bool)
        order = np.argsort(-kw_scores[pool], kind="stable")[:n]
        ids += [int(i) for i in kw_ids[pool][order]]
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    records = store.get(ids)
    ids = [i for i in ids if i in records]
    vecs = index.vectors(ids)
    cos = vecs @ qvec[0]
    bm = dict(zip(kw_ids.tolist(), kw_scores.tolist()))
    return [Candidate(id=i, cos=float(min(1.0, max(-1.0, c))), bm25=float(bm.get(i, 0.0)), vector=vecs[j],
                      record=records[i]) for j, (i, c) in enumerate(zip(ids, cos))]
