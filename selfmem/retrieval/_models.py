"""Embedders named in a config: ``"hash[:DIM]"``, ``"all-MiniLM-L6-v2"`` or a local model path."""

from __future__ import annotations

from .._errors import ConfigError
from ._embedders import Embedder, HashEmbedder, SentenceTransformerEmbedder

__all__ = ["make_embedder"]


def _hash_spec(spec: str) -> HashEmbedder | None:
    if spec == "hash":
        return HashEmbedder(64)
    if spec.startswith("hash:"):
        dim = spec[5:]
        if not dim.isdigit() or int(dim) < 2:
            raise ConfigError(f"embedder {spec!r}: write 'hash:DIM' with an integer DIM >= 2")
        return HashEmbedder(int(dim))
    return None


def make_embedder(spec: str, cfg) -> Embedder:
    """The general embedder named by ``spec`` (models load lazily on first use).

    Parameters
    ----------
    spec : str
        ``"hash"``, ``"hash:DIM"``, ``"all-MiniLM-L6-v2"`` or a sentence-transformers directory.
    cfg : EmbeddingConfig
        Device, batch size and token limit.
    """
    fake = _hash_spec(spec)
    if fake is not None:
        return fake
    return SentenceTransformerEmbedder(spec, device=cfg.device, batch_size=cfg.batch_size,
                                       max_tokens=cfg.max_tokens)
