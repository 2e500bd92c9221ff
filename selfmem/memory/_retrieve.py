"""The search pipeline: filters, candidate gathering (dense FAISS + keyword BM25 top-n, scored exactly), ranking."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .._config import MemoryConfig, SearchConfig
from .._errors import InvalidInputError
from .._timing import stage
from .._types import Hit, Record
from ..retrieval._index import VectorIndex
from ..retrieval._keywords import KeywordIndex
from ..retrieval import _sentences
from ..retrieval._search import Z_MODES, Candidate, rank, relevance
from ..graph._embedded import EmbeddedGraph
from ..retrieval._views import Views
from . import _graph_api
from . import _validate as v
from ._rank_columns import RankColumns
from ..store._where import check_where
from ..store import Store

if TYPE_CHECKING:
    from ._part_sentences import SentencePart

__all__ = ["gather", "search", "make_request", "SearchRequest", "TopicRouter"]


def gather(store: Store, index: VectorIndex, keywords: KeywordIndex, query: str, qvec: np.ndarray,
           n: int, allowed: np.ndarray | None, mode: str, columns: RankColumns | None = None) -> list[Candidate]:
    """Union of the dense and keyword top-n (per ``mode``), each with its cosine and BM25 score.

    The keyword top-n comes from :meth:`KeywordIndex.candidates` (common terms capped to their
    highest-impact documents); every candidate's BM25 is then computed exactly (:meth:`KeywordIndex.score_docs`).

    Cosines come from the vectors the index holds (exact for the flat index; the float16
    re-rank copy for IVF-PQ), so no vector is read from the store on the search path. With ``columns``
    the candidates carry the ranking columns held in memory and no record (ranking reads the records of
    the hits it keeps); without, every candidate's record is read here (ranking by use counts, which change).

    Parameters
    ----------
    qvec : ndarray, shape (1, dim)
        The query's index vector.
    n : int
        Candidates per source.
    allowed : ndarray of int64, optional
        Only these ids may be returned.
    mode : {"hybrid", "dense", "keyword", "topics"}
    columns : RankColumns, optional
    """
    ids: list[int] = []
    scored: dict[int, float] = {}  # the keyword candidates' BM25, computed exactly by candidates()
    if mode != "keyword" and len(index):
        with stage("index"):
            _, dense = index.search(qvec, n, allowed)
        ids += [int(i) for i in dense[0] if i >= 0]
    if mode != "dense":
        with stage("keyword"):
            kw_ids, kw_scores = keywords.candidates(query, n, allowed)
            scored = dict(zip(kw_ids.tolist(), kw_scores.tolist()))
        ids += list(scored)
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    with stage("store"):
        if columns is not None:
            cols = columns.get(store, np.asarray(ids, dtype=np.int64))
            keep = cols.present
            ids = [i for i, ok in zip(ids, keep.tolist()) if ok]
            importance, created = cols.importance[keep].tolist(), cols.created[keep].tolist()
            chars = cols.chars[keep].tolist()
        else:
            records = store.get(ids)
            ids = [i for i in ids if i in records]
    with stage("index"):
        vecs = index.vectors(ids)
        cos = np.clip(vecs @ qvec[0], -1.0, 1.0).tolist()
    with stage("keyword"):
        rest = [i for i in ids if i not in scored]  # the dense candidates only: cheap in every mode
        scored.update(zip(rest, keywords.score_docs(query, rest).tolist()))
        bm = [scored[i] for i in ids]
    if columns is not None:
        return [Candidate(i, cos[j], bm[j], vecs[j], None, importance[j], created[j], chars=chars[j])
                for j, i in enumerate(ids)]
    return [Candidate.of(records[i], cos[j], bm[j], vecs[j]) for j, i in enumerate(ids)]


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
    where: Mapping[str, object] | None = None
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


def make_request(config: MemoryConfig, query: object, k: object, *, kinds: object = None, sessions: object = None,
                 where: object = None, since: object = None, until: object = None, max_distance: object = None,
                 mode: object = None, expand: object = None) -> SearchRequest:
    """Validate a search's arguments (InvalidInputError naming the bad one) into a :class:`SearchRequest`."""
    query = v.check_text(query, config.max_text_chars, "query")
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
    where = where if isinstance(where, Mapping) else None  # check_where refused anything else
    since, until = _moment("since", since), _moment("until", until)
    if max_distance is not None:
        max_distance = v.check_number(max_distance, "max_distance", 0.0, 2.0)
    return SearchRequest(query, k, cfg, None if kinds is None else tuple(kinds),
                         None if sessions is None else tuple(sessions), where, since, until, max_distance,
                         tuple(rels), gcfg.expand_hits)


def _moment(name: str, ts: object) -> datetime | None:
    if ts is not None and (not isinstance(ts, datetime) or ts.tzinfo is None):
        raise InvalidInputError(f"{name} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
    return ts


def search(req: SearchRequest, store: Store, views: Views, index: VectorIndex, keywords: KeywordIndex,
           topics: TopicRouter, graph: EmbeddedGraph | None = None, columns: RankColumns | None = None,
           sentences: SentencePart | None = None) -> list[Hit]:
    """The search pipeline: filter, embed the query, route (topics mode), gather, rank, wrap as hits, expand
    (then fuse the second hops' lists, and lift the answers of questions, when the config asks), and move
    the hits by their best sentence match (``SearchConfig.sentence_weight``).

    ``graph`` is the embedded graph whose ``req.expand`` edge types are followed from the best hits;
    ``columns`` the handle's ranking columns (:mod:`._rank_columns`; None: every candidate's record is read);
    ``sentences`` the handle's sentence vectors (None or empty: no sentence term).
    """
    cfg = req.config
    moving = bool(cfg.sentence_weight) and cfg.mode in Z_MODES and sentences is not None and bool(sentences.units)
    if not moving:
        return _search(req, store, views, index, keywords, topics, graph, columns)
    assert sentences is not None
    deep = dataclasses.replace(req, k=max(req.k, SENTENCE_DEPTH))
    hits = _search(deep, store, views, index, keywords, topics, graph, columns)
    with stage("fusion"):
        best = sentences.best([h.record.id for h in hits], views.embed_query(req.query)["general"][0])
        order = _sentences.rerank(best, cfg.sentence_weight)[:req.k].tolist()
    return [dataclasses.replace(hits[j], rank=r) for r, j in enumerate(order)]


def _search(req: SearchRequest, store: Store, views: Views, index: VectorIndex, keywords: KeywordIndex,
            topics: TopicRouter, graph: EmbeddedGraph | None, columns: RankColumns | None) -> list[Hit]:
    """:func:`search` without the sentence term."""
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
    run = functools.partial(_one_pass, req, store=store, index=index, keywords=keywords, topics=topics, graph=graph,
                            allowed=allowed, columns=columns)
    walking = bool(cfg.entity_weight) and graph is not None
    if not cfg.feedback and not walking:
        return run(req.query, qvec, req.k, answer=True)[0]
    depth = max(req.k, FEEDBACK_DEPTH)
    first, cands = run(req.query, qvec,
                       depth if cfg.feedback or req.expand else first_depth(req.k, cfg.entity_weight, depth))
    if not first:
        return first
    lists = [(1.0, [h.record.id for h in first])]
    if cfg.feedback:
        lists.append((cfg.feedback_weight, _feedback(req, first, cands, depth, views=views, index=index,
                                                     keywords=keywords, graph=graph, allowed=allowed)))
    if walking:
        assert graph is not None
        with stage("graph"):
            walked = _graph_api.entity_walk(graph, req.query, [h.record.id for h in first], len(index), depth)
        if allowed is not None:  # a memory outside the search's filters is left out
            ok = set(np.asarray(allowed).tolist())
            walked = [i for i in walked if i in ok]
        lists.append((cfg.entity_weight, walked))
    with stage("fusion"):
        fused = _fuse(req, lists, first, qvec, index=index, keywords=keywords, store=store, topics=topics)
    if not (cfg.replies and req.expand and graph is not None):
        return fused
    with stage("graph"):
        return _graph_api.replies(fused, req.k, graph, store, index, qvec, allowed, topics.top_of)


SENTENCE_DEPTH = 20
"""Hits that :data:`SearchConfig.sentence_weight` moves (at least k): 30 gave the same recall on LoCoMo and
read half as many records again."""

FEEDBACK_DEPTH = 30
"""Hits per pass that :data:`SearchConfig.feedback` and :data:`SearchConfig.entity_weight` fuse (at least k)."""


def _feedback(req: SearchRequest, first: list[Hit], cands: list[Candidate], depth: int, *, views: Views,
              index: VectorIndex, keywords: KeywordIndex, graph: EmbeddedGraph | None,
              allowed: np.ndarray | None) -> list[int]:
    """:data:`SearchConfig.feedback`'s list: the query joined by the text of the first pass's best hits, ranked
    over the first pass's candidates and the moved query's own dense candidates (ids, best first, at most
    ``depth``), expanded over the graph as the first pass is.

    The moved query is that text, embedded (a second model call) and scored by BM25. The first pass's
    candidates are re-scored rather than gathered again: BM25 candidates for a text of a few dozen words
    would cost most of a search (the dense index's candidates for the moved vector cost a fraction of a
    millisecond; in keyword mode the joined text's keyword candidates are taken).
    """
    cfg = req.config
    top = first[:cfg.feedback]
    text = " ".join([req.query, *(h.record.text for h in top)])
    with stage("embed"):
        moved = views.index_vectors(views.embed_query(text))
    ids = [c.id for c in cands]
    known = set(ids)
    found: list[int] = []
    if cfg.mode == "keyword":
        with stage("keyword"):
            found = keywords.candidates(text, cfg.candidates, allowed)[0].tolist()
    elif len(index):
        with stage("index"):
            found = [int(i) for i in index.search(moved, cfg.candidates, allowed)[1][0] if i >= 0]
    extra = [i for i in dict.fromkeys(found) if i not in known]
    with stage("index"):
        vecs = np.stack([c.vector for c in cands])
        if extra:
            vecs = np.concatenate([vecs, index.vectors(extra)])
        cos = vecs.astype(np.float32) @ moved[0].astype(np.float32)
    ids += extra
    if cfg.mode == "dense":  # ranks by cosine alone: no BM25 to compute
        bm = np.zeros(len(ids))
    else:
        with stage("keyword"):
            bm = keywords.score_docs(text, ids)
    score = relevance(cos, bm, cfg)
    order = [ids[j] for j in np.lexsort((np.asarray(ids, dtype=np.int64), -score))[:depth].tolist()]
    if not (req.expand and graph is not None):
        return order
    with stage("graph"):  # as the first pass: the neighbours of its best hits right after them
        return _graph_api.expand_ids(order, graph, req.expand, req.expand_hits, allowed)[:depth]


def first_depth(k: int, others: float, depth: int) -> int:
    """The first pass's hits that decide the top ``k`` once lists of total weight ``others`` are fused with it.

    The k best of the first pass keep at least ``1 / (60 + k - 1)`` each, so a memory at first-pass rank r
    (or absent) can enter the top k only if ``1 / (60 + r) + others / 60`` exceeds that; the ranks past the
    returned depth cannot, and reading their records is wasted (the entity walk at weight 0.1 and k = 10 needs
    19 of the 30). With ``others`` that large, ``depth`` itself.
    """
    room = 1.0 / (59 + k) - others / 60
    if room <= 0:
        return depth
    return min(depth, max(k, math.floor(1.0 / room - 60) + 2))  # + 2: one past the bound, one for rounding


def _one_pass(req: SearchRequest, query: str, qvec: np.ndarray, k: int, *, store: Store, index: VectorIndex,
              keywords: KeywordIndex, topics: TopicRouter, graph: EmbeddedGraph | None,
              allowed: np.ndarray | None, columns: RankColumns | None,
              answer: bool = False) -> tuple[list[Hit], list[Candidate]]:
    """Gather, rank, wrap as hits and expand, for one query text and its index vector (shape (1, dim)); with
    ``answer`` and ``SearchConfig.replies``, lift the answers of question hits too (:func:`_graph_api.replies`).
    Returns the hits and the candidates they were ranked from."""
    cfg = req.config
    columns = None if cfg.use_weight else columns  # use counts change: read with the records
    cands = gather(store, index, keywords, query, qvec, max(cfg.candidates, k), allowed, cfg.mode, columns)

    expanding = bool(req.expand) and graph is not None
    answering = expanding and answer and cfg.replies
    read: list[tuple[tuple[int, ...], _graph_api.Near, dict[int, Record]]] = []
    follows: dict[int, int | None] = {}

    def questions(ids: list[int]) -> list[int]:
        """Those of ``ids`` that ask a question, or may: read from the ranking columns (or the candidates'
        records) before the records themselves are read."""
        if columns is not None:
            return [i for i, q in zip(ids, columns.get(store, np.asarray(ids, dtype=np.int64)).asks.tolist()) if q]
        texts = {c.id: c.record.text for c in cands if c.record is not None}
        return [i for i in ids if i not in texts or _graph_api.asks(texts[i])]

    def fetch(ids: list[int]) -> dict[int, Record]:
        """The picks' records; on the first read, with the graph neighbours of the best picks and the
        memories that follow those of them that ask a question (the answers ``replies`` may lift), in one
        read."""
        extra: list[int] = []
        if expanding and not read:
            assert graph is not None
            top = tuple(ids[:req.expand_hits])
            with stage("graph"):
                near = _graph_api.neighbours(graph, top, req.expand)
                brought = [o for lst in near.values() for o, _ in lst]
                asked = questions(list(dict.fromkeys([*ids, *brought]))) if answering else []
                after = _graph_api.successors(graph, asked)
            follows.update({i: after.get(i) for i in asked})
            picked = set(ids)
            extra = [o for o in dict.fromkeys([*brought, *after.values()]) if o not in picked]
        with stage("store"):
            got = store.get(ids + extra)
        if expanding and not read:
            read.append((top, near, {i: got[i] for i in extra if i in got}))
        return got

    with stage("fusion"):
        ranked = rank(cands, k, cfg, max_distance=req.max_distance, fetch=fetch)
    with stage("topics"):
        topic_of = topics.top_of([c.id for c, _ in ranked])
    hits = [Hit(record=_read(c), score=c.cos, distance=1.0 - c.cos, rank=r, relevance=s, keyword=c.bm25,
                topic=topic_of.get(c.id)) for r, (c, s) in enumerate(ranked)]
    if req.expand and graph is not None:
        with stage("graph"):
            hits = _graph_api.expand(hits, k, graph, req.expand, req.expand_hits, store, index, qvec,
                                     allowed, topics.top_of,
                                     {c.id: (c.record, c.cos) for c in cands if c.record is not None},
                                     read[0] if read else None)
    if answering:
        assert graph is not None
        with stage("graph"):
            hits = _graph_api.replies(hits, k, graph, store, index, qvec, allowed, topics.top_of,
                                      (follows, read[0][2] if read else {}))
    return hits, cands


def _read(c: Candidate) -> Record:
    assert c.record is not None  # rank() returns candidates with their records
    return c.record


def _fuse(req: SearchRequest, lists: list[tuple[float, list[int]]], first: list[Hit], qvec: np.ndarray, *,
          index: VectorIndex, keywords: KeywordIndex, store: Store, topics: TopicRouter) -> list[Hit]:
    """The ranked lists of ids (first pass, ``feedback``'s list, the entity walk) fused by weighted
    reciprocal ranks (``weight / (60 + rank)``) into the top k.

    ``first`` holds the first pass's hits. A memory the first pass did not find gets its cosine and BM25
    against the original query, and its record is read only once it ranks among the best: records are read
    after the fusion, not for every id the lists hold.
    """
    fused: dict[int, float] = {}
    for weight, ids in lists:
        for r, i in enumerate(ids):
            fused[i] = fused.get(i, 0.0) + weight / (60 + r)
    order = sorted(fused, key=lambda i: -fused[i])
    known = {h.record.id: h for h in first}
    out: list[Hit] = []
    pos = 0
    while len(out) < req.k and pos < len(order):
        batch = order[pos:pos + req.k - len(out)]
        pos += len(batch)
        filled = _rescored(req, [i for i in batch if i not in known], qvec, index, keywords, store, topics)
        for i in batch:
            hit = known.get(i) or filled.get(i)  # None: deleted since a pass found it
            if hit is not None and (req.max_distance is None or hit.distance <= req.max_distance):
                out.append(hit)
    return [dataclasses.replace(h, rank=r, relevance=fused[h.record.id]) for r, h in enumerate(out)]


def _rescored(req: SearchRequest, ids: list[int], qvec: np.ndarray, index: VectorIndex, keywords: KeywordIndex,
              store: Store, topics: TopicRouter) -> dict[int, Hit]:
    """Hits for ids outside the first pass, from their records (read here; an id whose record is gone is left
    out), scored against the original query."""
    if not ids:
        return {}
    with stage("store"):
        got = dict(store.get(ids))
    topic_of = topics.top_of(list(got)) if got else {}
    base = {i: Hit(record=got[i], score=0.0, distance=1.0, rank=0, relevance=0.0, keyword=0.0, topic=topic_of.get(i))
            for i in ids if i in got}
    keep = list(base)
    if not keep:
        return {}
    cos = (index.vectors(keep) @ qvec[0]).tolist()
    bm = keywords.score_docs(req.query, keep).tolist()
    out = {}
    for i, c, b in zip(keep, cos, bm):
        c = float(min(1.0, max(-1.0, c)))
        out[i] = dataclasses.replace(base[i], score=c, distance=1.0 - c, keyword=b)
    return out
