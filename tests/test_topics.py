"""Self-organisation: DP topics, tree, labels, online growth, routing (hash embedder, real scikit-learn)."""

import numpy as np
import pytest

from selfmem import InvalidInputError, Memory, RecordNotFoundError, TopicsConfig
from selfmem import ConfigError
from selfmem.clustering._dp import TopicModel, merge_tied
from selfmem.clustering._tree import ctfidf, cut, level_sizes, refine, tree_levels, ward_merges
from helpers import hash_cfg

THEMES = {
    "fruit": "apple banana cherry mango grape pear plum peach lemon lime".split(),
    "vehicles": "car truck bus bicycle train tram scooter van lorry taxi".split(),
    "weather": "rain snow wind storm cloud sunshine fog hail thunder frost".split(),
    "music": "guitar piano violin drum flute trumpet cello harp bass organ".split(),
}


def theme_texts(n_per, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for theme, words in THEMES.items():
        for _ in range(n_per):
            out.append((theme, " ".join(rng.choice(words, size=6))))
    return out


def cfg(**topics):
    return hash_cfg(topics=TopicsConfig(**({"min_records": 40} | topics)))


def test_dp_model_finds_clusters_and_grows_online():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 32)) * 5
    X = np.vstack([c + rng.normal(size=(200, 32)) for c in centers]).astype(np.float32)
    m = TopicModel(n_dims=8, max_topics=20, concentration=0.1).fit(X)
    tids, probs = m.assign_all(X)
    assert 4 <= m.n_topics <= 20 and tids.shape == (800, 3) and np.all(probs[:, 0] >= probs[:, 1])
    # each true cluster is (mostly) one topic
    purity = np.mean([np.bincount(tids[i * 200:(i + 1) * 200, 0]).max() / 200 for i in range(4)])
    assert purity > 0.9
    k = m.n_topics
    tid, _, opened = m.assign_online(centers[0] + rng.normal(size=32))
    assert not opened and tid == np.bincount(tids[:200, 0]).argmax()
    tid, _, opened = m.assign_online(np.full(32, 60.0, np.float32))  # far from everything
    assert opened and tid == k and m.provisional_[-1]
    with pytest.raises(InvalidInputError):
        TopicModel().fit(np.zeros((3, 4)))


@pytest.mark.parametrize("covariance", ["tied", "diag", "full"])
def test_covariance_types_find_clusters_and_persist(tmp_path, covariance):
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(5, 24)) * 5
    X = np.vstack([c + rng.normal(size=(150, 24)) for c in centers]).astype(np.float32)
    m = TopicModel(n_dims=8, max_topics=25, covariance=covariance).fit(X)
    tids, _ = m.assign_all(X)
    purity = np.mean([np.bincount(tids[i * 150:(i + 1) * 150, 0]).max() / 150 for i in range(5)])
    assert purity > 0.9 and m.n_topics <= 8, (purity, m.n_topics)
    m.assign_online(X[0])
    m.save(tmp_path / "t.npz")
    back = TopicModel.load(tmp_path / "t.npz")
    assert back.covariance == covariance
    np.testing.assert_allclose(back.log_resp(back.reduce(X[:50])), m.log_resp(m.reduce(X[:50])))


def test_merge_tied_joins_a_split_cluster_only():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 8.0
    Z = np.vstack([a, b])
    split = np.r_[(a[:, 0] > 0).astype(int), np.full(300, 2)]  # cluster a cut in two halves
    merged = merge_tied(Z, split)
    assert len(np.unique(merged)) == 2 and len(np.unique(merged[:300])) == 1 and merged[0] != merged[-1]
    whole = np.r_[np.zeros(300, int), np.ones(300, int)]
    assert len(np.unique(merge_tied(Z, whole))) == 2  # two real clusters stay apart


def test_tree_levels_nest_and_refine():
    means = np.array([[0, 0], [0.1, 0], [5, 5], [5.1, 5], [10, 0], [10, 0.2]], dtype=float)
    merges = ward_merges(means, np.ones(6))
    assert list(cut(merges, 6, 3)) == [0, 0, 1, 1, 2, 2]
    assert level_sizes(40) == [13, 4] and level_sizes(50) == [17, 6, 2] and level_sizes(3) == [2]
    assert level_sizes(2) == [1] and level_sizes(40, branching=6) == [7]
    # constrained merges never cross the given groups and stop at one cluster per group
    within = np.array([0, 0, 0, 1, 1, 1])
    cons = ward_merges(means, np.ones(6), within=within)
    assert len(cons) == 4 and list(cut(cons, 6, 2)) == [0, 0, 0, 1, 1, 1]
    # refinement moves a topic that a bad grouping put with the wrong neighbours
    ang = np.deg2rad([0, 10, 20, 90, 100, 110])
    unit = np.c_[np.cos(ang), np.sin(ang)]
    fixed = refine(unit, np.ones(6), np.array([0, 0, 1, 1, 1, 1]))
    assert list(fixed) == [0, 0, 0, 1, 1, 1]
    assert list(refine(unit, np.ones(6), np.array([0, 0, 1, 1, 1, 1]), within=np.array([0, 0, 1, 1, 1, 1]))) \
        == [0, 0, 1, 1, 1, 1]  # cannot leave its parent
    # every level nests in the one above
    rng = np.random.default_rng(3)
    cents = rng.normal(size=(40, 8))
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    levels = tree_levels(cents, rng.integers(1, 50, 40))
    assert [int(lv.max()) + 1 for lv in levels] == [13, 4]
    for low, high in zip(levels, levels[1:]):
        assert all(len(set(high[low == g])) == 1 for g in np.unique(low))
    words = ctfidf(["apple pear", "apple plum", "car bus", "car van"], np.array([0, 0, 1, 1]), 2, top=2)
    assert words[0][0] == "apple" and words[1][0] == "car"
    # a word in most texts (a speaker's name) labels no topic, however frequent
    chat = [f"bob: bob likes apple pear {i}" for i in range(12)] + [f"bob: car bus van {i}" for i in range(12)]
    words = ctfidf(chat, np.repeat([0, 1], 12), 2, top=3)
    assert "bob" not in words[0] + words[1] and words[0][0] in ("apple", "pear", "likes") and "car" in words[1]


def test_topics_config_is_validated():
    with pytest.raises(ConfigError, match="covariance"):
        TopicsConfig(covariance="spherical")
    with pytest.raises(ConfigError, match="branching"):
        TopicsConfig(branching=1)


def test_memory_topics_lifecycle(tmp_path):
    data = theme_texts(30)
    with Memory(tmp_path / "m", cfg(), progress=False) as m:
        m.add_many([t for _, t in data[:20]])
        assert m.topics() == [] and "topics not fitted yet" in " ".join(m.stats().notes)
        ids = m.add_many([t for _, t in data[20:]])
        m.wait()  # topics are fitted in the background
        topics = m.topics()
        leaves = [t for t in topics if t.level == 0]
        tops = [t for t in topics if t.parent is None]
        assert leaves and max(t.level for t in topics) >= 1  # at least two levels
        assert sum(t.size for t in leaves) == len(m) == sum(t.size for t in tops)
        assert all(t.keywords and t.label for t in leaves)
        # every memory belongs to a topic; hits carry it
        hits = m.search(data[50][1], k=3)
        assert all(h.topic is not None for h in hits)
        detail = m.topic(hits[0].topic)
        assert hits[0].record.id in detail.members
        root = m.topic(tops[0].id)
        assert set(root.members) >= set(m.topic(root.children[0]).members)
        with pytest.raises(RecordNotFoundError):
            m.topic(987654)
        # online growth: a text unlike anything opens a provisional topic (or joins one)
        new = m.add("zyx " * 8)
        assert any(new in m.topic(t.id).members for t in m.topics() if t.level == 0)
        # routing mode searches inside the nearest topics only
        routed = m.search(data[5][1], k=5, mode="topics")
        assert routed and routed[0].record.text == data[5][1]
        assert len(ids) == 100 and len(m) == 121
    with Memory(tmp_path / "m", progress=False) as m:  # reopened: model loaded, same tree
        assert {t.id for t in topics} <= {t.id for t in m.topics()}
        assert not any("topic model" in n or "not fitted" in n for n in m.stats().notes)
        assert m.search("zyx " * 8, k=1)[0].topic is not None
    (tmp_path / "m" / "topics.npz").unlink()  # as after an upgrade: the stored tree stays readable
    with Memory(tmp_path / "m", read_only=True, progress=False) as m:
        assert {t.id for t in topics} <= {t.id for t in m.topics()}
        assert "topic model file missing" in " ".join(m.stats().notes)
    with Memory(tmp_path / "m", progress=False) as m:  # a writer refits it on open (in the background)
        m.wait()
        assert (tmp_path / "m" / "topics.npz").is_file() and m.topics()
        assert not any("topic model" in n for n in m.stats().notes)
        m.rebuild()
        assert not any(t.provisional for t in m.topics())
        assert sum(t.size for t in m.topics() if t.level == 0) == len(m) == 121


def test_provisional_topics_suggest_rebuild(tmp_path):
    with Memory(tmp_path / "m", cfg(provisional_limit=0, concentration=50.0), progress=False) as m:
        m.add_many([t for _, t in theme_texts(12)])
        m.wait()
        for i in range(5):
            m.add(f"unrelated{i} text{i} words{i} never{i} seen{i}")
        notes = " ".join(m.stats().notes)
        assert any(t.provisional for t in m.topics()) and "rebuild suggested" in notes
    with Memory(tmp_path / "n", cfg(provisional_limit=0, concentration=50.0, auto_rebuild=True), progress=False) as m:
        m.add_many([t for _, t in theme_texts(12)])
        m.wait()
        for i in range(5):
            m.add(f"unrelated{i} text{i} words{i} never{i} seen{i}")
            m.wait()
        assert not any(t.provisional for t in m.topics())


def test_umap_reducer_through_memory(tmp_path):
    """The optional UMAP reducer (real umap-learn): clusters found, topics survive a reopen (refitted)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 32)) * 5
    X = np.vstack([c + rng.normal(size=(100, 32)) for c in centers]).astype(np.float32)
    m = TopicModel(n_dims=5, reducer="umap").fit(X)
    tids, _ = m.assign_all(X)
    assert np.mean([np.bincount(tids[i * 100:(i + 1) * 100, 0]).max() / 100 for i in range(4)]) > 0.9
    data = theme_texts(15)
    with Memory(tmp_path / "u", cfg(reducer="umap", n_dims=5), progress=False) as mem:
        mem.add_many([t for _, t in data])
        mem.wait()
        n_topics = len(mem.topics())
        assert n_topics and sum(t.size for t in mem.topics() if t.level == 0) == 60
    with Memory(tmp_path / "u", progress=False) as mem:
        mem.wait()  # a UMAP model is never saved: reopening for writing refits it (in the background)
        assert sum(t.size for t in mem.topics() if t.level == 0) == 60
        assert mem.search(data[0][1], k=1)[0].topic is not None


def test_hdbscan_topics_same_contract(tmp_path):
    """TopicsConfig(method="hdbscan"): no outliers, tree, labels, online growth and routing as with the DP."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 16)) * 6
    X = np.vstack([c + rng.normal(size=(150, 16)) for c in centers] + [rng.normal(size=(20, 16)) * 15])
    model = TopicModel(n_dims=8, method="hdbscan", min_cluster_size=15).fit(X.astype(np.float32))
    tids, probs = model.assign_all(X)
    assert 3 <= model.n_topics <= 8
    assert np.mean([np.bincount(tids[i * 150:(i + 1) * 150, 0]).max() / 150 for i in range(4)]) > 0.9
    assert len(tids) == len(X) and (probs[:, 0] > 0).all()  # the 20 scattered points have topics too
    data = theme_texts(20)
    with Memory(tmp_path / "h", cfg(method="hdbscan", min_cluster_size=5), progress=False) as m:
        m.add_many([t for _, t in data])
        m.wait()
        leaves = [t for t in m.topics() if t.level == 0]
        assert leaves and sum(t.size for t in leaves) == len(data) and all(t.label for t in leaves)
        new = m.add("zyx " * 8)
        assert any(new in m.topic(t.id).members for t in m.topics() if t.level == 0)
        assert m.search(data[3][1], k=3, mode="topics")[0].record.text == data[3][1]
    with Memory(tmp_path / "h", progress=False) as m:  # reloaded from topics.npz: still HDBSCAN's topics
        assert m._state.topics.state.model.method == "hdbscan" and not m._state.topics.busy
    with Memory(tmp_path / "h", cfg(method="dp"), progress=False) as m:  # another method: refitted
        m.wait()
        assert m._state.topics.state.model.method == "dp"


def test_labels_skip_digit_runs_but_keep_years():
    from selfmem.clustering._tree import ctfidf

    texts = ["gravity down 000077077 in 2024", "gravity down 000077077", "rays cross 111100000", "rays cross 2024"]
    words = ctfidf(texts, np.array([0, 0, 1, 1]), 2, top=5, max_df=1.0)
    assert all(not (w.isdigit() and len(w) > 4) for ws in words for w in ws), words
    assert "gravity" in words[0] and "rays" in words[1] and "2024" in words[0] + words[1]


def test_the_writer_holds_every_records_topic_as_the_store_has_it(tmp_path, monkeypatch):
    """Searches take each hit's topic (and topics mode its members) from memory: they must equal the store's."""
    from helpers import texts
    from selfmem.memory import _part_topics

    monkeypatch.setattr(_part_topics, "_MERGE", 7)  # a few adds go through the dict, more merge into the arrays

    def agree(m: Memory) -> None:
        store, part = m._state.store, m._state.topics
        ids = [r.id for h in [m.search("item", k=200)] for r in (x.record for x in h)] + [10**9]
        assert part.top_of(ids) == store.top_topics(ids) and len(part.top_of(ids)) >= 50
        leaves = [t.id for t in m.topics() if t.level == 0]
        for pick in (leaves[:1], leaves[:3], [10**6]):
            np.testing.assert_array_equal(part._top.members(pick, store), store.topic_members(pick))

    cfg = hash_cfg(topics=TopicsConfig(min_records=20), background=False)
    with Memory(tmp_path / "m", cfg, progress=False) as m:
        m.add_many(texts(60))
        m.wait()
        agree(m)  # the table from the fit
        for i, text in enumerate(texts(12, seed=1)):  # one record at a time: assigned, held in the dict
            m.add(text + f" extra {i}")
        agree(m)
        m.delete([1, 2])
        m.rebuild()  # a refit replaces the stored memberships and the held ones
        agree(m)
        assert all(h.topic is not None for h in m.search("item", k=20))
    with Memory(tmp_path / "m", cfg, progress=False) as m:  # reopened: the table is read from the store
        m.add("one more grid item after reopening")
        agree(m)
