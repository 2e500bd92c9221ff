"""The ``Store`` protocol's behaviour, one suite run on DuckDB and on PostgreSQL (a real server)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from selfmem import SelfmemError
from selfmem._types import NewRecord
from selfmem.store import DuckDBStore, driver_errors, open_postgres

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, tmp_path):
    if request.param == "duckdb":
        s = DuckDBStore(tmp_path / "m.duckdb")
    else:
        s = open_postgres(request.getfixturevalue("pg_url"), f"store_contract_{abs(hash(str(tmp_path))) % 10**8}")
    yield s
    s.close()


def _records(n: int, start: int = 0) -> list[NewRecord]:
    return [NewRecord(kind="note" if i % 2 else "output", text=f"text {i}", metadata_json=json.dumps({"n": i}),
                      session=f"s{i % 3}", importance=1.0, parents=(), created_at=WHEN + timedelta(minutes=i),
                      key=f"k{i}", metadata={"n": i}) for i in range(start, start + n)]


def _vectors(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    v = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return {"general": v / np.linalg.norm(v, axis=1, keepdims=True)}


def test_records_round_trip(store):
    ids = store.allocate_ids(5)
    assert ids == sorted(ids) and len(set(ids)) == 5
    store.insert(_records(5), _vectors(5), ids)
    assert store.count() == 5 and sorted(store.ids().tolist()) == ids
    got = store.get(ids)
    assert [got[i].text for i in ids] == [f"text {j}" for j in range(5)]
    assert got[ids[2]].created_at == WHEN + timedelta(minutes=2) and got[ids[2]].metadata == {"n": 2}
    assert store.ids_of_keys(["k1", "k4", "nope"]) == {"k1": ids[1], "k4": ids[4]}
    assert store.existing(ids[:2] + [10**9]) == set(ids[:2])
    vid, vecs = store.vectors("general", ids[1:3])
    assert vid.tolist() == ids[1:3] and np.allclose(vecs, _vectors(5)["general"][1:3])
    assert store.group_counts("kind") == {"output": 3, "note": 2}
    rows = store.page(0, 3)
    assert [r.id for r in rows] == ids[:3] and rows[0].text and rows[0].kind == "output"
    assert all(isinstance(r.created_at, datetime) and r.metadata.startswith("{") for r in rows)  # typed rows
    store.delete([ids[0]])
    assert store.count() == 4 and ids[0] not in store.get(ids)
    assert store.allocate_ids(1)[0] > ids[-1]  # ids are never reused


def test_meta_usage_and_transactions(store):
    store.set_meta("a.x", "1")
    store.set_meta("a.y", "2")
    assert store.get_meta("a.x") == "1" and store.meta_items("a.") == {"x": "1", "y": "2"}  # the prefix stripped
    with pytest.raises(RuntimeError), store.transaction("test"):
        store.set_meta("a.z", "3")
        raise RuntimeError("rolled back")
    assert store.get_meta("a.z") is None
    ids = store.allocate_ids(3)
    store.insert(_records(3), _vectors(3), ids)
    store.mark_used([ids[0]])
    store.set_usage([ids[1]], [7], [WHEN])
    got = store.get(ids)
    assert got[ids[0]].use_count == 1 and got[ids[0]].last_used_at is not None
    assert got[ids[1]].use_count == 7 and got[ids[1]].last_used_at == WHEN and got[ids[2]].use_count == 0


def test_graph_edges_page_and_copy(store):
    g = store.graph
    g.insert_edges(["record:1", "record:2"], ["FOLLOWS", "SIMILAR_TO"], ["record:2", "record:3"], [1.0, 0.5],
                   ["{}", "{}"], WHEN.replace(tzinfo=None))
    rows = g.edges_page(0, 10)
    assert [(r[0], r[1], r[2]) for r in rows] == [("record:1", "FOLLOWS", "record:2"),
                                                   ("record:2", "SIMILAR_TO", "record:3")]
    g.clear_edges()
    assert g.edges_page(0, 10) == []
    g.put_edges(rows)
    assert g.edges_page(0, 10) == rows
    assert {k: v for k, v in g.edge_counts().items() if v} == {"FOLLOWS": 1, "SIMILAR_TO": 1}


def test_a_duplicate_id_is_refused_whole_and_the_store_goes_on(store):
    ids = store.allocate_ids(2)
    store.insert(_records(2), _vectors(2), ids)
    with pytest.raises((SelfmemError, *driver_errors())):
        store.insert(_records(2, start=10), _vectors(2, seed=1), [ids[1], ids[1] + 100])
    assert store.count() == 2 and store.ids_of_keys(["k10", "k11"]) == {}
    more = store.allocate_ids(1)
    store.insert(_records(1, start=20), _vectors(1), more)
    assert store.count() == 3


def test_the_scan_reads_every_row(store):
    ids = store.allocate_ids(4)
    store.insert(_records(4), _vectors(4), ids)
    counts = store.scan()
    assert counts["records"] == 4 and counts["vectors.general"] == 4
