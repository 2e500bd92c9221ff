"""Topic state of one memory: fit at rebuild, online growth between rebuilds, routing for search.

Leaf topics (level 0) are the Dirichlet-process components, with ids 0, 1, ... (provisional
topics opened online continue the sequence). Super-topics of level L have ids
``L * LEVEL_STRIDE + j``. Centroids are stored in the index-vector space (unit mean of the
members' index vectors), so routing compares the query to them by cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

from .._config import TopicsConfig
from .._errors import CorruptMemoryError
from .._files import NPZ_ERRORS, damaged
from .._types import TopicRow
from ..retrieval._embedders import l2_normalize
from ._dp import TopicModel
from ._tree import merge_counts, top_words, tree_levels, word_counts

__all__ = ["TopicState", "TOPICS_FILE", "LEVEL_STRIDE", "LABEL_SAMPLE"]

TOPICS_FILE = "topics.npz"
LEVEL_STRIDE = 100_000
LABEL_SAMPLE = 200_000
"""Topic labels and keywords come from the words of at most this many texts (a random sample beyond it)."""


class TopicState:
    """Holds the fitted :class:`TopicModel` of a memory and turns it into stored topic rows.

    Parameters
    ----------
    cfg : TopicsConfig
    directory : Path
        Where ``topics.npz`` lives.
    """

    def __init__(self, cfg: TopicsConfig, directory: Path) -> None:
        self.cfg = cfg
        self.directory = Path(directory)
        self.model: TopicModel | None = None
        self.signature: str | None = None
        self.fitted_n = 0
        self.centroids: np.ndarray | None = None  # (K, dim) unit, leaf topics in model order
        self.parents: list[int | None] = []

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def load(self, signature: str, n_stored_leaves: int) -> bool:
        """Load ``topics.npz`` if it matches ``signature`` and the stored leaf topics; True on success."""
        path = self.directory / TOPICS_FILE
        if not path.is_file():
            return False
        try:
            model = TopicModel.load(path)
            with np.load(path, allow_pickle=False) as z:
                sig, fitted_n = str(z["signature"]), int(z["fitted_n"])
                centroids, parents = z["centroids"], z["parents"]
        except NPZ_ERRORS + (CorruptMemoryError,) as exc:
            damaged(path, exc)
            return False
        if sig != signature or model.n_topics != n_stored_leaves or len(centroids) != model.n_topics:
            return False
        self.model, self.signature, self.fitted_n = model, sig, fitted_n
        self.centroids = centroids
        self.parents = [None if p < 0 else int(p) for p in parents.tolist()]
        return True

    def save(self) -> None:
        if self.model is None or self.centroids is None:
            return
        self.model.save(self.directory / TOPICS_FILE, signature=np.array(self.signature),
                        fitted_n=np.array(self.fitted_n), centroids=self.centroids,
                        parents=np.array([-1 if p is None else p for p in self.parents], dtype=np.int64))

    # -- fitting ----------------------------------------------------------------------
    def fit(self, ids: np.ndarray, vectors: np.ndarray, texts: Sequence[str], signature: str
            ) -> tuple[list[TopicRow], np.ndarray, np.ndarray]:
        """Fit topics, tree and labels on every memory.

        Returns
        -------
        rows : list of TopicRow (leaves and super-topics)
        tids, probs : ndarray (n, top)
            Top memberships of each record in ``ids`` order.
        """
        c = self.cfg
        model = TopicModel(n_dims=min(c.n_dims, vectors.shape[1]), reducer=c.reducer, max_topics=c.max_topics,
                           concentration=c.concentration, sample_size=c.sample_size,
                           covariance=c.covariance, seed=c.seed, method=c.method,
                           min_cluster_size=c.min_cluster_size).fit(vectors)
        tids, probs = model.assign_all(vectors)
        k = model.n_topics
        top = tids[:, 0]
        sizes = np.bincount(top, minlength=k)
        # each topic's sum of member vectors as one sparse product (np.add.at: 50 s on 1M x 640, one core)
        onehot = sparse.csr_matrix((np.ones(len(top)), (top, np.arange(len(top)))), shape=(k, len(top)))
        sums = np.asarray(onehot @ np.asarray(vectors, dtype=np.float64))
        centroids = l2_normalize(sums).astype(np.float32)
        # super-topics group unit leaf centroids in the index space (Ward, weighted by size, then
        # refined): on AG News this recovers the labels better than grouping the mixture means in the
        # reduced space
        levels = tree_levels(centroids, np.maximum(sizes, 1), branching=c.branching)
        labels_by_level = [np.arange(k)] + levels
        rows: list[TopicRow] = []
        parents_of_leaf: list[int | None] = [None] * k
        # labels from the words of at most LABEL_SAMPLE texts (tokenized once; levels sum the leaves' counts)
        rows_for_words = np.arange(len(texts))
        if len(texts) > LABEL_SAMPLE:
            rows_for_words = np.sort(np.random.default_rng(c.seed).choice(len(texts), LABEL_SAMPLE, replace=False))
        leaf_counts, common = word_counts([texts[i] for i in rows_for_words.tolist()], top[rows_for_words], k)
        for lvl, groups in enumerate(labels_by_level):
            n_groups = int(groups.max()) + 1
            above = labels_by_level[lvl + 1] if lvl + 1 < len(labels_by_level) else None
            words = top_words(merge_counts(leaf_counts, groups), common, top=10)
            for g in range(n_groups):
                members = groups == g
                tid = g if lvl == 0 else lvl * LEVEL_STRIDE + g
                parent = None
                if above is not None:
                    parent = (lvl + 1) * LEVEL_STRIDE + int(above[np.argmax(members)])
                if lvl == 0:
                    parents_of_leaf[g] = parent
                cen = l2_normalize(sums[members].sum(0)[None])[0]
                rows.append(TopicRow(tid, parent, lvl, int(sizes[members].sum()), cen.astype(np.float32),
                                     " / ".join(words[g][:3]), tuple(words[g]), False))
        self.model, self.signature, self.fitted_n = model, signature, len(ids)
        self.centroids, self.parents = centroids, parents_of_leaf
        return rows, tids, probs

    # -- online ------------------------------------------------------------------------
    def assign(self, vectors: np.ndarray) -> tuple[list[tuple[int, float]], list[TopicRow]]:
        """Chinese-restaurant assignment of new index vectors (n, dim); new provisional topics as rows."""
        out, new_rows = [], []
        assert self.model is not None and self.centroids is not None, "assign() needs a fitted topic model"
        for x in vectors:
            tid, prob, opened = self.model.assign_online(x)
            if opened:
                nearest = int(np.argmax(self.centroids @ x))
                parent = self.parents[nearest]
                self.centroids = np.vstack([self.centroids, x[None].astype(np.float32)])
                self.parents.append(parent)
                new_rows.append(TopicRow(tid, parent, 0, 1, x.astype(np.float32), "(provisional)", (), True))
            out.append((tid, prob))
        return out, new_rows

    def route(self, qvec: np.ndarray, n: int) -> list[int]:
        """The n leaf topics whose centroids are nearest to the query vector (dim,) by cosine."""
        sims = self.centroids @ qvec
        return [int(i) for i in np.argsort(-sims)[:n]]

    def rebuild_reason(self, n_records: int) -> str | None:
        """Why a rebuild is due (too many provisional topics, or growth since the fit), else None."""
        if self.model is None:
            return None
        provisional = int(self.model.provisional_.sum())
        if provisional > self.cfg.provisional_limit:
            return f"{provisional} provisional topics (limit {self.cfg.provisional_limit})"
        if n_records > self.cfg.growth_limit * max(self.fitted_n, 1):
            return f"the memory grew from {self.fitted_n} to {n_records} records since topics were fitted"
        return None
