"""IVF-PQ with exact re-ranking: sizing, recall against exact search, updates, persistence, Memory integration."""

import numpy as np
import pytest

from selfmem import IndexConfig, Memory
from selfmem.retrieval._index import FlatIndex, build_index, load_index, save_index
from selfmem.retrieval._ivfpq import IVFPQIndex, ivfpq_params
from helpers import hash_cfg


def clustered(n, dim, seed=0, centers=50):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    x = c[rng.integers(0, centers, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_sizing_rule():
    p = ivfpq_params(1_000_000, 960)
    assert p == {"nlist": 2048, "m": 96, "nbits": 8, "train_size": 81920, "nprobe": 32, "rerank": 20}
    assert ivfpq_params(100_000, 640)["m"] == 64 and ivfpq_params(100_000, 640)["nlist"] == 512
    assert ivfpq_params(10, 64)["nlist"] == 16


@pytest.fixture(scope="module")
def data():
    return clustered(6000, 64), clustered(50, 64, seed=1)


def test_recall_against_exact(tmp_path, data):
    x, q = data
    ids = np.arange(100, 100 + len(x), dtype=np.int64)
    cfg = IndexConfig(kind="ivfpq", ivf_threshold=1000)
    ivf = build_index(cfg, 64, tmp_path, ids, x)
    flat = build_index(IndexConfig(kind="flat"), 64, tmp_path, ids, x)
    assert isinstance(ivf, IVFPQIndex) and isinstance(flat, FlatIndex) and len(ivf) == len(x)
    s_ivf, i_ivf = ivf.search(q, 10)
    s_flat, i_flat = flat.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_ivf, i_flat)])
    assert recall >= 0.9
    # scores are exact cosines (from the float16 copy) for the ids returned
    np.testing.assert_allclose(s_ivf[:, 0], (x[i_ivf[:, 0] - 100] * q).sum(1), atol=2e-3)


def test_add_remove_filter_persist(tmp_path, data):
    x, q = data
    ids = np.arange(len(x), dtype=np.int64)
    ivf = build_index(IndexConfig(kind="ivfpq", ivf_threshold=1000), 64, tmp_path, ids[:3000], x[:3000])
    trained = ivf.n_trained
    ivf.add(ids[3000:], x[3000:])  # no retraining
    assert len(ivf) == 6000 and ivf.n_trained == trained
    _, top = ivf.search(x[5000], 1)
    assert top[0, 0] == 5000
    ivf.remove([5000])
    assert 5000 not in ivf.search(x[5000], 10)[1][0]
    allowed = np.arange(0, 6000, 7)
    got = ivf.search(q, 5, allowed)[1]
    assert np.isin(got[got >= 0], allowed).all()
    save_index(ivf, tmp_path, {"s": 1})
    again = load_index(tmp_path, {"s": 1})
    assert isinstance(again, IVFPQIndex) and len(again) == 5999
    np.testing.assert_array_equal(again.search(q, 5)[1], ivf.search(q, 5)[1])
    assert load_index(tmp_path, {"s": 2}) is None
    (tmp_path / "rerank.f16").write_bytes(b"short")
    assert load_index(tmp_path, {"s": 1}) is None  # inconsistent re-rank file: rebuilt by the caller


def ivf_cfg(**index):
    return hash_cfg(index=IndexConfig(**index))


TEXTS = [f"item {i} of topic {i % 37} with tag {i % 11} and mark {i % 5}" for i in range(5000)]


def test_memory_switches_to_ivfpq_and_retrains(tmp_path):
    with Memory(tmp_path / "m", ivf_cfg(ivf_threshold=1000), progress=False) as m:
        m.add_many(TEXTS[:900])
        assert m.stats().index["kind"] == "flat"
        m.add_many(TEXTS[900:1100])
        m.wait()  # the switch to IVF-PQ is built in the background
        s = m.stats().index
        assert s["kind"] == "ivfpq" and s["size"] == 1100
        first = m.stats().index["n_trained"]
        assert m.search(TEXTS[1050], k=1)[0].record.text == TEXTS[1050]
        m.add_many(TEXTS[1100:4500])  # grows past 4x the training size: retrained
        m.wait()
        assert m.stats().index["n_trained"] >= 4 * first and m.stats().index["size"] == 4500
        gone = m.search(TEXTS[10], k=1)[0].record.id
        m.delete(gone)
    with Memory(tmp_path / "m", progress=False) as m:  # reopened: IVF-PQ loaded, reconciled
        assert m.stats().index["kind"] == "ivfpq" and len(m) == 4499
        assert gone not in {h.record.id for h in m.search(TEXTS[10], k=5)}
        hits = m.search(TEXTS[2000], k=3, where=None)
        assert hits[0].record.text == TEXTS[2000] and hits[0].score == pytest.approx(1.0, abs=2e-3)
    with Memory(tmp_path / "m", ivf_cfg(kind="flat"), progress=False) as m:  # config says flat: rebuilt
        assert m.stats().index["kind"] == "flat"


@pytest.mark.parametrize("damage", ["garbage", "foreign"])
def test_a_damaged_or_foreign_rerank_file_is_rebuilt(tmp_path, damage):
    import shutil
    import warnings

    from selfmem import IndexConfig, Memory

    cfg = hash_cfg(32, index=IndexConfig(kind="ivfpq", ivf_threshold=1000))
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, 6)) for _ in range(1500)]
    for name, chunk in (("m", texts), ("other", texts[::-1])):
        with Memory(tmp_path / name, cfg) as mem:
            mem.add_many(chunk)
            mem.wait()
            assert mem.stats().index["kind"] == "ivfpq"
    with Memory(tmp_path / "m", cfg) as mem:
        clean = [[h.record.id for h in mem.search(t, k=5, mode="dense")] for t in texts[:30]]
    path = tmp_path / "m" / "rerank.f16"
    if damage == "garbage":
        data = bytearray(path.read_bytes())
        data[1000:5000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    else:
        shutil.copy2(tmp_path / "other" / "rerank.f16", path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Memory(tmp_path / "m", cfg) as mem:  # was: NaN or wrong cosines from the damaged copy
            again = [[h.record.id for h in mem.search(t, k=5, mode="dense")] for t in texts[:30]]
    assert again == clean
    assert any("checksum" in str(w.message) for w in caught)


def test_rerank_rows_widen_to_the_same_float32_values_by_either_path():
    """Large blocks of float16 re-rank rows are widened by torch, small ones by numpy: the same values."""
    from selfmem.retrieval._ivfpq import _TORCH_CONVERT, _to_float32

    rng = np.random.default_rng(0)
    for rows in (3, _TORCH_CONVERT // 64 + 1):
        block = (rng.standard_normal((rows, 64)) * 100).astype(np.float16)
        block[0, :3] = [np.inf, -0.0, 6.0e-8]  # infinities, signed zero and a subnormal widen exactly too
        wide = _to_float32(block)
        assert wide.dtype == np.float32 and wide.shape == block.shape
        assert np.array_equal(wide, block.astype(np.float32))
        assert np.signbit(wide[0, 1])
