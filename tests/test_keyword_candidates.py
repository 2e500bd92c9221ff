"""The keyword index's search path: exact scores of a few documents, capped candidates of common terms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfmem.retrieval import _keywords
from selfmem.retrieval._keywords import KeywordIndex, top_scored

WORDS = "red green blue cat dog bird tree river stone cloud".split()


def corpus(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 9)))) for _ in range(n)]


def split_index(tmp_path, texts: list[str], reloaded: int, dropped: list[int]) -> KeywordIndex:
    """Documents 1..reloaded saved and loaded back (the array part), the rest added after (the dict part)."""
    first = KeywordIndex()
    first.add(range(1, reloaded + 1), texts[:reloaded])
    first.save(tmp_path)
    idx = KeywordIndex.load(tmp_path)
    assert idx is not None
    idx.add(range(reloaded + 1, len(texts) + 1), texts[reloaded:])
    idx.remove(dropped)
    return idx


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), reloaded=st.integers(0, 40), query=st.lists(st.sampled_from(WORDS), max_size=4))
def test_score_docs_equals_the_postings_scores(tmp_path_factory, seed, reloaded, query):
    texts = corpus(seed, 40)
    idx = split_index(tmp_path_factory.mktemp("kw"), texts, reloaded, dropped=[3, 17, 39])
    q = " ".join(query) + " unknownword"
    ids = np.arange(0, 45)  # 0 and 41..44 do not exist, 3, 17 and 39 were removed
    want = idx.scores(q, ids)[1]
    got = idx.score_docs(q, ids)
    assert got.dtype == np.float32 and got.shape == (45,)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not got[[0, 3, 17, 39, 41]].any()


def test_candidates_are_exact_when_no_term_is_capped(tmp_path):
    texts = corpus(1, 300)
    idx = split_index(tmp_path, texts, 150, dropped=[5, 200])
    for q in ("red cat", "river stone cloud", "bird", "nothing here"):
        want = top_scored(*idx.scores(q), 20)
        got = idx.candidates(q, 20)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


def test_a_common_term_contributes_its_highest_impact_documents(monkeypatch):
    monkeypatch.setattr(_keywords, "HEAD", 10)
    idx = KeywordIndex()
    filler = [f"cat {' '.join(['tree'] * 20)}" for _ in range(100)]  # long documents: low impact for "cat"
    idx.add(range(1, 101), filler)
    idx.add([101, 102], ["cat cat", "cat"])  # short: the highest impact
    ids, scores = idx.candidates("cat", 2)
    assert ids.tolist() == [101, 102]
    assert len(idx._head("cat", 10)) == 10  # the cap held
    np.testing.assert_allclose(scores, idx.score_docs("cat", ids))
    idx.remove([101])  # the cached head is dropped with the term's postings
    assert idx.candidates("cat", 1)[0].tolist() == [102]


def test_filtered_candidates_score_the_allowed_documents(monkeypatch):
    monkeypatch.setattr(_keywords, "HEAD", 5)
    idx = KeywordIndex()
    idx.add(range(1, 201), ["dog"] * 150 + ["dog bird"] * 50)
    allowed = np.array([7, 9, 300], dtype=np.int64)  # none in "dog"'s head of 5, one unknown id
    ids, scores = idx.candidates("dog", 10, allowed)
    assert sorted(ids.tolist()) == [7, 9] and (scores > 0).all()
    monkeypatch.setattr(_keywords, "EXACT_ALLOWED", 2)  # a large filter: the exact full scoring
    ids2, scores2 = idx.candidates("dog", 10, allowed)
    assert sorted(ids2.tolist()) == [7, 9]
    np.testing.assert_allclose(np.sort(scores2), np.sort(scores))


@pytest.mark.parametrize("query", ["", "the of and"])
def test_no_terms_no_candidates(query):
    idx = KeywordIndex()
    idx.add([1], ["cat"])
    ids, scores = idx.candidates(query, 5)
    assert len(ids) == 0 and len(scores) == 0
    assert idx.score_docs(query, [1]).tolist() == [0.0]
