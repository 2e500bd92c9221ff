"""The search pipeline: filters, candidate gathering (dense FAISS + keyword BM25 top-n, scored exactly), ranking."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from .._config import MemoryConfig, SearchConfig
from .._errors import InvalidInputError
from .._timing import stage
from .._types import Hit
from ..retrieval._index import VectorIndex
from ..retrieval._keywords import KeywordIndex
from ..retrieval._search import Candidate, rank
from ..graph._embedded import EmbeddedGraph
from ..retrieval._views import Views
from . import _graph_api
from . import _validate as v
from ..store._where import check_where
from ..store import Store

__all__ = ["gather", "search", "make_request", "SearchRequest", "TopicRouter"]


def gather(store: Store, index: VectorIndex, keywords: KeywordIndex, query: str, qvec: np.ndarray,
           n: int, allowed: np.ndarray | None, mode: str) -> list[Candidate]:
    """Union of the dense and keyword top-n (per ``mode``), each with its cosine and BM25 score.

    The keyword top-n comes from :meth:`KeywordIndex.candidates` (common terms capped to their
    highest-impact documents); every candidate's BM25 is then computed exactly (:meth:`KeywordIndex.score_docs`).

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
        with stage("index"):
            _, dense = index.search(qvec, n, allowed)
        ids += [int(i) for i in dense[0] if i >= 0]
    if mode != "dense":
        with stage("keyword"):
            ids += keywords.candidates(query, n, allowed)[0].tolist()
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    with stage("store"):
        records = store.get(ids)
    ids = [i for i in ids if i in records]
    with stage("index"):
        vecs = index.vectors(ids)
        cos = vecs @ qvec[0]
    with stage("keyword"):
        bm = keywords.score_docs(query, ids).tolist()  # the candidates only: cheap in every mode
    return [Candidate(id=i, cos=float(min(1.0, max(-1.0, c))), bm25=bm[j], vector=vecs[j], record=records[i])
            for j, (i, c) in enumerate(zip(ids, cos.tolist()))]


@dataclass(frozen=True)
class SearchRequest:
    """One validated search: built once by :func:`make_request`, passed down unchanged.

    Attributes
    ----------
    query : str
    k : int
    config : SearchConfig
        The memory's search settings, with ``mode`` overridden for this call when asked.
    kinds, sessions : tuple of str, optional
    where : dict, optional
        Metadata filter, checked (see ``selfmem.store._where``).
    since, until : datetime, optional
    max_distance : float, optional
    expand : tuple of str
        Edge types followed from the best ``expand_hits`` hits (empty: no expansion).
    expand_hits : int
    """

    query: str
    k: int
    config: SearchConfig
    kinds: tuple[str, ...] | None = None
    sessions: tuple[str, ...] | None = None
    where: Mapping[str, Any] | None = None
    since: datetime | None = None
    until: datetime | None = None
    max_distance: float | None = None
    expand: tuple[str, ...] = ()
    expand_hits: int = 3

    @property
    def filtered(self) -> bool:
        """True when a filter narrows the records searched."""
        return (self.kinds is not None or self.sessions is not None or bool(self.where) or self.since is not None
                or self.until is not None)


class TopicRouter(Protocol):
    """What search needs of the topic model: the memories in the topics nearest a query, and each hit's topic."""

    def route(self, qvec: np.ndarray, n: int) -> np.ndarray | None: ...

    def top_of(self, ids: Sequence[int]) -> dict[int, int]: ...


def make_request(config: MemoryConfig, query: Any, k: Any, *, kinds: Any = None, sessions: Any = None,
                 where: Any = None, since: Any = None, until: Any = None, max_distance: Any = None,
                 mode: Any = None, expand: Any = None) -> SearchRequest:
    """Validate a search's arguments (InvalidInputError naming the bad one) into a :class:`SearchRequest`."""
    v.check_text(query, config.max_text_chars, "query")
    k = v.check_k(k)
    gcfg = config.graph
    rels = _graph_api.check_expand(expand, gcfg.expand if gcfg.enabled else ())
    cfg = config.search if mode is None else v.check_mode(mode, config.search)
    kinds = v.check_name_list(kinds, "kinds")
    if kinds is not None and set(kinds) - set(config.kinds):
        raise InvalidInputError(f"unknown kinds {sorted(set(kinds) - set(config.kinds))} in the search filter; "
                                f"this memory's kinds are {list(config.kinds)}")
    sessions = v.check_name_list(sessions, "sessions")
    check_where(where)  # every predicate checked before the query is embedded
    for name, ts in (("since", since), ("until", until)):
        if ts is not None and (not isinstance(ts, datetime) or ts.tzinfo is None):
            raise InvalidInputError(f"{name} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
    if max_distance is not None:
        max_distance = v.check_number(max_distance, "max_distance", 0.0, 2.0)
    return SearchRequest(query, k, cfg, None if kinds is None else tuple(kinds),
                         None if sessions is None else tuple(sessions), where, since, until, max_distance,
                         tuple(rels), gcfg.expand_hits)


def _rrf(lists: Sequence[tuple[float, Sequence[int]]]) -> dict[int, float]:
    """Reciprocal-rank fusion: ``sum(weight / (60 + rank))`` over the lists an id is in."""
    out: dict[int, float] = {}
    for weight, ids in lists:
        for r, i in enumerate(ids):
            out[i] = out.get(i, 0.0) + weight / (60 + r)
    return out


def feedback(req: SearchRequest, cands: list[Candidate], store: Store, index: VectorIndex, keywords: KeywordIndex,
             qvec: np.ndarray, allowed: np.ndarray | None) -> tuple[list[tuple[Candidate, float]], list[Candidate]]:
    """The second pass of ``SearchConfig.feedback``: the query moved towards its best hits, searched again,
    both lists fused by reciprocal ranks. Returns the top k (candidates scored against the original query,
    with their fused score) and every candidate seen (for the expansion's reuse).

    Parameters
    ----------
    qvec : ndarray, shape (1, dim)
        The original query's index vector.
    """
    cfg = req.config
    n = max(cfg.candidates, req.k)
    with stage("fusion"):
        first = rank(cands, n, cfg, max_distance=req.max_distance)
    top = [c for c, _ in first[:cfg.feedback]]
    moved = qvec[0] + np.sum([c.vector for c in top], axis=0)
    moved = (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)[None, :]
    text = " ".join([req.query, *(c.record.text for c in top)])
    again = gather(store, index, keywords, text, moved, n, allowed, cfg.mode)  # (timed by its own stages)
    with stage("fusion"):
        second = rank(again, n, cfg)
    known = {c.id: c for c in cands}
    new = [c for c in again if c.id not in known]
    if new:  # scored against the original query, as every hit is
        bm = keywords.score_docs(req.query, [c.id for c in new]).tolist()
        for c, b in zip(new, bm):
            known[c.id] = dataclasses.replace(c, cos=float(min(1.0, max(-1.0, c.vector @ qvec[0]))), bm25=b)
    fused = _rrf([(1.0, [c.id for c, _ in first]), (cfg.feedback_weight, [c.id for c, _ in second])])
    order = sorted(fused, key=lambda i: -fused[i])
    if req.max_distance is not None:
        order = [i for i in order if 1.0 - known[i].cos <= req.max_distance]
    return [(known[i], fused[i]) for i in order[:req.k]], list(known.values())


def search(req: SearchRequest, store: Store, views: Views, index: VectorIndex, keywords: KeywordIndex,
           topics: TopicRouter, graph: EmbeddedGraph | None = None) -> list[Hit]:
    """The search pipeline: filter, embed the query, route (topics mode), gather, rank, wrap as hits, expand.

    ``graph`` is the embedded graph whose ``req.expand`` edge types are followed from the best hits.
    """
    allowed = None
    cfg = req.config
    if req.filtered:
        with stage("filter"):
            allowed = store.filter_ids(req.kinds, req.sessions, req.where, req.since, req.until)
        if len(allowed) == 0:
            return []
    if len(index) == 0 and store.count() == 0:  # count(*) reads every row on PostgreSQL: only when the index is empty
        return []
    with stage("embed"):
        qvec = views.index_vectors(views.embed_query(req.query))
    if cfg.mode == "topics":
        with stage("topics"):
            routed = topics.route(qvec[0], cfg.route_topics)
        if routed is not None:
            allowed = routed if allowed is None else np.intersect1d(allowed, routed)
            if len(allowed) == 0:
                return []
    cands = gather(store, index, keywords, req.query, qvec, max(cfg.candidates, req.k), allowed, cfg.mode)
    with stage("fusion"):
        ranked = rank(cands, req.k, cfg, max_distance=req.max_distance)
    if cfg.feedback and ranked:
        ranked, cands = feedback(req, cands, store, index, keywords, qvec, allowed)
    with stage("topics"):
        topic_of = topics.top_of([c.id for c, _ in ranked])
    hits = [Hit(record=c.record, score=c.cos, distance=1.0 - c.cos, rank=r, relevance=s, keyword=c.bm25,
                topic=topic_of.get(c.id)) for r, (c, s) in enumerate(ranked)]
    if req.expand and graph is not None:
        with stage("graph"):
            hits = _graph_api.expand(hits, req.k, graph, req.expand, req.expand_hits, store, index, qvec,
                                     allowed, topics.top_of, {c.id: (c.record, c.cos) for c in cands})
    return hits
