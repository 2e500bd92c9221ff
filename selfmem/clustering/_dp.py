"""Dirichlet-process topics: a fitted reducer + DP Gaussian mixture, and online Chinese-restaurant growth.

Fitting (at rebuild): PCA (or UMAP) to ``n_dims`` dimensions, then scikit-learn's
``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")`` with
diagonal covariances on a sample; the data decide how many components carry weight
(``max_topics`` is only a cap). Components that own no memory are dropped; every memory
belongs to its most probable component: there is no outlier bucket.

Online (between rebuilds), for a new reduced vector x with topics k of size n_k::

    score(k)   = log n_k + log N(x | mu_k, diag(var_k))
    score(new) = log alpha + log N(x | mu_0, diag(var_0))      (the prior predictive)

x joins the best-scoring topic, or opens a new provisional topic (mean x, variance var_0
shrunk by ``new_topic_shrink``); a joined topic's mean and size are updated.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._errors import CorruptMemoryError, DependencyError, InvalidInputError

__all__ = ["TopicModel"]

_LOG2PI = float(np.log(2 * np.pi))


def _log_gauss(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log N(x | mean, diag(var)) for x (n, d) against K components (K, d): (n, K)."""
    diff = x[:, None, :] - mean[None, :, :]
    return -0.5 * (np.sum(diff * diff / var[None], axis=2) + np.sum(np.log(var), axis=1)[None] + x.shape[1] * _LOG2PI)


class TopicModel:
    """Reducer + DP-GMM topics with online growth (scikit-learn conventions: ``fit`` returns self).

    Parameters
    ----------
    n_dims : int
        Reduced dimension.
    reducer : {"pca", "umap"}
        Reduction method (UMAP needs the ``umap-learn`` package: ``pip install selfmem[notebooks]``).
    max_topics : int
        Cap on mixture components.
    concentration : float
        Dirichlet-process concentration alpha (larger: more topics).
    sample_size : int
        Points used to fit when there are more.
    new_topic_shrink : float
        Variance of a provisional topic = prior variance times this.
    seed : int

    Attributes
    ----------
    pca_mean_, pca_components_ : ndarray (dim,), (n_dims, dim)
    means_, vars_ : ndarray (K, n_dims)
    sizes_ : ndarray (K,) float
    prior_mean_, prior_var_ : ndarray (n_dims,)
    provisional_ : ndarray (K,) bool
    """

    def __init__(self, n_dims: int = 16, reducer: str = "pca", max_topics: int = 50, concentration: float = 0.1,
                 sample_size: int = 20000, new_topic_shrink: float = 0.25, seed: int = 0) -> None:
        self.n_dims = n_dims
        self.reducer = reducer
        self.max_topics = max_topics
        self.concentration = concentration
        self.sample_size = sample_size
        self.new_topic_shrink = new_topic_shrink
        self.seed = seed

    # -- fitting --------------------------------------------------------------------
    def fit(self, X: np.ndarray) -> TopicModel:
        """Fit reducer and mixture on X, shape (n, dim), n >= 10."""
        from sklearn.mixture import BayesianGaussianMixture

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) < 10 or not np.isfinite(X).all():
            raise InvalidInputError(f"TopicModel.fit needs a finite 2-D array with at least 10 rows, got {X.shape}")
        if self.reducer not in ("pca", "umap"):
            raise InvalidInputError(f"reducer must be 'pca' or 'umap', got {self.reducer!r}")
        rng = np.random.default_rng(self.seed)
        sample = X[np.sort(rng.choice(len(X), size=min(len(X), self.sample_size), replace=False))]
        Z = self._fit_reducer(sample)
        bgm = BayesianGaussianMixture(
            n_components=min(self.max_topics, len(Z) // 2), covariance_type="diag",
            weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=self.concentration,
            max_iter=200, init_params="k-means++", random_state=self.seed)
        bgm.fit(Z)
        labels = bgm.predict(Z)
        used = np.unique(labels)  # components that own at least one sampled memory
        self.means_ = bgm.means_[used].astype(np.float64)
        self.vars_ = bgm.covariances_[used].astype(np.float64)
        self.weights_ = bgm.weights_[used] / bgm.weights_[used].sum()
        self.prior_mean_ = Z.mean(axis=0).astype(np.float64)
        self.prior_var_ = Z.var(axis=0).astype(np.float64) + 1e-6
        self.sizes_ = np.zeros(len(used))
        self.provisional_ = np.zeros(len(used), dtype=bool)
        return self

    def _fit_reducer(self, sample: np.ndarray) -> np.ndarray:
        if self.reducer == "umap":
            try:
                import umap
            except ImportError as exc:
                raise DependencyError("reducer='umap' needs umap-learn: pip install 'selfmem[notebooks]'") from exc
            self._umap = umap.UMAP(n_components=self.n_dims, metric="cosine", random_state=self.seed).fit(sample)
            self.pca_mean_ = np.zeros(sample.shape[1], np.float32)
            self.pca_components_ = np.zeros((0, sample.shape[1]), np.float32)
            return self._umap.embedding_.astype(np.float32)
        self.pca_mean_ = sample.mean(axis=0)
        _, _, vt = np.linalg.svd(sample - self.pca_mean_, full_matrices=False)
        self.pca_components_ = vt[: self.n_dims].astype(np.float32)
        return self.reduce(sample)

    def reduce(self, X: np.ndarray) -> np.ndarray:
        """Reduced vectors, shape (n, n_dims)."""
        X = np.asarray(X, dtype=np.float32)
        if getattr(self, "_umap", None) is not None:
            return self._umap.transform(X).astype(np.float32)
        return (X - self.pca_mean_) @ self.pca_components_.T

    @property
    def n_topics(self) -> int:
        return len(self.means_)

    # -- assignment -----------------------------------------------------------------
    def log_resp(self, Z: np.ndarray) -> np.ndarray:
        """Log posterior responsibilities (n, K) under the fitted mixture weights."""
        lp = _log_gauss(np.asarray(Z, np.float64), self.means_, self.vars_) + np.log(np.maximum(self.weights_, 1e-12))
        return lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)

    def assign_all(self, X: np.ndarray, top: int = 3, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Top memberships of every row of X after a fit: topic ids (n, top) and probabilities (n, top).

        Also sets ``sizes_`` from the hard assignments.
        """
        n = len(X)
        top = min(top, self.n_topics)
        tids = np.zeros((n, top), dtype=np.int64)
        probs = np.zeros((n, top), dtype=np.float32)
        sizes = np.zeros(self.n_topics)
        for s in range(0, n, chunk):
            lr = self.log_resp(self.reduce(X[s:s + chunk]))
            order = np.argsort(-lr, axis=1)[:, :top]
            tids[s:s + chunk] = order
            probs[s:s + chunk] = np.exp(np.take_along_axis(lr, order, axis=1))
            sizes += np.bincount(order[:, 0], minlength=self.n_topics)
        self.sizes_ = sizes
        return tids, probs

    def assign_online(self, x: np.ndarray) -> tuple[int, float, bool]:
        """Chinese-restaurant assignment of one vector (dim,): (topic id, probability, opened a new topic)."""
        z = self.reduce(np.asarray(x, np.float32)[None, :]).astype(np.float64)
        join = np.log(np.maximum(self.sizes_, 1e-12)) + _log_gauss(z, self.means_, self.vars_)[0]
        new = np.log(self.concentration) + _log_gauss(z, self.prior_mean_[None], self.prior_var_[None])[0, 0]
        scores = np.append(join, new)
        probs = np.exp(scores - np.logaddexp.reduce(scores))
        best = int(np.argmax(scores))
        if best == self.n_topics:
            self.means_ = np.vstack([self.means_, z])
            self.vars_ = np.vstack([self.vars_, self.prior_var_ * self.new_topic_shrink])
            self.sizes_ = np.append(self.sizes_, 1.0)
            self.weights_ = np.append(self.weights_, 0.0)
            self.provisional_ = np.append(self.provisional_, True)
            return best, float(probs[best]), True
        n = self.sizes_[best]
        self.means_[best] = (self.means_[best] * n + z[0]) / (n + 1)
        self.sizes_[best] = n + 1
        return best, float(probs[best]), False

    # -- persistence ----------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], **extra: np.ndarray) -> None:
        """Write the fitted state (plus ``extra`` arrays) as ``.npz`` (no pickle), atomically. PCA reducer only."""
        if getattr(self, "_umap", None) is not None:
            return  # a UMAP reducer is refitted on the next rebuild; nothing pickled
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, pca_mean=self.pca_mean_, pca_components=self.pca_components_, means=self.means_,
                 vars=self.vars_, sizes=self.sizes_, weights=self.weights_, prior_mean=self.prior_mean_,
                 prior_var=self.prior_var_, provisional=self.provisional_,
                 params=np.array([self.n_dims, self.max_topics, self.sample_size, self.seed], np.int64),
                 fparams=np.array([self.concentration, self.new_topic_shrink], np.float64), **extra)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TopicModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                n_dims, max_topics, sample_size, seed = (int(v) for v in z["params"])
                concentration, shrink = (float(v) for v in z["fparams"])
                m = cls(n_dims, "pca", max_topics, concentration, sample_size, shrink, seed)
                for name in ("pca_mean", "pca_components", "means", "vars", "sizes", "weights", "prior_mean",
                             "prior_var", "provisional"):
                    setattr(m, name + "_", z[name])
        except (OSError, KeyError, ValueError) as exc:
            raise CorruptMemoryError(f"{path} is not a selfmem topic model ({exc}); delete it and rebuild") from exc
        return m
