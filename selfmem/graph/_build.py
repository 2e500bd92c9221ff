"""Which edges a memory gets: pure functions from records, vectors and topic centroids to edge rows.

An edge row is ``(src, rel, dst, weight, props_json)``; node keys are ``"memory:<id>"``,
``"topic:<id>"``, ``"session:<name>"``, ``"task:<task id>"`` and ``"entity:<phrase>"`` (see :func:`key`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .._errors import InvalidInputError
from ._entities import extract_entities

__all__ = ["EdgeRow", "LABELS", "STORED_RELS", "key", "parse_key", "record_edges", "mention_edges", "similar_edges",
           "related_topics"]

EdgeRow = tuple[str, str, str, float, str]

LABELS = {"memory": "Memory", "topic": "Topic", "session": "Session", "task": "Task", "entity": "Entity"}
STORED_RELS = ("SIMILAR_TO", "FOLLOWS", "ABOUT", "SOLVES", "DERIVED_FROM", "MENTIONS")
"""Edge types kept in the ``edges`` table; IN_TOPIC, SUBTOPIC_OF and IN_SESSION are read off the
memberships, topics and records tables, RELATED_TO off the topic centroids."""


def key(kind: str, value: object) -> str:
    """A node key.

    >>> key("memory", 12), key("task", "3c9b0459")
    ('memory:12', 'task:3c9b0459')
    """
    return f"{kind}:{value}"


def parse_key(node: object) -> tuple[str, str]:
    """``(kind, value)`` of a node given as a memory id (int) or a key string; InvalidInputError otherwise.

    >>> parse_key(7), parse_key("session:exp-1")
    (('memory', '7'), ('session', 'exp-1'))
    """
    if isinstance(node, (int, np.integer)) and not isinstance(node, bool):
        if not 0 <= int(node) < 2**63:
            raise InvalidInputError(f"memory id {node} is out of range")
        return "memory", str(int(node))
    if isinstance(node, str) and ":" in node:
        kind, value = node.split(":", 1)
        if kind in LABELS and value:
            if kind in ("memory", "topic") and not (value.isascii() and value.isdigit() and len(value) < 19):
                raise InvalidInputError(f"node {node!r}: a {kind} key ends in a number, e.g. '{kind}:12'")
            return kind, value
    raise InvalidInputError(f"node {node!r} must be a memory id or a key such as 'memory:12', 'topic:3', "
                            "'session:<name>', 'task:<task id>' or 'entity:<phrase>'")


def _task_name(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text if text.strip() else None


def record_edges(ids: Sequence[int], sessions: Sequence[str | None], metadata: Sequence[Mapping[str, object]],
                 parents: Sequence[Sequence[int]], last_in_session: Mapping[str, int], *,
                 task_keys: Sequence[str], solves_key: str) -> list[EdgeRow]:
    """FOLLOWS, ABOUT, SOLVES and DERIVED_FROM edges of new records (in the order they were added).

    Parameters
    ----------
    ids : sequence of int, length n
    sessions, metadata, parents : sequences of length n
    last_in_session : mapping of session name to the id of its latest stored record
        The first new record of a session FOLLOWS that record.

    >>> rows = record_edges([5, 6], ["s", "s"], [{"task_id": "t1"}, {"solves": "t1", "verified_by": "tests"}],
    ...                     [[], [5]], {"s": 4}, task_keys=["task_id"], solves_key="solves")
    >>> [(r[0], r[1], r[2]) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
    [('memory:5', 'FOLLOWS', 'memory:4'), ('memory:5', 'ABOUT', 'task:t1'), ('memory:6', 'FOLLOWS', 'memory:5'),
     ('memory:6', 'SOLVES', 'task:t1'), ('memory:6', 'DERIVED_FROM', 'memory:5')]
    """
    last = dict(last_in_session)
    out: list[EdgeRow] = []
    for rid, session, meta, pars in zip(ids, sessions, metadata, parents):
        me = key("memory", rid)
        if session is not None:
            if session in last:
                out.append((me, "FOLLOWS", key("memory", last[session]), 1.0, "{}"))
            last[session] = rid
        about = next((t for k in task_keys if (t := _task_name(meta.get(k))) is not None), None)
        solves = _task_name(meta.get(solves_key))
        if about is not None and about != solves:
            out.append((me, "ABOUT", key("task", about), 1.0, "{}"))
        if solves is not None:
            verified = meta.get("verified_by")
            props = json.dumps({"verified_by": str(verified)} if verified is not None else {})
            out.append((me, "SOLVES", key("task", solves), 1.0, props))
        for p in dict.fromkeys(pars):
            out.append((me, "DERIVED_FROM", key("memory", p), 1.0, "{}"))
    return out


def mention_edges(ids: Sequence[int], texts: Sequence[str]) -> list[EdgeRow]:
    """MENTIONS edges from new records to their entities (:func:`~selfmem.graph._entities.extract_entities`).

    >>> [r[2] for r in mention_edges([3], ["Caroline joined the LGBTQ support group."])]
    ['entity:caroline', 'entity:lgbtq', 'entity:joined', 'entity:support', 'entity:group']
    """
    return [(key("memory", rid), "MENTIONS", key("entity", e), 1.0, "{}")
            for rid, text in zip(ids, texts) for e in extract_entities(text)]


def similar_edges(ids: np.ndarray, vectors: np.ndarray, search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
                  k: int, min_cos: float, *, within: bool = True, chunk: int = 2048) -> list[EdgeRow]:
    """SIMILAR_TO edges from each record to its ``k`` nearest (cosine >= ``min_cos``), best first.

    Parameters
    ----------
    ids : ndarray, shape (n,)
    vectors : ndarray, shape (n, dim)
        Unit index vectors of the records.
    search : callable
        ``search(queries (m, dim), k) -> (cosines (m, k), ids (m, k))`` over the stored records
        (ids < 0 for no result); a record's own id is skipped.
    within : bool
        Also link records of this batch to each other (they are not in ``search``'s index yet).
    """
    if k == 0 or len(ids) == 0:
        return []
    out: list[EdgeRow] = []
    ids = np.asarray(ids, dtype=np.int64)
    for lo in range(0, len(ids), chunk):
        q = vectors[lo:lo + chunk]
        cos, nn = search(q, k + 1)
        if within:
            sims = q @ vectors.T
            sims[np.arange(len(q)), np.arange(lo, lo + len(q))] = -np.inf
            take = min(k, len(ids) - 1)
            if take > 0:
                part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
                cos = np.hstack([cos, np.take_along_axis(sims, part, 1)])
                nn = np.hstack([nn, ids[part]])
        for row in range(len(q)):
            me = int(ids[lo + row])
            best: dict[int, float] = {}
            for c, j in zip(cos[row], nn[row]):
                j = int(j)
                if j >= 0 and j != me and c >= min_cos and c > best.get(j, -2.0):
                    best[j] = float(c)
            for j, c in sorted(best.items(), key=lambda t: -t[1])[:k]:
                out.append((key("memory", me), "SIMILAR_TO", key("memory", j), round(min(c, 1.0), 6), "{}"))
    return out


def related_topics(ids: Sequence[int], levels: Sequence[int], centroids: np.ndarray, min_cos: float,
                   per_topic: int = 5) -> list[EdgeRow]:
    """RELATED_TO edges between topics of one level whose centroids have cosine >= ``min_cos``.

    Each pair is one edge (from the lower id), at most ``per_topic`` per topic, strongest first.

    >>> c = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    >>> [(r[0], r[2]) for r in related_topics([0, 1, 2], [0, 0, 0], c, 0.9)]
    [('topic:0', 'topic:1')]
    """
    out: list[EdgeRow] = []
    if len(ids) < 2:
        return out
    ids_a = np.asarray(ids)
    lv = np.asarray(levels)
    c = np.asarray(centroids, dtype=np.float64)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    for level in np.unique(lv):
        sel = np.flatnonzero(lv == level)
        sims = c[sel] @ c[sel].T
        degree: dict[int, int] = {}
        pairs = [(sims[a, b], a, b) for a in range(len(sel)) for b in range(a + 1, len(sel)) if sims[a, b] >= min_cos]
        for s, a, b in sorted(pairs, reverse=True):
            ta, tb = int(ids_a[sel[a]]), int(ids_a[sel[b]])
            if degree.get(ta, 0) < per_topic and degree.get(tb, 0) < per_topic:
                degree[ta] = degree.get(ta, 0) + 1
                degree[tb] = degree.get(tb, 0) + 1
                lo, hi = min(ta, tb), max(ta, tb)
                out.append((key("topic", lo), "RELATED_TO", key("topic", hi), round(float(s), 6), "{}"))
    return out
