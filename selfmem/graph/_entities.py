"""The entity layer: the named things and key words of a memory, and a personalized PageRank walk over them.

Extraction is rules over the text, no model and no LLM call, so it runs on the write path for every record
(about 20 microseconds for a 30-word text): spans of capitalised words (names: "Caroline", "New York",
"LGBTQ") and the content words of four or more letters that are not stop words, lower-cased, with a plural
``s`` dropped. Packages such as YAKE or RAKE rank key phrases of long documents by co-occurrence
statistics; a memory is one message or program of a few dozen words, where such statistics have nothing to
count, and their results are a subset of the same content words. An entity is the node ``entity:<phrase>``;
a memory MENTIONS each of its entities (at most :data:`MAX_ENTITIES`).

:func:`ppr_scores` walks the record-entity graph around a query (HippoRAG's personalized PageRank):
restarts at the query's entities and its first hits, entities that more than ``max_df`` of the memories
mention are left out (they link everything), and the walk runs over the records and entities within two
hops of the seeds (a bounded subgraph, so its cost does not grow with the memory).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import sparse

from ..retrieval._bm25 import STOP_WORDS

__all__ = ["MAX_ENTITIES", "MAX_DF", "MAX_DF_CAP", "MentionIndex", "extract_entities", "max_df", "ppr_scores"]

MAX_ENTITIES = 16
"""Entities kept per memory (names first, then content words in text order)."""
MAX_DF = 0.02
"""Entities that more than this share of the memories mention (at least 5, at most :data:`MAX_DF_CAP`) link
everything: the walk leaves them out and the map does not show them."""
MAX_DF_CAP = 50
"""The df bound's ceiling, so the walk's subgraph stays small in a large memory (a LoCoMo conversation of 600
turns has 12)."""


def max_df(n_memories: int) -> int:
    """The most memories an entity may be mentioned by to link them (:data:`MAX_DF`, :data:`MAX_DF_CAP`)."""
    return min(MAX_DF_CAP, max(5, int(MAX_DF * n_memories)))

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'\-]*|\d[\d.,:/]*")
_MORE_STOP = frozenset(
    "about after again also always another around back because before being best better both came come could "
    "doing done down each even ever every feel feeling felt from going good great have here into just know like "
    "little look made make many might more most much must never only other over really right said same should "
    "some something still such sure take than thank thanks that their them then there these they thing things "
    "think this those though through time today very want well went were what when where which while will with "
    "would yeah your yours lot lots yes okay".split())
_STOPWORDS = STOP_WORDS | _MORE_STOP


def _norm_word(w: str) -> str:
    w = w.lower().strip("'-")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w


def extract_entities(text: str, limit: int = MAX_ENTITIES) -> list[str]:
    """The entities of one text: capitalised spans (names), then content words, lower-cased, deduplicated.

    Parameters
    ----------
    text : str
    limit : int
        Entities kept at most.

    Returns
    -------
    list of str
        Normalised phrases (``"new york"``, ``"pottery"``), names first, each once.

    >>> extract_entities("Caroline: I went to the LGBTQ support group in New York. It was powerful!")
    ['caroline', 'lgbtq', 'new york', 'support', 'group', 'powerful']
    """
    names: list[str] = []
    words: list[str] = []
    span: list[str] = []
    pos = 0

    def close() -> None:
        if span:
            phrase = " ".join(_norm_word(w) for w in span)
            if phrase and phrase not in _STOPWORDS:
                names.append(phrase)
            span.clear()

    for m in _TOKEN.finditer(text):
        tok = m.group()
        between = text[pos:m.start()]
        pos = m.end()
        if between.strip(" "):  # punctuation (a sentence's end too) between words ends a name
            close()
        capital = tok[0].isupper()
        lower = tok.lower()
        if capital and lower not in _STOPWORDS and len(tok) > 1:
            span.append(tok)
        else:
            close()
            w = _norm_word(tok)
            if len(w) >= 4 and w.isalpha() and w not in _STOPWORDS:
                words.append(w)
    close()
    named = set(names)
    return list(dict.fromkeys(names + [w for w in words if w not in named]))[:limit]


def ppr_scores(seeds: Mapping[str, float], hits: Mapping[int, float],
               mentions_of: Callable[[Sequence[int]], list[tuple[int, str]]],
               mentioned_by: Callable[[Sequence[str]], list[tuple[int, str]]],
               alpha: float = 0.5, steps: int = 20) -> dict[int, float]:
    """Personalized PageRank over the records and entities within two hops of the seeds.

    Parameters
    ----------
    seeds : mapping of entity key to restart weight
        The query's entities (those some memory mentions).
    hits : mapping of record id to restart weight
        The first hits of the query.
    mentions_of : callable
        ``mentions_of(record ids) -> [(record id, entity key)]``: the entities of records.
    mentioned_by : callable
        ``mentioned_by(entity keys) -> [(record id, entity key)]``: the records of the entities that few
        enough records mention (the others, left out of the walk, return nothing).
    alpha : float
        Restart probability per step.
    steps : int
        Power iterations (the walk's mass settles in a few on such a small graph).

    Returns
    -------
    dict of int to float
        The stationary probability of each record of the subgraph (records only; sums to at most 1).
    """
    if not seeds and not hits:
        return {}
    ents = set(seeds) | {e for _, e in mentions_of(list(hits))}
    # every edge of the walk: those of the entities under the df bound (a memory's edges to entities over it
    # are not walked, so the other edges of the memories reached add nothing)
    edges = set(mentioned_by(sorted(ents)))
    kept = {e for _, e in edges}
    seeds = {e: w for e, w in seeds.items() if e in kept}
    if not edges or not (seeds or hits):
        return {}
    rec = sorted({r for r, _ in edges} | set(hits))
    ent = sorted(kept)
    ri = {r: i for i, r in enumerate(rec)}
    ei = {e: len(rec) + i for i, e in enumerate(ent)}
    n = len(rec) + len(ent)
    rows = np.fromiter((ri[r] for r, _ in edges), np.int64, len(edges))
    cols = np.fromiter((ei[e] for _, e in edges), np.int64, len(edges))
    adj = sparse.csr_matrix((np.ones(2 * len(rows)), (np.concatenate([rows, cols]), np.concatenate([cols, rows]))),
                            shape=(n, n))  # symmetric: a step from j to i is adj[i, j] / deg[j]
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros(n), where=deg > 0)
    restart = np.zeros(n)
    for e, w in seeds.items():
        restart[ei[e]] += w
    for r, w in hits.items():
        restart[ri[r]] += w
    restart /= restart.sum()
    p = restart.copy()
    for _ in range(steps):
        p = alpha * restart + (1 - alpha) * (adj @ (p * inv))
    return {r: float(p[ri[r]]) for r in rec}


class MentionIndex:
    """The MENTIONS edges of a store held in memory, both ways, for the entity walk of its one writer.

    Read from the store at the first lookup (one query, the entities as integer codes), then kept: edges added
    since are held beside the sorted arrays until there are many (then everything is read again), and a
    delete drops it all (read again at the next lookup). Lookups are binary searches: no query per search.

    Parameters
    ----------
    load : callable
        ``load() -> (memory ids (n,), entity codes (n,), entity keys)`` (:meth:`all_mentions` of the tables).
    """

    REREAD = 200_000
    """Edges added since the last read at which the next lookup reads the store again."""

    def __init__(self, load: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]) -> None:
        self._load = load
        self._ready = False
        self._added: list[tuple[int, str]] = []

    def drop(self) -> None:
        self._ready = False
        self._added = []

    def inserted(self, rows: Sequence[tuple[str, str, str, float, str]]) -> None:
        """Note the MENTIONS edges among new edge rows (committed with the records); nothing to do until the
        index is first read."""
        if self._ready:
            self._added.extend((int(s[7:]), d) for s, r, d, _, _ in rows if r == "MENTIONS")
            if len(self._added) > self.REREAD:
                self.drop()

    def _build(self) -> None:
        rec, ent, names = self._load()
        self._names = names
        self._code = {n: i for i, n in enumerate(names)}
        by_rec = np.argsort(rec, kind="stable")
        self._rec_sorted, self._rec_ents = rec[by_rec], ent[by_rec]
        by_ent = np.argsort(ent, kind="stable")
        self._ent_sorted, self._ent_recs = ent[by_ent], rec[by_ent]
        self._ready = True

    def _ensure(self) -> None:
        if not self._ready:
            self._added = []
            self._build()

    def known(self, keys: Sequence[str]) -> list[str]:
        """The entity keys among ``keys`` that some memory mentions."""
        self._ensure()
        extra = {e for _, e in self._added}
        return [k for k in keys if k in self._code or k in extra]

    def of_records(self, ids: Sequence[int]) -> list[tuple[int, str]]:
        """(memory id, entity key) of the entities of these memories."""
        self._ensure()
        q = np.asarray(sorted(set(int(i) for i in ids)), np.int64)
        lo = np.searchsorted(self._rec_sorted, q, "left")
        counts = np.searchsorted(self._rec_sorted, q, "right") - lo
        rows = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))  # every a:b
        names = self._names
        out = list(zip(np.repeat(q, counts).tolist(), [names[c] for c in self._rec_ents[rows].tolist()]))
        want = set(q.tolist())
        return out + [(r, e) for r, e in self._added if r in want]

    def of_entities(self, keys: Sequence[str], max_df: int) -> list[tuple[int, str]]:
        """(memory id, entity key) of the memories mentioning those of ``keys`` that at most ``max_df``
        memories mention."""
        self._ensure()
        extra: dict[str, list[int]] = {}
        for r, e in self._added:
            extra.setdefault(e, []).append(r)
        out: list[tuple[int, str]] = []
        for k in keys:
            code = self._code.get(k)
            rows = np.zeros(0, np.int64)
            if code is not None:
                a, b = np.searchsorted(self._ent_sorted, [code, code + 1])
                rows = self._ent_recs[a:b]
            more = extra.get(k, [])
            if 0 < len(rows) + len(more) <= max_df:
                out += [(int(r), k) for r in rows] + [(r, k) for r in more]
        return out
