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

__all__ = ["KeywordIndex", "KEYWORDS_FILE", "top_scored"]

KEYWORDS_FILE = "keywords.npz"


def top_scored(doc_ids: np.ndarray, scores: np.ndarray, n: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The n best of scored documents (m,) (optionally only ids in ``allowed``), best first (ties: id order).

    >>> top_scored(np.array([1, 2, 3]), np.array([0.5, 2.0, 1.0]), 2)
    (array([2, 3]), array([2., 1.]))
    """
    if allowed is not None and len(doc_ids):
        keep = np.isin(doc_ids, allowed)
        doc_ids, scores = doc_ids[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")[:n]
    return doc_ids[order], scores[order]


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
        self._postings: dict[str, dict[int, int]] = {}
        self._doc_terms: dict[int, tuple[str, ...]] = {}
        self._doc_len: dict[int, int] = {}
        self._total_len = 0
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._doc_len)

    def ids(self) -> np.ndarray:
        return np.fromiter(self._doc_len.keys(), dtype=np.int64, count=len(self._doc_len))

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """Index texts under ids (an id already present is replaced)."""
        for i, text in zip(ids, texts):
            i = int(i)
            if i in self._doc_len:
                self.remove([i])
            counts = Counter(tokenize(text))
            for term, tf in counts.items():
                self._postings.setdefault(term, {})[i] = tf
                self._arrays.pop(term, None)
            self._doc_terms[i] = tuple(counts)
            n = sum(counts.values())
            self._doc_len[i] = n
            self._total_len += n

    def remove(self, ids: Sequence[int]) -> None:
        """Forget ids (unknown ids are ignored)."""
        for i in ids:
            i = int(i)
            if i not in self._doc_len:
                continue
            for term in self._doc_terms.pop(i):
                self._arrays.pop(term, None)
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
        n_docs = len(self._doc_len)
        avg = self._total_len / n_docs if n_docs else 1.0
        parts_ids, parts_scores = [], []
        for term in set(tokenize(query)):
            arrays = self._term_arrays(term)
            if arrays is None:
                continue
            doc, tf, length = arrays
            idf = np.log(1 + (n_docs - len(doc) + 0.5) / (len(doc) + 0.5))
            parts_ids.append(doc)
            parts_scores.append(idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / avg)))
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

    def _term_arrays(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(doc ids, tf, doc lengths) of a term as arrays, cached until the term changes."""
        if term not in self._arrays:
            plist = self._postings.get(term)
            if not plist:
                return None
            doc = np.fromiter(plist.keys(), dtype=np.int64, count=len(plist))
            tf = np.fromiter(plist.values(), dtype=np.float64, count=len(plist))
            length = np.fromiter((self._doc_len[d] for d in plist), dtype=np.float64, count=len(plist))
            self._arrays[term] = (doc, tf, length)
        return self._arrays[term]

    def top(self, query: str, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The n best-scoring documents (optionally among ``allowed``), best first."""
        return top_scored(*self.scores(query), n, allowed)

    # -- persistence ----------------------------------------------------------------
    def save(self, directory: Path, owner: str = "") -> None:
        """Write ``keywords.npz`` atomically: ids, lengths and each document's terms (CSR); ``owner`` names the store."""
        ids = self.ids()
        terms = sorted(self._postings)
        code = {t: j for j, t in enumerate(terms)}
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        flat_terms: list[int] = []
        flat_tf: list[int] = []
        for r, i in enumerate(ids.tolist()):
            for t in self._doc_terms[i]:
                flat_terms.append(code[t])
                flat_tf.append(self._postings[t][i])
            indptr[r + 1] = len(flat_terms)
        lens = np.array([self._doc_len[i] for i in ids.tolist()], dtype=np.int64)
        atomic_write(Path(directory) / KEYWORDS_FILE, lambda fh: np.savez(
            fh, ids=ids, lens=lens, vocab=np.array(terms, dtype=np.str_), indptr=indptr, owner=np.array(owner),
            terms=np.array(flat_terms, dtype=np.int64), tf=np.array(flat_tf, dtype=np.int64)))

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
        out = cls()
        vocab = vocab.tolist()
        for r, i in enumerate(ids.tolist()):
            lo, hi = int(indptr[r]), int(indptr[r + 1])
            doc_terms = tuple(vocab[j] for j in terms[lo:hi].tolist())
            for t, f in zip(doc_terms, tf[lo:hi].tolist()):
                out._postings.setdefault(t, {})[i] = f
            out._doc_terms[i] = doc_terms
            out._doc_len[i] = int(lens[r])
            out._total_len += int(lens[r])
        return out
