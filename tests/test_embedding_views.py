"""Dual embeddings on hash embedders: whitening, fusion, fallback, own_embedding, re-embedding."""

import numpy as np
import pytest

from selfmem import (
    CorruptMemoryError,
    EmbedderMismatchError,
    EmbeddingConfig,
    HashEmbedder,
    InvalidInputError,
    Memory,
    MemoryConfig,
    SearchConfig,
)
from selfmem.retrieval._post import Whitener, fuse


def dual_config(**kw):
    base = dict(general="hash:64", own="hash:48", mode="dual", alpha=0.6, own_dim=16, own_min_fit=20)
    return MemoryConfig(embedding=EmbeddingConfig(**(base | kw)))


TEXTS = [f"note {i} about {w} and {v}" for i, (w, v) in enumerate(
    (w, v) for w in ("grids", "colours", "rotation", "symmetry", "counting") for v in ("left", "right", "up", "down",
                                                                                      "none", "all"))]


class Counting(HashEmbedder):
    calls = 0

    def embed(self, texts, *, progress=False):
        Counting.calls += len(texts)
        return super().embed(texts)


def test_fuse_inner_product_is_weighted_cosine():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 8)); g /= np.linalg.norm(g, axis=1, keepdims=True)
    o = rng.normal(size=(5, 4)); o /= np.linalg.norm(o, axis=1, keepdims=True)
    f = fuse(g, o, 0.3)
    np.testing.assert_allclose(f @ f.T, 0.3 * g @ g.T + 0.7 * o @ o.T, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)


def test_whitener_decorrelates_and_roundtrips(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 20)) @ rng.normal(size=(20, 20)) + 5.0
    w = Whitener(10).fit(X)
    Z = ((X - w.mean_) @ w.components_.T) * w.scale_
    np.testing.assert_allclose(np.cov(Z.T), np.eye(10), atol=1e-3)
    assert w.transform(X).shape == (500, 10)
    w.save(tmp_path / "w.npz")
    w2 = Whitener.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(w2.transform(X[:5]), w.transform(X[:5]))
    assert w2.digest() == w.digest()
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(CorruptMemoryError):
        Whitener.load(tmp_path / "bad.npz")
    with pytest.raises(InvalidInputError):
        Whitener(4).fit(np.zeros((2, 3)))


def test_small_memory_falls_back_then_fits(tmp_path):
    with Memory(tmp_path / "m", dual_config()) as m:
        m.add_many(TEXTS[:10])
        s = m.stats()
        assert s.index["mode"] == "general" and s.index["dim"] == 64
        assert "not fitted yet" in s.notes[0]
        m.add_many(TEXTS[10:25])  # crosses own_min_fit = 20: whitening fitted, index rebuilt (background)
        m.wait()
        s = m.stats()
        assert s.index == {"kind": "flat", "size": 25, "dim": 64 + 16, "mode": "dual"}
        assert "whitened to 16 dims" in s.notes[0]
        hits = m.search(TEXTS[3], k=3)
        assert hits[0].record.text == TEXTS[3] and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert (tmp_path / "m" / "own_whitener.npz").is_file()
    with Memory(tmp_path / "m") as m:  # whitening loaded, not refitted: same hits
        assert m.search(TEXTS[3], k=1)[0].score == pytest.approx(1.0, abs=1e-4)
        assert m.stats().index["mode"] == "dual"


def test_mode_and_alpha_change_need_no_model_run(tmp_path):
    with Memory(tmp_path / "m", dual_config()) as m:
        m.add_many(TEXTS)
    Counting.calls = 0
    for mode, alpha in (("own", 0.6), ("dual", 0.2), ("general", 0.6)):
        cfg = dual_config(mode=mode, alpha=alpha)
        with Memory(tmp_path / "m", cfg, general=Counting(64), own=Counting(48, seed="own")) as m:
            assert m.stats().index["mode"] == mode
            m.rebuild()
            assert Counting.calls == 0
            assert m.stats().index["dim"] == {"own": 16, "dual": 80, "general": 64}[mode]
        assert Counting.calls == 0


def test_own_embedding_is_used_and_validated(tmp_path):
    own = HashEmbedder(48, seed="own")
    cfg = dual_config(mode="own").replace(search=SearchConfig(dedupe=1.0))  # keep the identical-vector twin
    with Memory(tmp_path / "m", cfg) as m:
        m.add_many(TEXTS)
        m.wait()  # the own view is searched once its whitening is fitted (in the background, from 20 records)
        # store "gibberish" text with the own vector of a symmetry note: the own view finds it
        rid = m.add("zzz qqq", own_embedding=own.embed([TEXTS[20]])[0])
        assert rid in [h.record.id for h in m.search(TEXTS[20], k=3, mode="dense")]
        n = len(m)
        for bad in (np.zeros(48), np.full(48, np.nan), np.ones(47), np.ones((2, 48)), "vector"):
            with pytest.raises(InvalidInputError):
                m.add("bad own vector", own_embedding=bad)
        with pytest.raises(InvalidInputError):
            m.add_many(["a", "b"], own_embedding=np.ones((3, 48)))
        assert len(m) == n


def test_own_embedding_without_own_model(mem):
    with pytest.raises(InvalidInputError, match="no own model"):
        mem.add("x", own_embedding=np.ones(48))
    assert len(mem) == 0


def test_model_change_needs_reembed(tmp_path):
    with Memory(tmp_path / "m", dual_config()) as m:
        m.add_many(TEXTS)
    changed = dual_config(own="hash:32")
    with pytest.raises(EmbedderMismatchError, match="reembed"):
        Memory(tmp_path / "m", changed)
    with Memory(tmp_path / "m", changed, reembed=True, progress=False) as m:
        assert m.stats().embedders["own"]["dim"] == 32
        assert m.search(TEXTS[7], k=1)[0].record.text == TEXTS[7]
    with Memory(tmp_path / "m") as m:
        m.rebuild(reembed=True)
        assert len(m) == len(TEXTS)


def test_adding_an_own_model_later_needs_reembed(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as m:
        m.add_many(TEXTS)
    with pytest.raises(EmbedderMismatchError):
        Memory(tmp_path / "m", dual_config())
    with Memory(tmp_path / "m", dual_config(), reembed=True, progress=False) as m:
        assert m.stats().index["mode"] == "dual"


@pytest.mark.parametrize("growth", [2.0, 0])
def test_whitening_refits_as_the_memory_grows(tmp_path, growth):
    cfg = dual_config(own_refit_growth=growth, own_refit_until=60)
    with Memory(tmp_path / "m", cfg) as m:
        fitted = []
        for lo in range(0, 150, 10):
            m.add_many([f"{t} batch {lo}" for t in TEXTS[:10]])
            m.wait()
            fitted.append(m._state.views.whitener.n_samples_ if m._state.views.whitener else 0)
        assert m.stats().index["size"] == 150
        hits = m.search(f"{TEXTS[3]} batch 140", k=1, mode="dense")
        assert hits[0].record.text == f"{TEXTS[3]} batch 140"
    if growth:
        assert sorted(set(fitted)) == [0, 20, 40, 80]  # refits at 2x growth until one was fitted on >= 60
    else:
        assert sorted(set(fitted)) == [0, 20]


def test_query_models_run_side_by_side_and_errors_reach_the_caller():
    """_side_by_side runs every role (the first in the caller's thread, the others in threads of their own)
    and raises an error from any of them in the caller, after all have ended."""
    import threading

    from selfmem.retrieval._views import _side_by_side

    seen: dict[str, str] = {}
    _side_by_side(lambda role: seen.__setitem__(role, threading.current_thread().name), ["general", "own"])
    assert seen["general"] == threading.current_thread().name and seen["own"] == "selfmem-embed-own"
    done: list[str] = []

    def failing(role: str) -> None:
        if role == "own":
            raise InvalidInputError("own failed")
        done.append(role)

    with pytest.raises(InvalidInputError, match="own failed"):
        _side_by_side(failing, ["general", "own"])
    assert done == ["general"]


def test_a_query_runs_its_models_side_by_side_only_on_the_cpu():
    """A query's two models run in threads of their own on the CPU; on a GPU they run one after the other in
    the caller's thread (side by side, the GPU machine's query embedding was several times slower)."""
    import threading

    import numpy as np

    from selfmem.retrieval._embedders import HashEmbedder
    from selfmem.retrieval._views import Views

    class Recording:  # a model's place in the views (not a HashEmbedder: those never run side by side)
        def __init__(self, device: str) -> None:
            self.inner = HashEmbedder(dim=16)
            self.dim = 16
            self.device = device
            self.threads: list[str] = []

        def fingerprint(self):
            return self.inner.fingerprint()

        def embed(self, texts, *, progress=False) -> np.ndarray:
            self.threads.append(threading.current_thread().name)
            return self.inner.embed(texts, progress=progress)

    for device, apart in (("cpu", True), ("cuda", False)):
        general, own = Recording(device), Recording(device)
        views = Views(general, own, mode="dual", alpha=0.5, own_dim=16, shrinkage=0.1, min_fit=10)
        raw = views.embed_raw(["one query"])
        assert raw["general"].shape == (1, 16) and raw["own"].shape == (1, 16)
        me = threading.current_thread().name
        assert general.threads == [me] and (own.threads == ["selfmem-embed-own"] if apart else own.threads == [me])
