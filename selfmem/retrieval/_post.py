"""Fitted post-processing of own-model vectors, and the fusion of the two views.

Raw LLM hidden states are a poor similarity space (a few huge, shared directions
dominate every cosine). :class:`Whitener` centres them and rescales the leading
principal directions to equal variance, learned from the memory's own vectors.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from .._errors import CorruptMemoryError, InvalidInputError
from .._files import NPZ_ERRORS, atomic_write
from ._embedders import l2_normalize

__all__ = ["Whitener", "fuse"]


class Whitener:
    """Centre + PCA-whiten to ``n_components`` dimensions, then L2-normalise.

    Parameters
    ----------
    n_components : int
        Output dimension (capped at ``min(n_samples - 1, n_features)`` when fitting).
    shrinkage : float
        Regulariser: each direction is scaled by ``1 / sqrt(var + shrinkage * mean(var))``;
        0 is plain whitening, large values approach plain PCA projection.
    drop_top : int
        Leading principal directions to discard ("all-but-the-top").

    Attributes
    ----------
    mean_ : ndarray, shape (n_features,)
    components_ : ndarray, shape (k, n_features)
    scale_ : ndarray, shape (k,)
    n_samples_ : int
    """

    def __init__(self, n_components: int = 128, shrinkage: float = 0.0, drop_top: int = 0) -> None:
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.drop_top = drop_top
        self.owner_ = ""

    def fit(self, X: np.ndarray) -> Whitener:
        """Learn mean and whitening directions from X, shape (n_samples, n_features)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] < 3:
            raise InvalidInputError(f"Whitener.fit needs at least 3 rows of a 2-D array, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise InvalidInputError("Whitener.fit got NaN or inf")
        if self.shrinkage < 0 or self.drop_top < 0 or self.n_components < 1:
            raise InvalidInputError("n_components >= 1, shrinkage >= 0 and drop_top >= 0 are required")
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        var, vt = _principal(X, self.mean_)
        k = min(self.n_components + self.drop_top, len(var))
        keep = slice(min(self.drop_top, k - 1), k)
        var, vt = var[keep], vt[keep]
        floor = self.shrinkage * float(var.mean()) + 1e-12
        self.components_ = vt.astype(np.float32)
        self.scale_ = (1.0 / np.sqrt(var + floor)).astype(np.float32)
        self.mean_ = self.mean_.astype(np.float32)
        self.n_samples_ = int(X.shape[0])
        self._digest: str | None = None
        return self

    @property
    def dim(self) -> int:
        return int(self.components_.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Whitened, unit-norm rows, shape (n, k) float32."""
        X = np.asarray(X, dtype=np.float32)
        return l2_normalize(((X - self.mean_) @ self.components_.T) * self.scale_)

    def digest(self) -> str:
        """Short hash of the fitted state (part of the index signature; computed once per state)."""
        cached: str | None = getattr(self, "_digest", None)
        if cached:
            return cached
        h = hashlib.sha256()
        for a in (self.mean_, self.components_, self.scale_):
            h.update(np.ascontiguousarray(a).tobytes())
        digest = h.hexdigest()[:16]
        self._digest = digest
        return digest

    def save(self, path: str | os.PathLike[str], owner: str = "") -> None:
        """Write the fitted state as ``.npz`` (no pickle), atomically; ``owner`` names the store it was fitted on."""
        atomic_write(path, lambda fh: np.savez(
            fh, mean=self.mean_, components=self.components_, scale=self.scale_, owner=np.array(owner),
            params=np.array([self.n_components, self.drop_top, self.n_samples_], dtype=np.int64),
            shrinkage=np.array([self.shrinkage], dtype=np.float64)))

    def to_bytes(self, owner: str = "") -> bytes:
        """The state as ``.npz`` bytes (what :meth:`save` writes), e.g. to keep it in a database."""
        buf = io.BytesIO()
        np.savez(buf, mean=self.mean_, components=self.components_, scale=self.scale_, owner=np.array(owner),
                 params=np.array([self.n_components, self.drop_top, self.n_samples_], dtype=np.int64),
                 shrinkage=np.array([self.shrinkage], dtype=np.float64))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Whitener:
        """A state from :meth:`to_bytes`; raises CorruptMemoryError if unreadable."""
        return cls.load(io.BytesIO(data))

    @classmethod
    def load(cls, path: str | os.PathLike[str] | io.BytesIO) -> Whitener:
        """Read a state written by :meth:`save`; raises CorruptMemoryError if unreadable."""
        try:
            with np.load(path, allow_pickle=False) as z:
                n_components, drop_top, n_samples = (int(x) for x in z["params"])
                w = cls(n_components, float(z["shrinkage"][0]), drop_top)
                w.mean_, w.components_, w.scale_ = z["mean"], z["components"], z["scale"]
                w.n_samples_ = n_samples
                w.owner_ = str(z["owner"]) if "owner" in z else ""
        except NPZ_ERRORS as exc:
            raise CorruptMemoryError(f"{path} is not a selfmem whitening file ({exc}); delete it and rebuild") from exc
        if w.components_.ndim != 2 or w.components_.shape != (len(w.scale_), len(w.mean_)):
            raise CorruptMemoryError(f"{path} has inconsistent shapes; delete it and rebuild")
        return w


def fuse(general: np.ndarray | None, own: np.ndarray | None, alpha: float) -> np.ndarray:
    """``[sqrt(alpha) * general, sqrt(1 - alpha) * own]``; inner products give ``alpha*cos_g + (1-alpha)*cos_o``.

    Parameters
    ----------
    general : ndarray, shape (n, d_g), unit rows, or None (own only)
    own : ndarray, shape (n, d_o), unit rows, or None (general only)
    alpha : float in [0, 1]

    Returns
    -------
    ndarray, shape (n, d_g + d_o) float32 (or the single view when the other is None)
    """
    if own is None:
        return np.ascontiguousarray(general, dtype=np.float32)
    if general is None:
        return np.ascontiguousarray(own, dtype=np.float32)
    return np.ascontiguousarray(
        np.hstack([np.sqrt(alpha) * general, np.sqrt(1.0 - alpha) * own]), dtype=np.float32)


GRAM_ROWS = 65_536
"""Rows per float64 block when :func:`_principal` sums the covariance of a tall matrix."""


def _principal(X: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variances (descending) and unit principal directions (rows) of ``X`` (n, d) centred on ``mean``.

    A tall matrix (n >= 2d) takes the eigendecomposition of its covariance, summed in float64 blocks:
    O(n d^2) with d x d memory, where the SVD of the centred matrix also forms its n x d left factor (1M
    own vectors: minutes and gigabytes). Directions are signed so that each one's largest entry is positive
    (an SVD's signs are arbitrary too; whitened cosines do not depend on them).
    """
    n, d = X.shape
    if n < 2 * d:
        _, s, vt = np.linalg.svd(np.asarray(X, dtype=np.float64) - mean, full_matrices=False)
        var = s**2 / max(n - 1, 1)
    else:
        cov = np.zeros((d, d))
        for lo in range(0, n, GRAM_ROWS):
            block = np.asarray(X[lo:lo + GRAM_ROWS], dtype=np.float64) - mean
            cov += block.T @ block
        w, v = np.linalg.eigh(cov)
        order = np.argsort(w)[::-1]
        var, vt = np.clip(w[order], 0.0, None) / max(n - 1, 1), v[:, order].T
    big = np.argmax(np.abs(vt), axis=1)
    vt = vt * np.sign(vt[np.arange(len(vt)), big])[:, None]
    return var, vt
