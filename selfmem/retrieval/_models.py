"""Embedders named in a config: ``"hash[:DIM]"``, ``"all-MiniLM-L6-v2"`` or a local model path."""

from __future__ import annotations

from .._config import EmbeddingConfig
from .._errors import ConfigError
from ._embedders import Embedder, HashEmbedder, SentenceTransformerEmbedder

__all__ = ["make_embedder", "make_own_embedder"]


def _hash_spec(spec: str) -> HashEmbedder | None:
    if spec == "hash":
        return HashEmbedder(64)
    if spec.startswith("hash:"):
        dim = spec[5:]
        if not dim.isdigit() or int(dim) < 2:
            raise ConfigError(f"embedder {spec!r}: write 'hash:DIM' with an integer DIM >= 2")
        return HashEmbedder(int(dim))
    return None


def make_embedder(spec: str, cfg: EmbeddingConfig) -> Embedder:
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
                                       max_tokens=cfg.max_tokens, dtype=cfg.dtype, runtime=cfg.runtime)


def make_own_embedder(spec: str | None, cfg: EmbeddingConfig) -> Embedder | None:
    """The own-model embedder named by ``spec`` (None for no own model).

    Parameters
    ----------
    spec : str or None
        ``"smollm2"``, a ``.gguf`` file, a Hugging Face model directory, or ``"hash[:DIM]"`` (tests).
    cfg : EmbeddingConfig
        Layer, device, batch size and token limit.
    """
    if spec is None:
        return None
    fake = _hash_spec(spec)
    if fake is not None:
        return HashEmbedder(fake.dim, seed="own")
    from ._own import CausalLMEmbedder

    return CausalLMEmbedder(spec, layer=cfg.own_layer, device=cfg.device, batch_size=max(1, cfg.batch_size // 2),
                            max_tokens=cfg.max_tokens, dtype=cfg.dtype, runtime=cfg.runtime)
