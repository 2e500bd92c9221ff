import numpy as np
import pytest

from selfmem import Embedder, HashEmbedder, InvalidInputError


def test_hash_embedder_is_deterministic_and_normalised():
    e = HashEmbedder(32)
    a = e.embed(["the grid is rotated", "blue squares"])
    b = HashEmbedder(32).embed(["the grid is rotated", "blue squares"])
    assert a.shape == (2, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert isinstance(e, Embedder)


def test_hash_embedder_similarity_follows_shared_words():
    e = HashEmbedder(256)
    q, near, far = e.embed(["grid rotated clockwise", "the grid is rotated clockwise", "purple elephants dance"])
    assert q @ near > q @ far


def test_hash_seed_changes_space():
    assert not np.allclose(HashEmbedder(32, "a").embed(["x y"]), HashEmbedder(32, "b").embed(["x y"]))


def test_hash_bad_dim():
    with pytest.raises(InvalidInputError):
        HashEmbedder(1)
