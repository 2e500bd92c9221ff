"""Shared fixtures: a fast hash-embedder config for unit tests, real models loaded once per session."""

from __future__ import annotations

import pytest

from helpers import HASH

from selfmem import Memory, MemoryConfig


@pytest.fixture
def hash_config() -> MemoryConfig:
    return HASH


@pytest.fixture
def mem(tmp_path):
    with Memory(tmp_path / "mem", HASH) as m:
        yield m


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2, loaded once for the whole test session."""
    from selfmem.retrieval import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device="cpu")
    emb.embed(["warm up"])
    return emb
