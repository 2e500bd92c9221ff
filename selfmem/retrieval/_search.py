"""Ranking of search candidates: fusion of dense and keyword scores, time and use, de-duplication.

For candidates C (the union of the dense top-n and the keyword top-n), with cosine
``cos`` and BM25 score ``bm25`` of each candidate:

``relevance = kw * z(bm25) + (1 - kw) * z(cos)``, z = standardised over C (mode ``hybrid``);
``relevance = cos`` (mode ``dense``); ``relevance = bm25`` (mode ``keyword``).

Then ``score = relevance + w_imp * ln(importance) + w_rec * 2 ** (-age_days / half_life) +
w_use * ln(1 + use_count) + w_len * z(ln(1 + characters))``, the last term in modes ``hybrid`` and
``topics`` only (whose relevance is in z units; a raw cosine or BM25 has a scale of its own).
Near-duplicates (cosine >= ``dedupe`` with a better hit, or the same text) are dropped, as are hits with
cosine distance ``1 - cos`` above ``max_distance``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from .._config import SearchConfig
from .._types import EPS, Record

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController, _ThreadpoolLimiter

__all__ = ["Candidate", "rank", "zscore", "inverse_distance_weights", "EPS", "single_blas_thread"]

_BLAS: ThreadpoolController | None = None
_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0  # searches inside single_blas_thread() now, in every thread
_BLAS_LIMIT: _ThreadpoolLimiter | None = None  # the limiter the first of them set, restored by the last


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
    """One memory that search may return: its scores and what ranking reads of its record.

    ``record`` may be left out (None): ranking then reads it through its ``fetch`` argument when it reaches
    the candidate, so a search reads the records of the hits it returns rather than of every candidate.
    ``created`` is the record's creation time in seconds since 1970 (UTC; None: unknown).
    """

    id: int
    cos: float
    bm25: float
    vector: np.ndarray
    record: Record | None = None
    importance: float = 1.0
    created: float | None = None
    use_count: int = 0
    chars: int = 0
    """The text's length in characters (``SearchConfig.length_weight``)."""

    @classmethod
    def of(cls, record: Record, cos: float, bm25: float, vector: np.ndarray) -> Candidate:
        """A candidate with its whole record read."""
        created = None if record.created_at is None else record.created_at.timestamp()
        return cls(record.id, cos, bm25, vector, record, record.importance, created, record.use_count,
                   len(record.text))


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardised scores (zeros when all equal), shape kept."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return np.zeros_like(x) if sd < 1e-12 else (x - x.mean()) / sd


def inverse_distance_weights(distances: Sequence[float], eps: float = EPS) -> np.ndarray:
    """The design's contribution weights ``w = 1 / (d + eps)``, normalised to sum to 1."""
    w = 1.0 / (np.maximum(np.asarray(distances, dtype=np.float64), 0.0) + eps)
    return w / w.sum() if len(w) else w


Z_MODES = ("hybrid", "topics")
"""Modes whose relevance is in z units (the others rank by a raw cosine or BM25, on scales of their own)."""


def relevance(cos: np.ndarray, bm25: np.ndarray, cfg: SearchConfig) -> np.ndarray:
    """The relevance of candidates by ``cfg.mode``: BM25 (keyword), cosine (dense), or their z-scores
    weighted by ``cfg.keyword_weight`` (hybrid, topics); shape (n,) from two arrays of shape (n,)."""
    if cfg.mode == "keyword":
        return np.asarray(bm25, dtype=np.float64).copy()
    if cfg.mode in Z_MODES:
        return cfg.keyword_weight * zscore(bm25) + (1 - cfg.keyword_weight) * zscore(cos)
    return np.asarray(cos, dtype=np.float64).copy()


def rank(cands: list[Candidate], k: int, cfg: SearchConfig, *, now: datetime | None = None,
         max_distance: float | None = None,
         fetch: Callable[[list[int]], Mapping[int, Record]] | None = None) -> list[tuple[Candidate, float]]:
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
    fetch : callable, optional
        Records by id (absent: deleted) for candidates without one. Ranking picks the best k by score and
        vector (near-duplicates dropped), then reads the records of those picks: usually one call for k
        ids; a pick deleted meanwhile or repeating an earlier pick's text is dropped and the picks redone.

    Returns
    -------
    list of (Candidate, score), best first, at most k; every candidate returned carries its record.
    """
    if not cands:
        return []
    cos = np.array([c.cos for c in cands])
    score = relevance(cos, np.array([c.bm25 for c in cands]), cfg)
    if cfg.importance_weight:
        score += cfg.importance_weight * np.log(np.maximum([c.importance for c in cands], 1e-6))
    if cfg.recency_weight:
        now_s = (now or datetime.now(timezone.utc)).timestamp()
        created = np.array([np.nan if c.created is None else c.created for c in cands])
        age = np.maximum((now_s - created) / 86400.0, 0.0)
        score += np.where(np.isnan(created), 0.0, cfg.recency_weight * 2.0 ** (-age / cfg.recency_half_life_days))
    if cfg.use_weight:
        score += cfg.use_weight * np.log1p([c.use_count for c in cands])
    if cfg.length_weight and cfg.mode in Z_MODES:  # a z-score added to one: the weight means the same
        score += cfg.length_weight * zscore(np.log1p([c.chars for c in cands]))
    order = np.lexsort((np.fromiter((c.id for c in cands), np.int64, len(cands)), -score))  # ties: by id, so
    # every process ranks alike, whatever order its index holds them in
    if max_distance is not None:
        order = order[1.0 - cos[order] <= max_distance]
    picks: list[int] = []
    dropped: set[int] = set()  # deleted since the index found them, or an earlier pick's text
    while True:  # the picks by vector, then their texts: usually once, with one read of k records
        picks = _pick(cands, order.tolist(), dropped, k, cfg.dedupe)
        need = [cands[j] for j in picks if cands[j].record is None]
        if dropped and need:  # texts repeat here: read ahead, so that each repeat does not cost a read
            ahead = [cands[j] for j in order.tolist() if j not in dropped and cands[j].record is None]
            need = list({id(c): c for c in need + ahead[:READ_AHEAD]}.values())
        if need:
            if fetch is None:
                raise ValueError("a candidate without its record needs rank(fetch=...)")
            got = fetch([c.id for c in need])
            for c in need:
                c.record = got.get(c.id)
        bad = _first_repeat(cands, picks)
        if bad is None:
            return [(cands[j], float(score[j])) for j in picks]
        dropped.add(bad)


READ_AHEAD = 16
"""Records read beyond the picks once a pick was dropped (a deleted record, a repeated text)."""


def _pick(cands: list[Candidate], order: list[int], dropped: set[int], k: int, dedupe: float) -> list[int]:
    """The first k positions of ``order`` (not dropped) whose vector is not a near-duplicate of a kept one."""
    picks: list[int] = []
    kept: np.ndarray | None = None  # the picks' vectors, row by row (filled up to len(picks))
    for j in order:
        if j in dropped:
            continue
        vec = cands[j].vector
        if dedupe < 1.0:
            if kept is None:
                kept = np.empty((k, len(vec)), vec.dtype)
            elif float(np.max(kept[:len(picks)] @ vec)) >= dedupe:
                continue
            kept[len(picks)] = vec
        picks.append(j)
        if len(picks) == k:
            break
    return picks


def _first_repeat(cands: list[Candidate], picks: list[int]) -> int | None:
    """The first pick whose record is gone or whose text (case and spacing aside) an earlier pick has."""
    seen: set[str] = set()
    for j in picks:
        record = cands[j].record
        if record is None:
            return j
        text = " ".join(record.text.lower().split())
        if text in seen:
            return j
        seen.add(text)
    return None
