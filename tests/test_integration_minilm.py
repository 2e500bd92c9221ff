"""Integration: the real all-MiniLM-L6-v2 (loaded once per test session), the README snippet, reopen in a fresh process."""

import json
import subprocess
import sys

import numpy as np
import pytest

from selfmem import Memory

pytestmark = pytest.mark.integration


def test_minilm_embeddings(minilm):
    v = minilm.embed(["The grid is rotated 90 degrees clockwise.", "rotation of the grid", "I like pasta."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]
    fp = minilm.fingerprint()
    assert fp["name"] == "all-MiniLM-L6-v2" and fp["dim"] == 384 and fp["revision"].startswith("sha256:")


def test_truncation_is_counted(minilm):
    before = minilm.truncated
    minilm.embed(["word " * 600])
    assert minilm.truncated == before + 1


def test_readme_snippet(tmp_path, minilm):
    with Memory(tmp_path / "mem") as mem:
        with mem.session("exp-1"):
            rid = mem.add("The grid is rotated 90 degrees clockwise.", kind="output", metadata={"task": "3c9b0459"})
            mem.add("Paint every blue cell red.", kind="output")
            mem.add("The user prefers short answers.", kind="note")
            hits = mem.search("rotation of the grid", k=5)
    assert hits[0].record.id == rid and hits[0].record.text == "The grid is rotated 90 degrees clockwise."
    assert hits[0].score > 0.5 and hits[0].distance == pytest.approx(1 - hits[0].score)
    assert hits[0].score > hits[1].score


REOPEN = r"""
import json, sys
from selfmem import Memory
with Memory(sys.argv[1]) as mem:
    print(json.dumps([[h.record.id, round(h.score, 5)] for h in mem.search(sys.argv[2], k=4)]))
"""


def test_reopen_in_fresh_process(tmp_path, minilm):
    texts = ["Mirror the grid horizontally.", "Fill enclosed regions with yellow.", "The output is the input tiled 3x3.",
             "Count objects and draw a bar.", "Gravity: cells fall to the bottom."]
    with Memory(tmp_path / "mem") as mem:
        mem.add_many(texts, kind="output")
        here = [[h.record.id, round(h.score, 5)] for h in mem.search("objects fall down", k=4)]
    out = subprocess.run([sys.executable, "-c", REOPEN, str(tmp_path / "mem"), "objects fall down"],
                         capture_output=True, text=True, check=True).stdout
    there = json.loads(out.strip().splitlines()[-1])
    assert [i for i, _ in there] == [i for i, _ in here]
    np.testing.assert_allclose([s for _, s in there], [s for _, s in here], atol=1e-4)
    assert texts[here[0][0] - 1] == "Gravity: cells fall to the bottom."


def test_plain_torch_bert_matches_sentence_transformers():
    """The general embedder's plain-torch BERT (no sentence-transformers import) gives its vectors."""
    from sentence_transformers import SentenceTransformer

    from selfmem.retrieval import SentenceTransformerEmbedder

    ours = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device="cpu", dtype="float32")
    texts = ["The grid is rotated 90 degrees.", "Caroline: Thanks, Melanie!", "grid " * 300, "a"]
    ref = SentenceTransformer(str(ours.path), device="cpu", local_files_only=True).encode(
        texts, normalize_embeddings=True)
    cos = (ours.embed(texts) * ref).sum(1)
    assert cos.min() > 0.99999, cos
