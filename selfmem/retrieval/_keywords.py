"""An incremental BM25 keyword index over a memory's records.

Kept up to date on add and delete, saved as ``keywords.npz`` (no pickle) beside the
store and reconciled with the store's ids on open, like the vector index.

Score of document D for query Q (Okapi BM25, k1 = 1.2, b = 0.75)::

    sum over distinct terms t of Q:  idf(t) * tf(t, D) * (k1 + 1) / (tf(t, D) + k1 * (1 - b + b * |D| / avgdl))
    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._files import NPZ_ERRORS, atomic_write, damaged
from ._bm25 import tokenize

__all__ = ["KeywordIndex", "KEYWORDS_FILE", "top_scored", "HEAD", "EXACT_ALLOWED"]

KEYWORDS_FILE = "keywords.npz"
HEAD = 2000
"""Candidates a common term contributes to a keyword search (its documents of highest term impact)."""
EXACT_ALLOWED = 20_000
"""Filtered keyword searches over at most this many ids score them all exactly."""


def top_scored(doc_ids: np.ndarray, scores: np.ndarray, n: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The n best of scored documents (m,) (optionally only ids in ``allowed``), best first (ties: id order).

    >>> top_scored(np.array([1, 2, 3]), np.array([0.5, 2.0, 1.0]), 2)
    (array([2, 3]), array([2., 1.]))
    """
    if allowed is not None and len(doc_ids):
        keep = np.isin(doc_ids, allowed)
        doc_ids, scores = doc_ids[keep], scores[keep]
    order = np.lexsort((doc_ids, -scores))[:n]
    return doc_ids[order], scores[order]


class _Base:
    """A loaded ``keywords.npz`` kept as arrays: documents (CSR) and, per term, its postings (CSC order).

    Building Python dicts of a 100k-record memory's postings took 1.3 s of every open; these arrays take
    a sort. Deleted documents are masked (``alive``); new ones go to the index's dicts.
    """

    def __init__(self, ids: np.ndarray, lens: np.ndarray, vocab: list[str], indptr: np.ndarray, terms: np.ndarray,
                 tf: np.ndarray) -> None:
        self.ids, self.lens, self.vocab = ids.astype(np.int64), lens.astype(np.int64), vocab
        self.indptr, self.terms, self.tf = indptr, terms, tf
        self.code = {t: j for j, t in enumerate(vocab)}
        self.alive = np.ones(len(ids), dtype=bool)
        self.n_alive = len(ids)  # alive.sum(), kept: len() is asked several times per search
        self.row_of_id = {int(i): r for r, i in enumerate(ids.tolist())}
        rows = np.repeat(np.arange(len(ids)), np.diff(indptr))
        order = np.argsort(terms, kind="stable")
        self.post_rows, self.post_tf = rows[order], tf[order]
        self.starts = np.searchsorted(terms[order], np.arange(len(vocab) + 1))

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(doc ids, tf, doc lengths) of ``term`` among the live loaded documents."""
        j = self.code.get(term)
        if j is None:
            return None
        rows = self.post_rows[self.starts[j]:self.starts[j + 1]]
        keep = self.alive[rows]
        rows = rows[keep]
        if not len(rows):
            return None
        return (self.ids[rows], self.post_tf[self.starts[j]:self.starts[j + 1]][keep].astype(np.float64),
                self.lens[rows].astype(np.float64))

    def doc(self, row: int) -> list[tuple[str, int]]:
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        return [(self.vocab[j], int(f)) for j, f in zip(self.terms[lo:hi].tolist(), self.tf[lo:hi].tolist())]


class KeywordIndex:
    """BM25 over documents identified by int64 ids.

    Parameters
    ----------
    k1, b : float
        BM25 parameters.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._base: _Base | None = None  # what load() read, as arrays (documents added later: the dicts)
        self._postings: dict[str, dict[int, int]] = {}
        self._doc_terms: dict[int, tuple[str, ...]] = {}
        self._doc_len: dict[int, int] = {}
        self._total_len = 0
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._heads: dict[str, tuple[int, np.ndarray]] = {}  # term -> (size, ids), dropped with its arrays

    def __len__(self) -> int:
        return len(self._doc_len) + (self._base.n_alive if self._base is not None else 0)

    def ids(self) -> np.ndarray:
        own = np.fromiter(self._doc_len.keys(), dtype=np.int64, count=len(self._doc_len))
        if self._base is None:
            return own
        return np.concatenate([self._base.ids[self._base.alive], own])

    def add(self, ids: Sequence[int] | np.ndarray, texts: Sequence[str]) -> None:
        """Index texts under ids (an id already present is replaced)."""
        for i, text in zip(ids, texts):
            i = int(i)
            if i in self._doc_len or (self._base is not None and i in self._base.row_of_id):
                self.remove([i])
            counts = Counter(tokenize(text))
            for term, tf in counts.items():
                self._postings.setdefault(term, {})[i] = tf
                self._forget(term)
            self._doc_terms[i] = tuple(counts)
            n = sum(counts.values())
            self._doc_len[i] = n
            self._total_len += n

    def remove(self, ids: Sequence[int] | np.ndarray) -> None:
        """Forget ids (unknown ids are ignored)."""
        for i in ids:
            i = int(i)
            base = self._base
            base_row = base.row_of_id.get(i) if base is not None else None
            if base is not None and base_row is not None and base.alive[base_row]:
                base.alive[base_row] = False
                base.n_alive -= 1
                self._total_len -= int(base.lens[base_row])
                self._arrays.clear()
                self._heads.clear()
                continue
            if i not in self._doc_len:
                continue
            for term in self._doc_terms.pop(i):
                self._forget(term)
                plist = self._postings[term]
                del plist[i]
                if not plist:
                    del self._postings[term]
            self._total_len -= self._doc_len.pop(i)

    def scores(self, query: str, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 scores of the documents matching any query term.

        Parameters
        ----------
        query : str
        ids : ndarray of int64, optional
            Score exactly these documents instead (zero where no term matches).

        Returns
        -------
        doc_ids : ndarray (m,) int64
        scores : ndarray (m,) float32
        """
        n_docs = len(self)
        avg = self._total_len / n_docs if n_docs else 1.0
        parts_ids, parts_scores = [], []
        for term in set(tokenize(query)):
            arrays = self._term_arrays(term)
            if arrays is None:
                continue
            doc, tf, length = arrays
            parts_ids.append(doc)
            parts_scores.append(self._weights(n_docs, len(doc), tf, length, avg))
        if parts_ids:
            all_ids, inverse = np.unique(np.concatenate(parts_ids), return_inverse=True)
            all_scores = np.bincount(inverse, weights=np.concatenate(parts_scores)).astype(np.float32)
        else:
            all_ids, all_scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if ids is None:
            return all_ids, all_scores
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.float32)
        pos = np.searchsorted(all_ids, ids)
        hit = (pos < len(all_ids)) & (all_ids[np.minimum(pos, max(len(all_ids) - 1, 0))] == ids) if len(all_ids) else \
            np.zeros(len(ids), bool)
        out[hit] = all_scores[pos[hit]]
        return ids, out

    def _weights(self, n_docs: int, df: int, tf: np.ndarray, length: np.ndarray, avg: float) -> np.ndarray:
        """One term's BM25 contribution to documents with term frequencies ``tf`` and lengths ``length`` (m,)."""
        idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5))
        return idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / avg))

    def score_docs(self, query: str, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """Exact BM25 scores of documents ``ids`` (n,) for ``query``: (n,) float32, zero where no term matches.

        Each query term's postings (held sorted by id) are searched for the n ids, so the cost grows with
        n and only logarithmically with how common the terms are: what a search pays to score its
        candidates.
        """
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.float64)
        n_docs = len(self)
        if not len(ids) or not n_docs:
            return out.astype(np.float32)
        avg = self._total_len / n_docs
        for term in set(tokenize(query)):
            arrays = self._term_arrays(term)
            if arrays is None:
                continue
            doc, tf, length = arrays
            pos = np.minimum(np.searchsorted(doc, ids), len(doc) - 1)
            hit = doc[pos] == ids
            if not hit.any():
                continue
            out[hit] += self._weights(n_docs, len(doc), tf[pos[hit]], length[pos[hit]], avg)
        return out.astype(np.float32)

    def candidates(self, query: str, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The n best documents for ``query`` (optionally among ``allowed``), best first: (ids, BM25 scores).

        A term matching more than ``HEAD`` documents contributes only its ``HEAD`` documents of highest
        term impact (``tf`` over the length-normalised ``tf``, BM25's per-document factor) as candidates;
        the candidates are then scored exactly with every query term. So the top n is exact when no
        query term is that common, and otherwise misses only a document that is in no term's head. With
        a small ``allowed`` (at most ``EXACT_ALLOWED`` ids) those documents are scored exactly instead.
        """
        if allowed is not None and len(allowed) > EXACT_ALLOWED:
            return top_scored(*self.scores(query), n, allowed)
        if allowed is not None:
            pool = np.asarray(allowed, dtype=np.int64)
        else:
            heads = [h for t in set(tokenize(query)) if (h := self._head(t, max(HEAD, 4 * n))) is not None]
            if not heads:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            pool = np.unique(np.concatenate(heads)) if len(heads) > 1 else heads[0]
        scores = self.score_docs(query, pool)
        keep = scores > 0
        return top_scored(pool[keep], scores[keep], n)

    def _head(self, term: str, size: int) -> np.ndarray | None:
        """Ids of the ``size`` documents where ``term`` weighs most (all of them when fewer), cached with the term."""
        arrays = self._term_arrays(term)
        if arrays is None:
            return None
        doc, tf, length = arrays
        if len(doc) <= size:
            return doc
        cached = self._heads.get(term)
        if cached is None or cached[0] != size:
            n_docs = len(self)
            impact = self._weights(n_docs, len(doc), tf, length, self._total_len / max(n_docs, 1))  # one idf: tf's order
            cached = self._heads[term] = (size, np.sort(doc[np.argpartition(-impact, size - 1)[:size]]))
        return cached[1]

    def _forget(self, term: str) -> None:
        """Drop a term's cached arrays (its postings changed)."""
        self._arrays.pop(term, None)
        self._heads.pop(term, None)

    def _term_arrays(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(doc ids ascending, tf, doc lengths) of a term as arrays, cached until the term changes."""
        if term not in self._arrays:
            parts = [self._base.postings(term)] if self._base is not None else []
            plist = self._postings.get(term)
            if plist:
                parts.append((np.fromiter(plist.keys(), dtype=np.int64, count=len(plist)),
                              np.fromiter(plist.values(), dtype=np.float64, count=len(plist)),
                              np.fromiter((self._doc_len[d] for d in plist), dtype=np.float64, count=len(plist))))
            parts = [p for p in parts if p is not None]
            if not parts:
                return None
            doc, tf, length = (np.concatenate(cols) for cols in zip(*parts))
            order = np.argsort(doc, kind="stable")  # by id: score_docs looks ids up by bisection
            self._arrays[term] = (doc[order], tf[order], length[order])
        return self._arrays[term]

    # -- persistence ----------------------------------------------------------------
    def save(self, directory: Path, owner: str = "") -> None:
        """Write ``keywords.npz`` atomically: ids, lengths and each document's terms (CSR); ``owner`` names the store."""
        ids = self.ids()
        docs = self._docs()
        terms = sorted({t for doc in docs for t, _ in doc})
        code = {t: j for j, t in enumerate(terms)}
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        flat_terms: list[int] = []
        flat_tf: list[int] = []
        for r, doc in enumerate(docs):
            for t, f in doc:
                flat_terms.append(code[t])
                flat_tf.append(f)
            indptr[r + 1] = len(flat_terms)
        lens = np.array(self._lengths(), dtype=np.int64)
        atomic_write(Path(directory) / KEYWORDS_FILE, lambda fh: np.savez(
            fh, ids=ids, lens=lens, vocab=np.array(terms, dtype=np.str_), indptr=indptr, owner=np.array(owner),
            terms=np.array(flat_terms, dtype=np.int64), tf=np.array(flat_tf, dtype=np.int64)))

    def _docs(self) -> list[list[tuple[str, int]]]:
        """Each document's (term, tf) pairs, in ``ids()`` order."""
        out = [self._base.doc(r) for r in np.flatnonzero(self._base.alive).tolist()] if self._base is not None else []
        return out + [[(t, self._postings[t][i]) for t in self._doc_terms[i]] for i in self._doc_len]

    def _lengths(self) -> list[int]:
        base = self._base.lens[self._base.alive].tolist() if self._base is not None else []
        return base + list(self._doc_len.values())

    @classmethod
    def load(cls, directory: Path, owner: str = "") -> KeywordIndex | None:
        """Read ``keywords.npz``; None when missing, unreadable or built for another store (rebuilt from the store)."""
        path = Path(directory) / KEYWORDS_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, lens, vocab, indptr, terms, tf = (z[k] for k in ("ids", "lens", "vocab", "indptr", "terms", "tf"))
                made_for = str(z["owner"]) if "owner" in z else ""
        except NPZ_ERRORS as exc:
            damaged(path, exc)
            return None
        if owner and made_for and made_for != owner:
            damaged(path, ValueError("it was built for another memory's store"))
            return None
        if len(indptr) != len(ids) + 1 or len(lens) != len(ids) or len(terms) != len(tf):
            return None
        if len(terms) and (terms.min() < 0 or terms.max() >= len(vocab)) or np.any(np.diff(indptr) < 0):
            return None
        out = cls()
        out._base = _Base(ids, lens, vocab.tolist(), indptr, terms, tf)
        out._total_len = int(lens.sum())
        return out
