"""Okapi BM25 over a fixed list of texts (keyword baseline and keyword candidates)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["BM25", "tokenize"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or but if of to in on at for with by from as is are was were be been being it its this that "
    "these those i you he she we they me him her us them my your his our their what which who whom when where "
    "why how do does did have has had not no so than too very can will just s t don should now".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words without English stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


class BM25:
    """Okapi BM25 scores of a query against every fitted document.

    Parameters
    ----------
    k1 : float
        Term-frequency saturation.
    b : float
        Length normalisation.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def fit(self, texts: Sequence[str]) -> BM25:
        """Index ``texts`` (n documents)."""
        docs = [Counter(tokenize(t)) for t in texts]
        self.n_docs_ = len(docs)
        self.doc_len_ = np.array([sum(d.values()) for d in docs], dtype=np.float32)
        self.avg_len_ = float(self.doc_len_.mean()) if len(docs) else 0.0
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        self.idf_ = {w: float(np.log(1 + (self.n_docs_ - n + 0.5) / (n + 0.5))) for w, n in df.items()}
        self.postings_: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        tmp: dict[str, tuple[list[int], list[int]]] = {}
        for i, d in enumerate(docs):
            for w, tf in d.items():
                ids, tfs = tmp.setdefault(w, ([], []))
                ids.append(i)
                tfs.append(tf)
        for w, (ids, tfs) in tmp.items():
            self.postings_[w] = (np.array(ids, dtype=np.int64), np.array(tfs, dtype=np.float32))
        return self

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document, shape (n_docs,) float32."""
        out = np.zeros(self.n_docs_, dtype=np.float32)
        norm = self.k1 * (1 - self.b + self.b * self.doc_len_ / max(self.avg_len_, 1e-9))
        for w in set(tokenize(query)):
            if w in self.postings_:
                ids, tf = self.postings_[w]
                out[ids] += self.idf_[w] * tf * (self.k1 + 1) / (tf + norm[ids])
        return out
