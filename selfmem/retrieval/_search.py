"""Ranking of search candidates: fusion of dense and keyword scores, time and use, de-duplication.

For candidates C (the union of the dense top-n and the keyword top-n), with cosine
``cos`` and BM25 score ``bm25`` of each candidate:

``relevance = kw * z(bm25) + (1 - kw) * z(cos)``, z = standardised over C (mode ``hybrid``);
``relevance = cos`` (mode ``dense``); ``relevance = bm25`` (mode ``keyword``).

Then ``score = relevance + w_imp * ln(importance) + w_rec * 2 ** (-age_days / half_life) +
w_use * ln(1 + use_count)``. Near-duplicates (cosine >= ``dedupe`` with a better hit, or the
same text) are dropped, as are hits with cosine distance ``1 - cos`` above ``max_distance``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .._config import SearchConfig
from .._types import EPS, Record

__all__ = ["Candidate", "rank", "zscore", "inverse_distance_weights", "EPS", "single_blas_thread"]

_BLAS: Any = None
_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0  # searches inside single_blas_thread() now, in every thread
_BLAS_LIMIT: Any = None  # the limiter the first of them set, restored by the last


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Context limiting BLAS (OpenBLAS/MKL) to one thread for a search's small matrix products.

    Idle BLAS threads spin after each call and starve the embedding models' threads: on the 2-core
    test machine this alone moved search p50 at 100k memories from 45 to 26 ms. The limit is
    process-wide, so concurrent searches share it: the first sets it, the last restores the original
    thread counts (a per-call save and restore left them lowered when searches overlapped).
    """
    global _BLAS, _BLAS_USERS, _BLAS_LIMIT
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            if _BLAS is None:
                from threadpoolctl import ThreadpoolController

                _BLAS = ThreadpoolController()
            _BLAS_LIMIT = _BLAS.limit(limits=1, user_api="blas")
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0 and _BLAS_LIMIT is not None:
                _BLAS_LIMIT.restore_original_limits()
                _BLAS_LIMIT = None


@dataclass
class Candidate:
    id: int
    cos: float
    bm25: float
    vector: np.ndarray
    record: Record


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardised scores (zeros when all equal), shape kept."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return np.zeros_like(x) if sd < 1e-12 else (x - x.mean()) / sd


def inverse_distance_weights(distances: Sequence[float], eps: float = EPS) -> np.ndarray:
    """The design's contribution weights ``w = 1 / (d + eps)``, normalised to sum to 1."""
    w = 1.0 / (np.maximum(np.asarray(distances, dtype=np.float64), 0.0) + eps)
    return w / w.sum() if len(w) else w


def rank(cands: list[Candidate], k: int, cfg: SearchConfig, *, now: datetime | None = None,
         max_distance: float | None = None) -> list[tuple[Candidate, float]]:
    """Order candidates by the documented score and keep the best k distinct ones.

    Parameters
    ----------
    cands : list of Candidate
    k : int
    cfg : SearchConfig
    now : datetime, optional
        Reference time for recency (default: now, UTC).
    max_distance : float, optional
        Drop candidates whose cosine distance exceeds it.

    Returns
    -------
    list of (Candidate, score), best first, at most k.
    """
    if not cands:
        return []
    cos = np.array([c.cos for c in cands])
    bm = np.array([c.bm25 for c in cands])
    if cfg.mode == "keyword":
        rel = bm
    elif cfg.mode in ("hybrid", "topics"):
        rel = cfg.keyword_weight * zscore(bm) + (1 - cfg.keyword_weight) * zscore(cos)
    else:
        rel = cos
    now = now or datetime.now(timezone.utc)
    score = rel.copy()
    for j, c in enumerate(cands):
        r = c.record
        if cfg.importance_weight:
            score[j] += cfg.importance_weight * math.log(max(r.importance, 1e-6))
        if cfg.recency_weight and r.created_at is not None:
            age = max((now - r.created_at).total_seconds() / 86400.0, 0.0)
            score[j] += cfg.recency_weight * 2.0 ** (-age / cfg.recency_half_life_days)
        if cfg.use_weight:
            score[j] += cfg.use_weight * math.log1p(r.use_count)
    order = np.lexsort((np.fromiter((c.id for c in cands), np.int64, len(cands)), -score))  # ties: by id, so
    chosen: list[tuple[Candidate, float]] = []  # every process ranks alike, whatever order its index holds them in
    seen_text: set[str] = set()
    kept_vecs: list[np.ndarray] = []
    for j in order:
        c = cands[j]
        if max_distance is not None and 1.0 - c.cos > max_distance:
            continue
        key = " ".join(c.record.text.lower().split())
        if key in seen_text:
            continue
        if cfg.dedupe < 1.0 and kept_vecs and float(np.max(np.stack(kept_vecs) @ c.vector)) >= cfg.dedupe:
            continue
        seen_text.add(key)
        kept_vecs.append(c.vector)
        chosen.append((c, float(score[j])))
        if len(chosen) == k:
            break
    return chosen
