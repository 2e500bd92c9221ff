"""Metadata filters: JSON semantics, checked against a plain-Python reference evaluator."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfmem import InvalidInputError, Memory
from selfmem._types import NewRecord
from selfmem.store import DuckDBStore as Store
from selfmem.store._where import check_where, evaluate, lookup

KEYS = ["a", "n.x"]
# a small pool with deliberate near-collisions (1 / 1.0 / True / "1", 2**53 / 2**53 + 1 / float(2**53), ...)
# so that random filters often meet stored values they must (or must not) match
POOL = [0, 1, 1.0, True, False, None, "1", "café", "cafe", "CAFÉ", "😀", "e\u0301", "", 2**53, 2**53 + 1,
        float(2**53), 2**64 + 1, -1, -0.5, 0.5, 10, "10", "9", [1], [1.0], [True], [], {"p": 1}, {"p": 1.0}, {}]
SCALARS = st.one_of(st.sampled_from(POOL), st.sampled_from(POOL), st.sampled_from(POOL), st.sampled_from(POOL),
                    st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=2))
VALUES = st.one_of(SCALARS, SCALARS, SCALARS, st.lists(SCALARS, max_size=2),
                   st.dictionaries(st.sampled_from("pq"), SCALARS, max_size=2))
OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", None]


def metadata() -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={"a": VALUES, "n": st.one_of(
        st.fixed_dictionaries({}, optional={"x": VALUES}), SCALARS)})


def _filter(key: str, op: str | None, value, many: list, flag: bool) -> dict:
    if op is None:  # a bare value means $eq, unless it looks like an operator dict
        return {key: {"$eq": value}} if isinstance(value, dict) else {key: value}
    if op in ("$in", "$nin"):
        return {key: {op: many}}
    if op == "$exists":
        return {key: {op: flag}}
    if op in ("$gt", "$gte", "$lt", "$lte") and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        return {key: {"$exists": flag}}
    return {key: {op: value}}


def _around(v) -> list:
    """A stored value and values that nearly equal it (where naive comparisons go wrong)."""
    if isinstance(v, bool):
        return [v, int(v)]
    if isinstance(v, int):
        return [v, v + 1, v - 1, float(v)]
    if isinstance(v, float):
        return [v, int(v)] if v.is_integer() and abs(v) < 2**100 else [v]
    if isinstance(v, str):
        return [v, v.upper(), v + "a"]
    return [v]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metas=st.lists(metadata(), min_size=1, max_size=8), data=st.data())
def test_filters_agree_with_the_reference(metas, data):
    stored = [v for m in metas for v in (m.get("a"), m.get("n", {}).get("x") if isinstance(m.get("n"), dict) else
                                          m.get("n")) if v is not None]
    near = st.sampled_from(POOL + [n for v in stored for n in _around(v)])  # often a stored value or its neighbour
    where = {}
    for _ in range(data.draw(st.integers(1, 2))):
        where.update(_filter(data.draw(st.sampled_from(KEYS)), data.draw(st.sampled_from(OPS)),
                             data.draw(st.one_of(near, VALUES)), data.draw(st.lists(near, max_size=3)),
                             data.draw(st.booleans())))
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "m.duckdb")
        try:
            ids = store.insert([NewRecord("note", "t", json.dumps(m, ensure_ascii=False), None, 1.0, ()) for m in metas],
                               {})
            got = set(store.filter_ids(where=where).tolist())
        finally:
            store.close()
    preds = check_where(where)
    want = {i for i, m in zip(ids, metas) if all(evaluate(lookup(m, p.keys), p) for p in preds)}
    assert got == want, (where, metas)


def test_the_cases_that_were_wrong(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as mem:
        ids = mem.add_many(["one", "two", "three", "four"], metadata=[
            {"name": "café", "score": 1.0, "tags": ["x", "y"], "big": 2**53 + 1, "obj": {"k": 1}},
            {"name": "cafe", "score": 1, "tags": ["y", "x"], "big": 2**53, "obj": {"k": 1.0}},
            {"name": "😀", "score": True, "tags": [], "big": 2**63 - 1},
            {}])
        f = mem._state.store.filter_ids

        def where(w):
            return sorted(f(where=w).tolist())

        assert where({"name": "café"}) == [ids[0]] and where({"name": {"$in": ["😀", "x"]}}) == [ids[2]]
        assert where({"name": {"$ne": "café"}}) == [ids[1], ids[2], ids[3]]
        assert where({"score": 1}) == [ids[0], ids[1]] == where({"score": 1.0})  # True is not 1
        assert where({"tags": ["x", "y"]}) == [ids[0]] and where({"tags": {"$eq": []}}) == [ids[2]]
        assert where({"obj": {"$eq": {"k": 1}}}) == [ids[0], ids[1]]
        assert where({"big": {"$gt": 2**53}}) == [ids[0], ids[2]] and where({"big": 2**53 + 1}) == [ids[0]]
        assert where({"name": {"$gt": "cafe"}}) == [ids[0], ids[2]]  # code-point order
        for bad in ({"a.": 1}, {"a..b": 1}, {".a": 1}, {"x": float("nan")}, {"x": {"$gt": float("inf")}},
                    {"x": {}}, {"x": {"$regex": "a"}}, {"x": {"$in": "abc"}}, {"x": {"$exists": "yes"}},
                    {"x": "\ud800"}, {"x": {"$gt": [1]}}, {1: 2}):
            with pytest.raises(InvalidInputError):
                mem.search("one", where=bad)
        assert [h.record.id for h in mem.search("one", k=5, where={"name": "café"})] == [ids[0]]
