"""The paths a bulk fill (1M records in one ``add_many``) takes through the store, the whitening and topics.

Each runs at test size here; ``benchmarks/bulk_fill.py --fill`` times them at 1M (docs/benchmarks.md).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from selfmem._config import TopicsConfig
from selfmem._errors import CorruptMemoryError
from selfmem._types import NewRecord
from selfmem.clustering import _topics
from selfmem.clustering._topics import TopicState
from selfmem.retrieval import _post
from selfmem.retrieval._post import Whitener
from selfmem.store._duckdb import DuckDBStore, _blob_matrix


def _blobs(x: np.ndarray, kind: pa.DataType | None = None) -> pa.Array:
    kind = pa.binary() if kind is None else kind
    n, width = len(x), x.shape[1] * 4
    off = np.arange(n + 1, dtype=np.int64 if kind == pa.large_binary() else np.int32) * width
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(off), pa.py_buffer(np.ascontiguousarray(x).reshape(-1))])


def test_store_insert_and_read_back_through_arrow(tmp_path):
    rng = np.random.default_rng(0)
    store = DuckDBStore(tmp_path / "m.duckdb")
    try:
        when = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
        recs = [NewRecord("note", f"text {i} é", f'{{"i": {i}}}', None if i % 3 else f"s{i % 2}", 0.5 + i,
                          (1,) if i > 3 else (), when if i % 2 else None, f"k{i}" if i % 4 == 0 else None)
                for i in range(50)]
        general = rng.standard_normal((50, 8)).astype(np.float32)
        own = rng.standard_normal((50, 5)).astype(np.float32)
        ids = store.insert(recs[:1], {"general": general[:1], "own": own[:1]})
        ids += store.insert(recs[1:], {"general": general[1:], "own": own[1:]})
        got_ids, got = store.vectors("general")
        assert got_ids.tolist() == ids and np.array_equal(got, general)
        sub_ids, sub = store.vectors("own", [ids[7], ids[3]])
        assert sub_ids.tolist() == [ids[3], ids[7]] and np.array_equal(sub, own[[3, 7]])
        assert store.vectors("none")[0].shape == (0,)
        back = store.get(ids)
        for i, rid in enumerate(ids):
            r = back[rid]
            assert (r.text, r.kind, r.session, r.importance, r.metadata) == (
                recs[i].text, "note", recs[i].session, recs[i].importance, {"i": i})
            assert r.parents == recs[i].parents
            if i % 2:
                assert r.created_at == when
        assert store.ids_of_keys(["k0", "k8", "k1"]) == {"k0": ids[0], "k8": ids[8]}
        store.replace_topics([], np.asarray(ids), np.zeros((50, 2), np.int64), np.full((50, 2), 0.25))
        assert store.topic_sizes() == {0: 50}
    finally:
        store.close()


def test_blob_matrix_chunks_slices_and_bad_rows():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 6)).astype(np.float32)
    col = pa.chunked_array([_blobs(x[:4]), _blobs(x[4:]).slice(3), _blobs(x[:0])])
    got = _blob_matrix(col)
    assert np.array_equal(got, np.vstack([x[:4], x[7:]])) and got.flags.writeable
    large = _blob_matrix(pa.chunked_array([_blobs(x, pa.large_binary()).slice(2, 5)]))
    assert np.array_equal(large, x[2:7])
    assert _blob_matrix(pa.chunked_array([], pa.binary())).shape == (0, 0)
    ragged = pa.array([b"\0" * 8, b"\0" * 4], pa.binary())
    with pytest.raises(CorruptMemoryError):
        _blob_matrix(ragged)


def test_whitener_on_a_tall_matrix_equals_the_svd_fit(monkeypatch):
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((3000, 24)) @ rng.standard_normal((24, 24)) + 3.0).astype(np.float32)
    tall = Whitener(10, shrinkage=0.1).fit(X)  # 3000 >= 2 * 24: covariance route, blocks of 1,000 rows
    monkeypatch.setattr(_post, "GRAM_ROWS", 1000)
    blocked = Whitener(10, shrinkage=0.1).fit(X)
    svd = Whitener(10, shrinkage=0.1)
    _, s, vt = np.linalg.svd(X.astype(np.float64) - X.mean(0, dtype=np.float64), full_matrices=False)
    var = s**2 / (len(X) - 1)
    for w in (tall, blocked):
        assert np.allclose(w.scale_, 1 / np.sqrt(var[:10] + 0.1 * var[:10].mean()), rtol=1e-5)
        assert np.allclose(np.abs(w.components_), np.abs(vt[:10]), atol=1e-5)
    svd.fit(X[:30])  # short: the SVD route
    assert svd.dim == 10
    a, b = tall.transform(X[:200]), blocked.transform(X[:200])
    assert np.allclose(a @ a.T, b @ b.T, atol=1e-5)
    big = np.abs(tall.components_).argmax(1)
    assert np.all(tall.components_[np.arange(10), big] > 0)  # signed: each direction's largest entry positive


def test_topic_sums_and_labels_from_a_sample(monkeypatch):
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((4, 32))
    lab = rng.integers(0, 4, 2000)
    X = centres[lab] + 0.2 * rng.standard_normal((2000, 32))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    words = ["alpha", "bravo", "charlie", "delta"]
    texts = [f"{words[k]} item {i}" for i, k in enumerate(lab)]
    cfg = TopicsConfig(max_topics=8, sample_size=1000)
    full = TopicState(cfg, "/nonexistent")
    rows_full, tids, _ = full.fit(np.arange(2000), X, texts, "sig")
    monkeypatch.setattr(_topics, "LABEL_SAMPLE", 400)
    sampled = TopicState(cfg, "/nonexistent")
    rows_sampled, tids2, _ = sampled.fit(np.arange(2000), X, texts, "sig")
    assert np.array_equal(tids, tids2)
    # sizes and centroids come from every record; only the words are sampled
    top = tids[:, 0]
    for r in (r for r in rows_full if r.level == 0):
        want = X[top == r.id].sum(0)
        assert r.size == int((top == r.id).sum())
        assert np.allclose(r.centroid, want / np.linalg.norm(want), atol=1e-5)
    leaves = {r.id: r for r in rows_sampled if r.level == 0}
    for r in (r for r in rows_full if r.level == 0):
        assert leaves[r.id].size == r.size and np.allclose(leaves[r.id].centroid, r.centroid)
        assert leaves[r.id].keywords[0] == r.keywords[0]  # 400 texts name each topic's word as well as 2000
