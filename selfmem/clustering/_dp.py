"""Topic models: a fitted reducer + Gaussian components, and online Chinese-restaurant growth.

Components come from one of two implementations of the :class:`Components` protocol:
:class:`DirichletProcess` (the default, below) or :class:`HDBSCANComponents` (density clusters,
every noise point kept by its soft membership). Either way the fitted state is the same kind of
Gaussian mixture, so assignment, online growth, the tree, labels and routing are shared.

Fitting (at rebuild): PCA (or UMAP) to ``n_dims`` dimensions, then scikit-learn's
``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")`` on a sample;
the data decide how many components carry weight (``max_topics`` is only a cap). Components
that own no memory are dropped; every memory belongs to its most probable component: there is
no outlier bucket.

Covariances are ``"tied"`` by default: every topic shares one full covariance matrix. On sentence
embeddings the directions of within-topic spread are largely common to all topics, and a shared
full covariance captures them where diagonal ones cannot; on AG News (docs/benchmarks-history.md) it makes
the leaf topics markedly purer (majority-label ARI of the leaves 0.51 -> 0.65 on the dual view) at
a still small cost (one d x d matrix). Variational EM tends to leave a tied mixture over-split
(two components per true cluster on clean synthetic data), so the fit is followed by BIC-tested
merges (:func:`merge_tied`) and a hard refit. ``"diag"`` and ``"full"`` are available.

Online (between rebuilds), for a new reduced vector x with topics k of size n_k::

    score(k)   = log n_k + log N(x | mu_k, Sigma_k)
    score(new) = log alpha + log N(x | mu_0, Sigma_0)      (the prior predictive)

with mu_0, Sigma_0 the mean and covariance of all reduced vectors. x joins the best-scoring
topic, or opens a new provisional topic (mean x, covariance the pooled within-topic covariance);
a joined topic's mean and size are updated. Densities are evaluated through Cholesky factors
of the precisions, stored as ``(K, d, d)`` whatever the covariance type.
"""

from __future__ import annotations

import os
import warnings
from typing import Protocol

import numpy as np

from .._errors import CorruptMemoryError, DependencyError, InvalidInputError
from .._files import NPZ_ERRORS, atomic_write

__all__ = ["TopicModel", "merge_tied", "Components", "DirichletProcess", "HDBSCANComponents"]

_LOG2PI = float(np.log(2 * np.pi))


_COVARIANCES = ("tied", "diag", "full")
_METHODS = ("dp", "hdbscan")


def _log_gauss(x: np.ndarray, mean: np.ndarray, prec_chol: np.ndarray, tied: bool = False) -> np.ndarray:
    """log N(x | mean_k, Sigma_k) for x (n, d) against K components: (n, K).

    ``prec_chol`` (K, d, d) holds upper-triangular P_k with Sigma_k^-1 = P_k P_k^T; with ``tied``
    all P_k are the same and one transform serves every component.
    """
    d = x.shape[1]
    logdet = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)  # (K,)
    if tied:
        xp, mp = x @ prec_chol[0], mean @ prec_chol[0]
        sq = (xp * xp).sum(1)[:, None] - 2 * xp @ mp.T + (mp * mp).sum(1)[None]
        sq = np.maximum(sq, 0.0)
    else:
        sq = np.empty((len(x), len(mean)))
        for k in range(len(mean)):
            y = (x - mean[k]) @ prec_chol[k]
            sq[:, k] = (y * y).sum(1)
    return -0.5 * (sq + d * _LOG2PI) + logdet[None]


def _prec_chol(cov: np.ndarray) -> np.ndarray:
    """Upper-triangular P with P P^T = cov^-1, for one (d, d) covariance (ridged if needed)."""
    d = len(cov)
    ridge = 1e-9 * max(float(np.trace(cov)) / d, 1e-12)
    for _ in range(8):
        try:
            low = np.linalg.cholesky(cov + ridge * np.eye(d))
            return np.linalg.solve(low, np.eye(d)).T
        except np.linalg.LinAlgError:
            ridge *= 100
    raise InvalidInputError("the reduced vectors have a singular covariance; add more varied memories")


def _hard_stats(Z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes (K,), means (K, d) and pooled within-cluster covariance (d, d) of hard clusters 0..K-1."""
    n = np.bincount(labels).astype(np.float64)
    mu = np.zeros((len(n), Z.shape[1]))
    np.add.at(mu, labels, Z)
    mu /= n[:, None]
    resid = Z - mu[labels]
    return n, mu, resid.T @ resid / len(Z)


def merge_tied(Z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Greedily merge hard clusters of a tied-covariance Gaussian mixture while BIC improves.

    With hard assignments, N points in d dims, shared covariance W and clusters of n_a, n_b points
    whose means are a Mahalanobis distance m apart (under W), merging a and b changes the
    classification log-likelihood by::

        ent(a, b) - N/2 log(1 + n_a n_b / ((n_a + n_b) N) m^2)

    (``ent`` = (n_a + n_b) log(n_a + n_b) - n_a log n_a - n_b log n_b, from the mixing weights; the
    second term from W growing by the between-cluster scatter) and saves d + 1 parameters, worth
    (d + 1)/2 log N under BIC. The best merge is taken while its gain is positive.

    Parameters
    ----------
    Z : ndarray (n, d)
    labels : ndarray (n,) int

    Returns
    -------
    ndarray (n,) int, the merged labels (ids of the surviving clusters)
    """
    Z = np.asarray(Z, np.float64)
    N, d = Z.shape
    ks, inv = np.unique(labels, return_inverse=True)
    n, mu, W = _hard_stats(Z, inv)
    W += 1e-9 * np.eye(d)
    alive = np.ones(len(ks), dtype=bool)
    target = np.arange(len(ks))
    penalty = (d + 1) / 2 * np.log(N)
    while alive.sum() > 1:
        idx = np.flatnonzero(alive)
        m, c = mu[idx], n[idx]
        diff = m[:, None, :] - m[None, :, :]
        m2 = np.einsum("abi,ij,abj->ab", diff, np.linalg.inv(W), diff)
        pair = c[:, None] * c[None, :] / (c[:, None] + c[None, :])
        tot = c[:, None] + c[None, :]
        gain = (tot * np.log(tot) - (c * np.log(c))[:, None] - (c * np.log(c))[None, :]
                + penalty - N / 2 * np.log1p(pair / N * m2))
        np.fill_diagonal(gain, -np.inf)
        i, j = np.unravel_index(np.argmax(gain), gain.shape)
        if gain[i, j] <= 0:
            break
        a, b = idx[i], idx[j]
        v = mu[a] - mu[b]
        W += pair[i, j] / N * np.outer(v, v)
        mu[a] = (mu[a] * n[a] + mu[b] * n[b]) / (n[a] + n[b])
        n[a] += n[b]
        alive[b] = False
        target[target == b] = a
    return ks[target[inv]]


class Components(Protocol):
    """How a topic model finds its components in the reduced vectors.

    ``fit(Z)`` takes Z, shape (n, d), and returns ``(means (K, d), covariances (K, d, d), weights (K,),
    labels (n,))``: every point gets a component (no outliers); the topic model turns them into the
    Gaussian densities that online assignment and routing use, whichever method found them.
    """

    converged_: bool

    def fit(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...


def _tied(Z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Means, the pooled covariance repeated per component, and weights of hard clusters."""
    labels = np.unique(labels, return_inverse=True)[1]
    n_k, means, pooled = _hard_stats(Z.astype(np.float64), labels)
    return means, np.repeat(pooled[None], len(n_k), 0), n_k / n_k.sum(), labels


class DirichletProcess:
    """Components from scikit-learn's DP Gaussian mixture (tied: with BIC merges and a hard refit)."""

    def __init__(self, max_topics: int, concentration: float, covariance: str, seed: int) -> None:
        self.max_topics, self.concentration, self.covariance, self.seed = max_topics, concentration, covariance, seed
        self.converged_ = False

    def fit(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        bgm = BayesianGaussianMixture(
            n_components=min(self.max_topics, len(Z) // 2), covariance_type=self.covariance,
            weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=self.concentration,
            max_iter=200, init_params="k-means++", random_state=self.seed)
        with warnings.catch_warnings():
            # a fit that stops at max_iter is still a usable mixture; ``converged_`` records it
            warnings.simplefilter("ignore", ConvergenceWarning)
            bgm.fit(Z)
        self.converged_ = bool(bgm.converged_)
        labels = bgm.predict(Z)
        if self.covariance == "tied":
            # variational EM leaves the tied mixture over-split (each true cluster cut in two, on
            # clean synthetic clusters); merge what the data do not support, then refit by hard
            # assignment: means and the pooled covariance of the merged topics
            return _tied(Z, merge_tied(Z, labels))
        used = np.unique(labels)  # components that own at least one sampled memory
        covs = np.stack([np.diag(v) for v in bgm.covariances_[used]]) if self.covariance == "diag" \
            else bgm.covariances_[used]
        return bgm.means_[used], covs, bgm.weights_[used] / bgm.weights_[used].sum(), \
            np.searchsorted(used, labels)


class HDBSCANComponents:
    """Components from HDBSCAN (the ``hdbscan`` package), every point kept by its soft membership.

    Points HDBSCAN leaves as noise join the cluster of their largest ``all_points_membership_vectors``
    membership, so no memory is an outlier (unlike BERTopic's default); components share one pooled
    covariance (HDBSCAN clusters can be too small for a covariance of their own).
    """

    def __init__(self, min_cluster_size: int) -> None:
        self.min_cluster_size = min_cluster_size
        self.converged_ = True

    def fit(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        try:
            import hdbscan
        except ImportError as exc:
            raise DependencyError("topics.method='hdbscan' needs the hdbscan package: pip install hdbscan") from exc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba/joblib chatter
            cl = hdbscan.HDBSCAN(min_cluster_size=min(self.min_cluster_size, max(2, len(Z) // 2)),
                                 prediction_data=True, core_dist_n_jobs=1).fit(Z.astype(np.float64))
            labels = cl.labels_.copy()
            if labels.max() < 0:
                labels[:] = 0  # no structure found: one topic
            elif (labels < 0).any():
                soft = hdbscan.all_points_membership_vectors(cl).reshape(len(Z), -1)
                labels[labels < 0] = np.argmax(soft[labels < 0], axis=1)
        return _tied(Z, labels)


class TopicModel:
    """Reducer + topics (DP-GMM or HDBSCAN components) with online growth (``fit`` returns self).

    Parameters
    ----------
    n_dims : int
        Reduced dimension.
    reducer : {"pca", "umap"}
        Reduction method (UMAP needs the ``umap-learn`` package, a dependency of selfmem).
    max_topics : int
        Cap on mixture components.
    covariance : {"tied", "diag", "full"}
        Covariance structure of the mixture components (``method="dp"``).
    concentration : float
        Dirichlet-process concentration alpha (larger: more topics).
    sample_size : int
        Points used to fit when there are more.
    seed : int
    method : {"dp", "hdbscan"}
        What finds the components (:class:`DirichletProcess` or :class:`HDBSCANComponents`).
    min_cluster_size : int
        HDBSCAN's smallest cluster (``method="hdbscan"``).

    Attributes
    ----------
    pca_mean_, pca_components_ : ndarray (dim,), (n_dims, dim)
    means_ : ndarray (K, n_dims)
    prec_chol_ : ndarray (K, n_dims, n_dims)
        Cholesky factors of the component precisions.
    weights_, sizes_ : ndarray (K,) float
    prior_mean_ : ndarray (n_dims,)
    prior_prec_chol_, new_prec_chol_ : ndarray (n_dims, n_dims)
        Precision factors of the prior predictive and of a newly opened topic.
    provisional_ : ndarray (K,) bool
    converged_ : bool
        Whether variational EM converged within its iterations (set by ``fit``).
    """

    def __init__(self, n_dims: int = 16, reducer: str = "pca", max_topics: int = 50, concentration: float = 0.1,
                 sample_size: int = 20000, covariance: str = "tied", seed: int = 0, method: str = "dp",
                 min_cluster_size: int = 15) -> None:
        self.method = method
        self.min_cluster_size = min_cluster_size
        self.n_dims = n_dims
        self.reducer = reducer
        self.max_topics = max_topics
        self.concentration = concentration
        self.sample_size = sample_size
        self.covariance = covariance
        self.seed = seed

    # -- fitting --------------------------------------------------------------------
    def fit(self, X: np.ndarray) -> TopicModel:
        """Fit reducer and mixture on X, shape (n, dim), n >= 10."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) < 10 or not np.isfinite(X).all():
            raise InvalidInputError(f"TopicModel.fit needs a finite 2-D array with at least 10 rows, got {X.shape}")
        if self.reducer not in ("pca", "umap"):
            raise InvalidInputError(f"reducer must be 'pca' or 'umap', got {self.reducer!r}")
        if self.covariance not in _COVARIANCES:
            raise InvalidInputError(f"covariance must be one of {_COVARIANCES}, got {self.covariance!r}")
        if self.method not in _METHODS:
            raise InvalidInputError(f"method must be one of {_METHODS}, got {self.method!r}")
        rng = np.random.default_rng(self.seed)
        sample = X[np.sort(rng.choice(len(X), size=min(len(X), self.sample_size), replace=False))]
        Z = self._fit_reducer(sample)
        finder: Components = HDBSCANComponents(self.min_cluster_size) if self.method == "hdbscan" else \
            DirichletProcess(self.max_topics, self.concentration, self.covariance, self.seed)
        means, covs, self.weights_, _ = finder.fit(Z)
        self.converged_ = finder.converged_
        self.tied_ = self.method == "hdbscan" or self.covariance == "tied"
        self.means_ = means.astype(np.float64)
        covs = covs.astype(np.float64)
        self.prec_chol_ = np.stack([_prec_chol(c) for c in covs])
        self.prior_mean_ = Z.mean(axis=0).astype(np.float64)
        self.prior_prec_chol_ = _prec_chol(np.cov(Z.astype(np.float64), rowvar=False))
        self.new_prec_chol_ = _prec_chol(np.tensordot(self.weights_, covs, axes=1))
        self.sizes_ = np.zeros(len(self.means_))
        self.provisional_ = np.zeros(len(self.means_), dtype=bool)
        return self

    def _fit_reducer(self, sample: np.ndarray) -> np.ndarray:
        if self.reducer == "umap":
            try:
                import umap
            except ImportError as exc:
                raise DependencyError("reducer='umap' needs umap-learn (a dependency of selfmem): pip install umap-learn") from exc
            with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": expected, seeded
                warnings.simplefilter("ignore", UserWarning)
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
    def _log_gauss(self, Z: np.ndarray) -> np.ndarray:
        return _log_gauss(Z, self.means_, self.prec_chol_, tied=self.tied_)

    def log_resp(self, Z: np.ndarray) -> np.ndarray:
        """Log posterior responsibilities (n, K) under the fitted mixture weights."""
        lp = self._log_gauss(np.asarray(Z, np.float64)) + np.log(np.maximum(self.weights_, 1e-12))
        return lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)

    def memberships(self, X: np.ndarray, top: int = 3, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Top memberships of the rows of X (n, dim): topic ids (n, top) and probabilities (n, top)."""
        n = len(X)
        top = min(top, self.n_topics)
        tids = np.zeros((n, top), dtype=np.int64)
        probs = np.zeros((n, top), dtype=np.float32)
        for s in range(0, n, chunk):
            lr = self.log_resp(self.reduce(X[s:s + chunk]))
            order = np.argsort(-lr, axis=1)[:, :top]
            tids[s:s + chunk] = order
            probs[s:s + chunk] = np.exp(np.take_along_axis(lr, order, axis=1))
        return tids, probs

    def assign_all(self, X: np.ndarray, top: int = 3, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Top memberships of every row of X after a fit (see :meth:`memberships`); sets ``sizes_`` from them."""
        tids, probs = self.memberships(X, top, chunk)
        self.sizes_ = np.bincount(tids[:, 0], minlength=self.n_topics).astype(np.float64)
        return tids, probs

    def assign_online(self, x: np.ndarray) -> tuple[int, float, bool]:
        """Chinese-restaurant assignment of one vector (dim,): (topic id, probability, opened a new topic)."""
        z = self.reduce(np.asarray(x, np.float32)[None, :]).astype(np.float64)
        join = np.log(np.maximum(self.sizes_, 1e-12)) + self._log_gauss(z)[0]
        new = np.log(self.concentration) + _log_gauss(z, self.prior_mean_[None], self.prior_prec_chol_[None])[0, 0]
        scores = np.append(join, new)
        probs = np.exp(scores - np.logaddexp.reduce(scores))
        best = int(np.argmax(scores))
        if best == self.n_topics:
            self.means_ = np.vstack([self.means_, z])
            self.prec_chol_ = np.concatenate([self.prec_chol_, self.new_prec_chol_[None]])
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
            return  # nothing pickled: a UMAP reducer is refitted when a writer next opens the memory
        atomic_write(path, lambda fh: np.savez(
                 fh, pca_mean=self.pca_mean_, pca_components=self.pca_components_, means=self.means_,
                 prec_chol=self.prec_chol_, sizes=self.sizes_, weights=self.weights_, prior_mean=self.prior_mean_,
                 prior_prec_chol=self.prior_prec_chol_, new_prec_chol=self.new_prec_chol_,
                 provisional=self.provisional_, covariance=np.array(self.covariance), method=np.array(self.method),
                 min_cluster_size=np.array(self.min_cluster_size),
                 params=np.array([self.n_dims, self.max_topics, self.sample_size, self.seed], np.int64),
                 fparams=np.array([self.concentration], np.float64), **extra))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TopicModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                n_dims, max_topics, sample_size, seed = (int(v) for v in z["params"])
                concentration = float(z["fparams"][0])
                covariance = str(z["covariance"])
                if covariance not in _COVARIANCES:
                    raise ValueError(f"unknown covariance {covariance!r}")
                method = str(z["method"]) if "method" in z else "dp"
                if method not in _METHODS:
                    raise ValueError(f"unknown method {method!r}")
                mcs = int(z["min_cluster_size"]) if "min_cluster_size" in z else 15
                m = cls(n_dims, "pca", max_topics, concentration, sample_size, covariance, seed, method, mcs)
                m.tied_ = method == "hdbscan" or covariance == "tied"
                for name in ("pca_mean", "pca_components", "means", "prec_chol", "sizes", "weights", "prior_mean",
                             "prior_prec_chol", "new_prec_chol", "provisional"):
                    setattr(m, name + "_", z[name])
        except NPZ_ERRORS as exc:
            raise CorruptMemoryError(f"{path} is not a selfmem topic model ({exc}); delete it and rebuild") from exc
        return m
