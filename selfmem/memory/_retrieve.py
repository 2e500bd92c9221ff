"""The search pipeline: filters, candidate gathering (dense FAISS + keyword BM25 top-n, scored exactly), ranking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from .._config import SearchConfig
from .._errors import InvalidInputError
from .._types import Hit
from ..retrieval._index import VectorIndex
from ..retrieval._keywords import KeywordIndex, top_scored
from ..retrieval._search import Candidate, rank
from ..retrieval._views import Views
from . import _graph_api
from . import _validate as v
from ._where import check_where
from ._store import Store

__all__ = ["gather", "search", "check_filters"]


def gather(store: Store, index: VectorIndex, keywords: KeywordIndex, query: str, qvec: np.ndarray,
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
    if mode != "dense":
        ids += top_scored(kw_ids, kw_scores, n, allowed)[0].tolist()
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


def check_filters(kinds: Any, sessions: Any, where: Any, since: Any, until: Any, max_distance: Any,
                  known_kinds: Sequence[str] | None = None) -> dict[str, Any]:
    """Validated search filters (InvalidInputError naming the bad one)."""
    kinds = v.check_name_list(kinds, "kinds")
    if kinds is not None and known_kinds is not None and set(kinds) - set(known_kinds):
        raise InvalidInputError(f"unknown kinds {sorted(set(kinds) - set(known_kinds))} in the search filter; "
                                f"this memory's kinds are {list(known_kinds)}")
    sessions = v.check_name_list(sessions, "sessions")
    check_where(where)  # every predicate checked before the query is embedded
    for name, ts in (("since", since), ("until", until)):
        if ts is not None and (not isinstance(ts, datetime) or ts.tzinfo is None):
            raise InvalidInputError(f"{name} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
    if max_distance is not None:
        max_distance = v.check_number(max_distance, "max_distance", 0.0, 2.0)
    return dict(kinds=kinds, sessions=sessions, where=where, since=since, until=until, max_distance=max_distance)


def search(store: Store, views: Views, vectors: Any, keywords: KeywordIndex, topics: Any, query: str, k: int,
           cfg: SearchConfig, filters: Mapping[str, Any], graph: Any = None, expand: Sequence[str] = (),
           expand_hits: int = 3) -> list[Hit]:
    """The search pipeline: filter, embed the query, route (topics mode), gather, rank, wrap as hits, expand.

    ``vectors`` is the vector part (its ``index``), ``topics`` the topic part (its ``route``), ``graph``
    the embedded graph whose ``expand`` edge types are followed from the best ``expand_hits`` hits.
    """
    allowed = None
    f = filters
    if f["kinds"] is not None or f["sessions"] is not None or f["where"] or f["since"] or f["until"]:
        allowed = store.filter_ids(f["kinds"], f["sessions"], f["where"], f["since"], f["until"])
        if len(allowed) == 0:
            return []
    if store.count() == 0:
        return []
    qvec = views.index_vectors(views.embed_query(query))
    if cfg.mode == "topics":
        routed = topics.route(qvec[0], cfg.route_topics)
        if routed is not None:
            allowed = routed if allowed is None else np.intersect1d(allowed, routed)
            if len(allowed) == 0:
                return []
    cands = gather(store, vectors.index, keywords, query, qvec, max(cfg.candidates, k), allowed, cfg.mode)
    ranked = rank(cands, k, cfg, max_distance=f["max_distance"])
    topic_of = store.top_topics([c.id for c, _ in ranked])
    hits = [Hit(record=c.record, score=c.cos, distance=1.0 - c.cos, rank=r, relevance=s, keyword=c.bm25,
                topic=topic_of.get(c.id)) for r, (c, s) in enumerate(ranked)]
    if expand and graph is not None:
        hits = _graph_api.expand(hits, k, graph, expand, expand_hits, store, vectors.index, qvec, allowed)
    return hits
