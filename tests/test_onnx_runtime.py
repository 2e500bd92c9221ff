"""The ONNX Runtime path for CPUs without bfloat16 (issue 28): same vectors, its own fingerprint, chosen
automatically only there, exported once and cached.

The real models are exported into a fresh ``SELFMEM_CACHE`` once for the module (the dequantized SmolLM2
is linked in from the usual cache, not made again).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from helpers import HASH

from selfmem import EmbeddingConfig, Memory
from selfmem._errors import ConfigError, EmbedderMismatchError
from selfmem.retrieval import _embedders, _onnx
from selfmem.retrieval._embedders import (HashEmbedder, SentenceTransformerEmbedder, bulk_dtype, cache_dir,
                                          resolve_dtype, resolve_runtime,
                                          vector_space)

onnx_installed = pytest.mark.skipif(not _onnx.available(), reason="onnxruntime and onnx are not installed")

TEXTS = ["", "a", "Hi!", "What did Caroline research after the support group meeting?",
         "Melanie: I painted a sunrise over the lake last week, and the kids loved it. " * 40,  # > max_tokens
         "Count the red cells.", "   ", "Mirror the grid left to right, then fill the enclosed region with blue.",
         "ok", "The grid is rotated 90 degrees clockwise."]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """A fresh SELFMEM_CACHE for this module (the dequantized own model linked in from the usual cache)."""
    from selfmem.retrieval._causal import CausalLMWeights

    CausalLMWeights("smollm2").materialise()  # in the usual cache, once
    models = cache_dir() / "models"
    root = tmp_path_factory.mktemp("cache")
    (root / "models").symlink_to(models, target_is_directory=True)
    old, loaded = os.environ.get("SELFMEM_CACHE"), _embedders._MODELS
    os.environ["SELFMEM_CACHE"] = str(root)
    _embedders._MODELS = {}  # models loaded by earlier tests were read from another cache
    yield root
    _embedders._MODELS = loaded
    if old is None:
        os.environ.pop("SELFMEM_CACHE")
    else:
        os.environ["SELFMEM_CACHE"] = old


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1)


@onnx_installed
def test_onnx_vectors_match_torch_float32_and_fingerprints_differ(onnx_cache):
    from selfmem.retrieval._own import CausalLMEmbedder

    own_ref = CausalLMEmbedder(layer=9, runtime="torch", dtype="float32", device="cpu", max_tokens=64)
    pairs = [(SentenceTransformerEmbedder(runtime="onnx", max_tokens=64),
              SentenceTransformerEmbedder(runtime="torch", dtype="float32", device="cpu", max_tokens=64)),
             (CausalLMEmbedder(layer=9, runtime="onnx", max_tokens=64), own_ref),
             (CausalLMEmbedder(layer=9, runtime="onnx-w8", max_tokens=64), own_ref)]
    for fast, ref in pairs:
        ref.truncated = 0
        want = ref.embed(TEXTS)  # 10 texts: a bulk call, padded batches
        got = fast.embed(TEXTS)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
        assert cosines(got, want).min() > 0.9999  # float32 in both: equal within rounding
        assert fast.truncated == ref.truncated == 1
        fast.truncated = 0
        # a query or a small batch (<= 8 texts) runs in ONNX Runtime, one thread; "onnx-w8": 8-bit own weights
        small = np.concatenate([fast.embed(TEXTS[i:i + 4]) for i in range(0, len(TEXTS), 4)])
        assert cosines(small, want).min() > (0.9998 if fast.runtime == "onnx-w8" else 0.99999)
        np.testing.assert_allclose(fast.embed(TEXTS[3:4])[0], small[3], atol=1e-4)  # padding changes nothing
        fp, old = fast.fingerprint(), ref.fingerprint()
        assert "runtime" not in old and fp["runtime"] == ("onnxruntime-w8q" if fast.runtime == "onnx-w8"
                                                          else "onnxruntime-fp32")
        assert fp != old and vector_space(fp) == vector_space(old)
    assert sorted(p.name.split("-v1")[0].rsplit("-", 1)[-1] for p in (onnx_cache / "onnx").glob("*.onnx")) == [
        "fp32", "fp32", "w8"]


@onnx_installed
def test_export_is_cached_and_reused(onnx_cache, monkeypatch):
    SentenceTransformerEmbedder(runtime="onnx").embed(["first load exports"])
    files = {p: p.stat().st_mtime_ns for p in (onnx_cache / "onnx").glob("*.onnx")}
    assert files and not list((onnx_cache / "onnx").glob("*.tmp"))
    import torch

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    monkeypatch.setattr(_embedders, "_MODELS", {})  # a fresh process as far as loaded models go
    v = SentenceTransformerEmbedder(runtime="onnx").embed(["second load reads the cache"])
    assert v.shape == (1, 384)
    assert {p: p.stat().st_mtime_ns for p in (onnx_cache / "onnx").glob("*.onnx")} == files


def test_auto_runtime_follows_the_cpu_and_the_switch(monkeypatch):
    monkeypatch.setenv("SELFMEM_CPU_BF16", "1")  # a bf16 CPU: ONNX queries, bulk calls in PyTorch bfloat16
    assert _embedders.fast_bf16_cpu()
    assert resolve_runtime("auto", "cpu", "auto") == ("onnx" if _onnx.available() else "torch")
    assert str(resolve_dtype(bulk_dtype("auto", "onnx", "auto"), "cpu")) == "torch.bfloat16"
    assert str(resolve_dtype(bulk_dtype("onnx", "onnx", "auto"), "cpu")) == "torch.float32"  # asked for ONNX
    assert str(resolve_dtype(bulk_dtype("torch", "torch", "auto"), "cpu")) == "torch.bfloat16"
    monkeypatch.setenv("SELFMEM_CPU_BF16", "0")
    assert not _embedders.fast_bf16_cpu()
    assert resolve_runtime("auto", "cpu", "auto") == ("onnx" if _onnx.available() else "torch")
    assert str(resolve_dtype(bulk_dtype("auto", "onnx", "auto"), "cpu")) == "torch.float32"
    assert resolve_runtime("auto", "cpu", "float32") == "torch"  # an explicit dtype keeps PyTorch
    assert resolve_runtime("auto", "cuda", "auto") == "torch"
    assert resolve_runtime("torch", "cpu", "auto") == "torch"
    monkeypatch.setattr(_onnx, "available", lambda: False)
    assert resolve_runtime("auto", "cpu", "auto") == "torch"  # not installed: PyTorch, as before
    with pytest.raises(ConfigError, match="float32 on the CPU"):
        resolve_runtime("onnx", "cuda", "auto")
    with pytest.raises(ConfigError, match="runtime must be"):
        resolve_runtime("tensorrt", "cpu", "auto")
    with pytest.raises(ConfigError, match="runtime"):
        EmbeddingConfig(runtime="onnx", dtype="bfloat16")
    with pytest.raises(ConfigError, match="runtime"):
        EmbeddingConfig(runtime="fast")


class _OtherRuntime(HashEmbedder):
    """The hash embedder's vectors under another runtime's fingerprint (as the ONNX path reports itself)."""

    def fingerprint(self):
        return {**super().fingerprint(), "runtime": _onnx.RUNTIME}


def test_a_memory_opens_under_either_runtime_and_keeps_its_fingerprint(tmp_path):
    path = tmp_path / "mem"
    with Memory(path, HASH) as mem:
        mem.add_many(["made by PyTorch", "before the ONNX path existed"])
        made = mem._state.store.meta_items("embedder.")
    with Memory(path, HASH, general=_OtherRuntime(64)) as mem:  # the same vectors from another runtime
        assert len(mem.search("PyTorch", k=2)) == 2
        mem.add("added by ONNX Runtime")
        assert mem._state.store.meta_items("embedder.") == made  # still names the runtime that made the memory
    with pytest.raises(EmbedderMismatchError):  # another model is still refused
        Memory(path, HASH, general=HashEmbedder(64, seed="other"))
