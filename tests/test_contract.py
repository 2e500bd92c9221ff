"""The memory API, declared once (``selfmem.MemoryAPI``), and checked against every implementation.

1. Signatures: ``Memory``, ``RemoteMemory`` and the server's request bodies take exactly the protocol's
   arguments (names, kinds, defaults), so a new argument cannot reach one and miss another.
2. Behaviour: one suite run on ``Memory`` (DuckDB), ``Memory`` (PostgreSQL) and ``RemoteMemory`` through a
   live ``memctl serve``: every public call with times, numpy values, filters, graph walks and enrich, the
   same results and the same ``SelfmemError`` subclasses on all three.
"""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from helpers import hash_cfg, texts
from serving import Served
from selfmem import (InvalidInputError, Memory, MemoryAPI, RecordNotFoundError, TopicsConfig)
from selfmem.server import RemoteMemory

PROTOCOL = [name for name, value in vars(MemoryAPI).items() if callable(value) and not name.startswith("_")]


# -- 1. one declaration ---------------------------------------------------------------------------------
def _params(fn) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("impl", [Memory, RemoteMemory], ids=["Memory", "RemoteMemory"])
@pytest.mark.parametrize("name", PROTOCOL)
def test_every_implementation_takes_the_protocols_arguments(impl, name):
    assert _params(getattr(impl, name)) == _params(getattr(MemoryAPI, name)), name


def test_the_protocol_covers_the_calls_solvers_use():
    assert {"add", "add_many", "get", "delete", "search", "enrich", "topics", "topic", "neighbours", "path",
            "subgraph", "stats", "session", "wait", "close"} <= set(PROTOCOL)


BODIES = {"add": ("AddBody", set()), "add_many": ("AddManyBody", {"progress"}), "search": ("SearchBody", set()),
          "neighbours": ("NeighboursBody", set()), "path": ("PathBody", set()), "subgraph": ("SubgraphBody", set()),
          "delete": ("DeleteBody", set())}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_the_servers_request_bodies_have_the_protocols_fields(name):
    from selfmem.server import _bodies as _app

    model, local_only = BODIES[name]
    fields = set(getattr(_app, model).model_fields)
    params = {p for p, kind, _ in _params(getattr(MemoryAPI, name)) if kind != inspect.Parameter.VAR_KEYWORD}
    assert fields == params - local_only, (name, fields ^ (params - local_only))


def test_the_enrich_body_is_enrich_plus_every_search_filter():
    from selfmem.server import _bodies as _app

    search = {p for p, kind, _ in _params(MemoryAPI.search) if kind == inspect.Parameter.KEYWORD_ONLY}
    enrich = {p for p, kind, _ in _params(MemoryAPI.enrich) if kind != inspect.Parameter.VAR_KEYWORD}
    assert set(_app.EnrichBody.model_fields) == (enrich | search)


# -- 2. one behaviour -----------------------------------------------------------------------------------
CFG = dict(topics=TopicsConfig(min_records=20), background=False)


@pytest.fixture(params=["duckdb", "postgres", "remote"])
def api(request, tmp_path):
    if request.param == "duckdb":
        with Memory(tmp_path / "m", hash_cfg(**CFG), progress=False) as m:
            yield m
    elif request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        cfg = hash_cfg(store=url, store_schema=f"contract_{abs(hash(str(tmp_path))) % 10**8}", **CFG)
        with Memory(tmp_path / "m", cfg, progress=False) as m:
            yield m
    else:
        with Served(tmp_path / "root", **CFG) as s, RemoteMemory(s.url, "team") as m:
            yield m


WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _fill(m: MemoryAPI) -> list[int]:
    with m.session("s1"):
        ids = m.add_many(texts(40), metadata=[{"n": i, "tag": "even" if i % 2 == 0 else "odd"} for i in range(40)],
                         created_at=[WHEN + timedelta(hours=i) for i in range(40)], keys=[f"k{i}" for i in range(40)])
    m.add("a note derived from two", kind="note", parents=np.array(ids[:2]), importance=np.float32(2.0),
          session="s2", created_at=WHEN + timedelta(days=10))
    return ids


def test_the_contract(api):
    assert isinstance(api, MemoryAPI)
    ids = _fill(api)
    assert api.add("again", key="k5") == ids[5]  # an idempotency key returns the first id
    rec = api.get(ids[3])
    assert rec.text == texts(40)[3] and rec.session == "s1" and rec.created_at == WHEN + timedelta(hours=3)
    assert rec.metadata == {"n": 3, "tag": "odd"}
    note = api.search("a note derived from two", k=1, kinds=["note"])[0].record
    assert note.parents == tuple(ids[:2]) and note.importance == 2.0
    for mode in ("dense", "keyword", "hybrid"):
        assert api.search("rotate the grid", k=5, mode=mode), mode
    even = api.search("item", k=50, where={"tag": "even", "n": {"$lt": np.int64(10)}})
    assert sorted(h.record.metadata["n"] for h in even) == [0, 2, 4, 6, 8]
    window = api.search("item", k=50, since=WHEN + timedelta(hours=5), until=WHEN + timedelta(hours=7))
    assert sorted(h.record.id for h in window) == ids[5:7]  # since <= created_at < until
    assert [h.record.session for h in api.search("item", k=3, sessions=["s2"])] == ["s2"]
    enriched = api.enrich("rotate the grid", k=3, mark_used=True, kinds=["output"])
    assert "<past_context>" in enriched.prompt and len(enriched.hits) == 3
    assert api.neighbours(ids[10], "FOLLOWS").keys
    assert api.path(ids[10], ids[12], rel="FOLLOWS") is not None
    assert api.subgraph([ids[1], ids[2]], depth=1).keys
    api.wait()
    assert api.topics() and api.topic(api.topics()[0].id).size >= 1
    for hit in api.search("rotate the grid", k=5, expand=True):  # each hit's topic is read with its record
        assert hit.topic is not None and hit.record.id in api.topic(hit.topic).members, hit
    assert api.stats().records == 41
    api.delete([ids[0]])
    with pytest.raises(RecordNotFoundError):
        api.get(ids[0])
    with pytest.raises(RecordNotFoundError):
        api.delete([ids[0]])
    with pytest.raises(InvalidInputError):
        api.add("x", kind="no-such-kind")
    with pytest.raises(InvalidInputError):
        api.add("x", created_at=datetime(2024, 1, 1))  # no time zone
    with pytest.raises(InvalidInputError):
        api.search("x", k=0)
    assert api.stats().records == 40


def test_the_three_implementations_answer_alike(tmp_path, pg_url):
    got = {}
    schema = f"contract_same_{abs(hash(str(tmp_path))) % 10**8}"
    with Memory(tmp_path / "duck", hash_cfg(**CFG), progress=False) as m:
        _fill(m)
        got["duckdb"] = [[h.record.id for h in m.search(q, k=8)] for q in ("rotate the grid", "colour swap", "item 7")]
    with Memory(tmp_path / "pg", hash_cfg(store=pg_url, store_schema=schema, **CFG), progress=False) as m:
        _fill(m)
        got["postgres"] = [[h.record.id for h in m.search(q, k=8)] for q in ("rotate the grid", "colour swap", "item 7")]
    with Served(tmp_path / "root", **CFG) as s, RemoteMemory(s.url, "team") as m:
        _fill(m)
        got["remote"] = [[h.record.id for h in m.search(q, k=8)] for q in ("rotate the grid", "colour swap", "item 7")]
    assert got["duckdb"] == got["postgres"] == got["remote"], got
