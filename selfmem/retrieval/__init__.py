"""Embedders (general, own-model, dual), the FAISS index and search."""

from ._embedders import Embedder, HashEmbedder, SentenceTransformerEmbedder

__all__ = ["Embedder", "HashEmbedder", "SentenceTransformerEmbedder"]
