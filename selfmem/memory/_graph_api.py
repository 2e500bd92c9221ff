"""Walking the graph from ``Memory``: argument checks, and the graph expansion of search results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .._config import ENTITY_RELS, EXPAND_RELS, GRAPH_RELS
from .._errors import InvalidInputError, RecordNotFoundError
from .._types import Hit, Record
from ..graph._build import key, parse_key
from ..retrieval._index import VectorIndex
from ..store import Store
from ..graph._embedded import EmbeddedGraph
from ..graph._entities import extract_entities, max_df, ppr_scores
from ..graph._links import LINK_RELS
from . import _validate as v

__all__ = ["check_node", "check_rels", "check_expand", "check_walk", "expand", "expand_ids", "neighbours", "Near",
           "entity_walk", "replies", "asks", "successors", "WALK_SEED_HITS", "WALK_ALPHA"]

WALK_SEED_HITS = 3
"""First hits the entity walk restarts at (besides the query's entities)."""
WALK_ALPHA = 0.5
"""The walk's restart probability per step. It, the seed hits and the df bound (2%,
:func:`~selfmem.graph._entities.max_df`) were the best of the term-graph probe on the LoCoMo dev
conversations (docs/benchmarks-history.md, issue 42)."""

_DIRECTIONS = ("out", "in", "both")


def check_node(graph: EmbeddedGraph, node: object) -> str:
    """The key of an existing node; InvalidInputError for a malformed one, RecordNotFoundError for a missing one."""
    kind, value = parse_key(node)
    k = key(kind, value)
    if k not in graph.nodes([k]):
        raise RecordNotFoundError(f"no {kind} node {k!r} in this memory's graph")
    return k


def check_rels(rel: object, entities: bool = False) -> tuple[str, ...]:
    """None (every edge type; MENTIONS only with ``entities``), one type or a list of types."""
    if rel is None:
        return GRAPH_RELS + ENTITY_RELS if entities else GRAPH_RELS
    rels = (rel,) if isinstance(rel, str) else rel
    if not isinstance(rels, (list, tuple)) or not rels or not all(isinstance(r, str) for r in rels):
        raise InvalidInputError(f"rel must be None, an edge type or a list of them, got {rel!r}")
    bad = [r for r in rels if r not in GRAPH_RELS + ENTITY_RELS]
    if bad:
        raise InvalidInputError(f"unknown edge type(s) {bad}; use some of {list(GRAPH_RELS + ENTITY_RELS)}")
    return tuple(dict.fromkeys(rels))


def check_walk(direction: object, depth: object, limit: object, max_depth: int = 6) -> tuple[str, int, int]:
    if not isinstance(direction, str) or direction not in _DIRECTIONS:
        raise InvalidInputError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
    depth = v.check_k(depth, "depth")
    if depth > max_depth:
        raise InvalidInputError(f"depth {depth} is too deep; use at most {max_depth}")
    return direction, depth, v.check_k(limit, "limit")


def check_expand(expand: object, default: Sequence[str]) -> tuple[str, ...]:
    """The edge types to expand: None -> ``default`` (config.graph.expand), False -> none, True -> all."""
    if expand is None:
        return tuple(default)
    if expand is True:
        return EXPAND_RELS
    if expand is False:
        return ()
    rels = (expand,) if isinstance(expand, str) else expand
    if not isinstance(rels, (list, tuple)) or not all(isinstance(r, str) and r in EXPAND_RELS for r in rels):
        raise InvalidInputError(f"expand must be None, True, False or some of {list(EXPAND_RELS)}, got {expand!r}")
    return tuple(dict.fromkeys(rels))


Near = dict[int, list[tuple[int, tuple[str, ...]]]]
"""Per hit id, the memories one expansion step away (id, edge path), in the order they are added."""


def neighbours(graph: EmbeddedGraph, hit_ids: Sequence[int], rels: Sequence[str]) -> Near:
    """For each hit, the memories one expansion step away, in the order they are added."""
    keys = [key("memory", i) for i in hit_ids]
    want = set(rels)
    walk = [r for r in ("FOLLOWS", "DERIVED_FROM", "SIMILAR_TO") if r in want] + (["ABOUT"] if "SOLVES" in want else [])
    held = graph.links(hit_ids, [r for r in walk if r in LINK_RELS])  # from memory where this handle holds them
    if held is not None:
        rows: list[tuple[str, str, str, float]] = held + (graph.task_links("ABOUT", ids=hit_ids) or []
                                                          if "ABOUT" in walk else [])
    else:
        rows = [r[:4] for r in graph.rows(keys, walk)] if walk else []
    found: dict[str, list[tuple[float, str, tuple[str, ...]]]] = {k: [] for k in keys}
    tasks: dict[str, list[str]] = {}
    order = {"SOLVES": 0, "FOLLOWS": 1, "DERIVED_FROM": 2, "SIMILAR_TO": 3}  # a task's solution first
    for src, rel, dst, weight, *_ in rows:
        if rel == "ABOUT":
            if src in found:
                tasks.setdefault(dst, []).append(src)
        elif rel == "DERIVED_FROM":
            if src in found and dst.startswith("memory:"):
                found[src].append((order[rel], dst, (rel,)))
        else:
            for here, other in ((src, dst), (dst, src)):
                if here in found:
                    found[here].append((order[rel] - float(weight) * 1e-3, other, (rel,)))
    if tasks:
        solves = graph.task_links("SOLVES", tasks=list(tasks))
        for src, _, dst, *_ in solves if solves is not None else graph.rows(list(tasks), ["SOLVES"], "in"):
            for hit in tasks.get(dst, ()):
                found[hit].append((order["SOLVES"], src, ("ABOUT", "SOLVES")))
    return {int(k.split(":")[1]): [(int(o.split(":")[1]), via) for _, o, via in sorted(lst, key=lambda t: t[0])]
            for k, lst in found.items()}


def expand(hits: list[Hit], k: int, graph: EmbeddedGraph, rels: Sequence[str], n_hits: int, store: Store, index: VectorIndex,
           qvec: np.ndarray, allowed: np.ndarray | None,
           topic_of: Callable[[Sequence[int]], dict[int, int]],
           known: Mapping[int, tuple[Record, float]] | None = None,
           read: tuple[tuple[int, ...], Near, Mapping[int, Record]] | None = None) -> list[Hit]:
    """Place the graph neighbours of the best ``n_hits`` hits right after them; the list stays at k.

    An expanded hit carries ``via`` (the edge path) and ``expanded_from`` (the hit that brought it);
    its ``relevance`` is that hit's, its ``score`` its own cosine to the query. A neighbour ranked
    lower in the list moves up (so the result does not depend on how long the list is); one ranked
    higher, or outside the search filters (``allowed``), stays where it is. ``known`` holds the record
    and cosine of memories the search has read already (its candidates): only the others are read.
    ``read`` holds what the search read with its hits' records (:func:`neighbours` of the hits it expected
    first, and the neighbours' records): used when the hits are those, so that the expansion reads nothing.
    """
    if not rels or not hits:
        return hits
    ids = [h.record.id for h in hits]
    top = tuple(ids[:n_hits])
    near = read[1] if read is not None and read[0] == top else neighbours(graph, top, rels)
    extra = _brought(ids, near, n_hits, allowed)
    if not extra:
        return hits
    pos = {i: r for r, i in enumerate(ids)}
    by_id = {h.record.id: h for h in hits}
    new = [i for i in extra if i not in pos]
    fresh = _new_hits(new, {i: by_id[src] for i, (src, _) in extra.items()}, store, index, qvec, topic_of, known,
                      read[2] if read is not None else {})
    for i, (src, via) in extra.items():
        if i in pos:  # ranked lower: moved up, keeping its own scores
            by_id[i] = dataclasses.replace(by_id[i], via=via, expanded_from=src)
        elif i in fresh:
            by_id[i] = dataclasses.replace(fresh[i], via=via)
    order = _placed(ids, {i: src for i, (src, _) in extra.items() if i in by_id})
    return [dataclasses.replace(by_id[i], rank=r) for r, i in enumerate(order[:k])]


def expand_ids(ids: Sequence[int], graph: EmbeddedGraph, rels: Sequence[str], n_hits: int,
               allowed: np.ndarray | None) -> list[int]:
    """:func:`expand` on a ranked list of ids (no records, no scores): the graph neighbours of the best
    ``n_hits`` placed right after them, by the same rules; the list grows by the neighbours it did not hold."""
    if not rels or not ids:
        return list(ids)
    extra = _brought(ids, neighbours(graph, tuple(ids[:n_hits]), rels), n_hits, allowed)
    return _placed(ids, {i: src for i, (src, _) in extra.items()}) if extra else list(ids)


def _brought(ids: Sequence[int], near: Near, n_hits: int,
             allowed: np.ndarray | None) -> dict[int, tuple[int, tuple[str, ...]]]:
    """The neighbours an expansion places, each with the id that brings it and the edge path: those ranked
    below that id (or absent) and inside the search filters, the first source winning."""
    pos = {i: r for r, i in enumerate(ids)}
    ok = None if allowed is None else set(allowed.tolist())
    extra: dict[int, tuple[int, tuple[str, ...]]] = {}
    for src in ids[:n_hits]:
        for other, via in near.get(src, []):
            if other not in extra and pos.get(other, len(ids)) > pos[src] and (ok is None or other in ok):
                extra[other] = (src, via)
    return extra


def _placed(ids: Sequence[int], source: Mapping[int, int]) -> list[int]:
    """``ids`` with every id of ``source`` placed right after the id that brings it (a placed id that brings
    others is followed by them in turn); ids of ``source`` keep no other place."""
    added: dict[int, list[int]] = {}
    for i, src in source.items():
        added.setdefault(src, []).append(i)
    out: list[int] = []

    def place(i: int) -> None:
        out.append(i)
        for e in added.get(i, ()):
            place(e)

    for i in ids:
        if i not in source:
            place(i)
    return out


def _new_hits(new: Sequence[int], source: Mapping[int, Hit], store: Store, index: VectorIndex, qvec: np.ndarray,
              topic_of: Callable[[Sequence[int]], dict[int, int]],
              known: Mapping[int, tuple[Record, float]] | None, prefetched: Mapping[int, Record]) -> dict[int, Hit]:
    """Hits for memories a graph step brought in (``new``, outside the list), each with the relevance of the hit
    that brought it (``source``) and its own cosine to the query (shape of ``qvec``: (1, dim)); records are read
    only where neither ``known`` (the search's candidates, with their cosines) nor ``prefetched`` (records the
    search read with its hits) holds them. A memory deleted since, or another process's not indexed yet, is
    left out."""
    have = {i: known[i] for i in new if known is not None and i in known}
    unread = [i for i in new if i not in have and i not in prefetched]
    records = {i: prefetched[i] for i in new if i not in have and i in prefetched}
    records.update(store.get(unread) if unread else {})
    fresh = [i for i in new if i not in have and i in records]
    if store.shared and fresh:  # another process's record, committed after this call caught up: not indexed yet
        held = set(np.asarray(fresh, dtype=np.int64)[np.isin(fresh, index.ids())].tolist())
        fresh = [i for i in fresh if i in held]
        records = {i: r for i, r in records.items() if i in held}
    cos = dict(zip(fresh, (index.vectors(fresh) @ qvec[0]).tolist())) if fresh else {}
    for i, (record, c) in have.items():
        records[i], cos[i] = record, c
    kept = [i for i in new if i in records]
    topics = topic_of(kept)
    out = {}
    for i in kept:
        c = float(min(1.0, max(-1.0, cos[i])))
        out[i] = Hit(record=records[i], score=c, distance=1.0 - c, rank=0, relevance=source[i].relevance,
                     keyword=0.0, topic=topics.get(i), expanded_from=source[i].record.id)
    return out


def asks(text: str) -> bool:
    """True when a memory asks a question (its text holds a question mark): :func:`replies` lifts its answer."""
    return "?" in text


def successors(graph: EmbeddedGraph, ids: Sequence[int]) -> dict[int, int]:
    """The memory that FOLLOWS each of ``ids`` in its session (the next one written there), where one does."""
    if not ids:
        return {}
    held = graph.links(ids, ["FOLLOWS"])
    rows = held if held is not None else [r[:4] for r in graph.rows([key("memory", i) for i in ids], ["FOLLOWS"], "in")]
    wanted = set(ids)
    out: dict[int, int] = {}
    for src, rel, dst, _ in rows:
        if rel == "FOLLOWS" and dst.startswith("memory:") and src.startswith("memory:"):
            before = int(parse_key(dst)[1])
            if before in wanted:
                out[before] = int(parse_key(src)[1])
    return out


def replies(hits: list[Hit], k: int, graph: EmbeddedGraph, store: Store, index: VectorIndex, qvec: np.ndarray,
            allowed: np.ndarray | None, topic_of: Callable[[Sequence[int]], dict[int, int]],
            read: tuple[Mapping[int, int | None], Mapping[int, Record]] | None = None) -> list[Hit]:
    """Place the answer of each hit that :func:`asks` a question right above it (``SearchConfig.replies``).

    The answer is the memory that FOLLOWS the question in its session (the next one written there). One
    ranked higher already, or outside the search filters (``allowed``), stays where it is; one ranked lower
    moves up, keeping its own scores; a new one carries ``via=("FOLLOWS",)``, ``expanded_from`` (the
    question) and the question's relevance. The list stays at k. ``read`` holds what the search read with
    its hits (the :func:`successors` of those hits, None where a hit has none, and their records): only the
    rest is looked up here.
    """
    questions = [h.record.id for h in hits if asks(h.record.text)]
    if not questions:
        return hits
    known, prefetched = read if read is not None else ({}, {})
    answer = {q: a for q in questions if (a := known.get(q)) is not None}
    answer.update(successors(graph, [q for q in questions if q not in known]))
    pos = {h.record.id: r for r, h in enumerate(hits)}
    ok = None if allowed is None else set(allowed.tolist())
    lift = {q: a for q, a in answer.items() if pos.get(a, len(hits)) > pos[q] and (ok is None or a in ok)}
    if not lift:
        return hits
    by_id = {h.record.id: h for h in hits}
    fresh = _new_hits([a for a in lift.values() if a not in pos], {a: by_id[q] for q, a in lift.items()},
                      store, index, qvec, topic_of, None, prefetched)
    out: list[Hit] = []
    placed: set[int] = set()
    for h in hits:
        if h.record.id in placed:  # an answer moved up already
            continue
        a = lift.get(h.record.id)
        if a is not None and a not in placed and (a in pos or a in fresh):
            got = hits[pos[a]] if a in pos else fresh[a]
            out.append(dataclasses.replace(got, via=("FOLLOWS",), expanded_from=h.record.id))
            placed.add(a)
        out.append(h)
        placed.add(h.record.id)
    return [dataclasses.replace(h, rank=r) for r, h in enumerate(out[:k])]


def entity_walk(graph: EmbeddedGraph, query: str, first: Sequence[int], n_memories: int, depth: int) -> list[int]:
    """The memories of a personalized PageRank over the entity layer, best first (at most ``depth``), less the
    first hits it restarts at (they rank in the first pass's list already: the walk's list is what it reaches).

    Parameters
    ----------
    graph : EmbeddedGraph
    query : str
        Its entities (those some memory mentions) are restart nodes.
    first : sequence of int
        The first pass's hits, best first; the first :data:`WALK_SEED_HITS` are restart nodes too
        (weight ``1 / (1 + rank)``).
    n_memories : int
        The memory's size (for the df bound, :func:`~selfmem.graph._entities.max_df`).
    depth : int
    """
    seeds = {e: 1.0 for e in graph.entities(extract_entities(query))}
    hits = {int(i): 1.0 / (1 + r) for r, i in enumerate(first[:WALK_SEED_HITS])}
    bound = max_df(n_memories)
    scores = ppr_scores(seeds, hits, graph.mentions_of, lambda ents: graph.mentioned_by(ents, bound), WALK_ALPHA)
    return sorted((i for i in scores if i not in hits), key=lambda i: -scores[i])[:depth]
