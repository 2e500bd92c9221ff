"""The embedding models in ONNX Runtime, for CPUs without bfloat16 instructions.

On such a CPU the models run in float32, and in eager PyTorch a short query pays mostly per-operator
overhead (issue 28: 18 ms for one short text on an AMD EPYC). :func:`export` writes a model's
forward pass *with its pooling* (token ids and mask -> one float32 vector per text) to an ONNX file
once, from the local weights, with torch's TorchScript exporter; :class:`OnnxEncoder` runs it in
ONNX Runtime with every graph optimisation on. Its vectors equal the float32 PyTorch ones within
rounding (cosine > 0.99999). With ``runtime="onnx-w8"`` the own model's queries run on a copy with
8-bit weights (:func:`quantize_w8`: cosine > 0.9998 to float32, but the own view's whitening magnifies
the difference, so it is opt-in). The embedders use ONNX
Runtime for queries and small batches only: for bulk calls it was no faster than PyTorch float32
(docs/benchmarks-history.md, "CPU without bf16"), so those stay in PyTorch. The fingerprint's ``runtime``
field names the path (``tests/test_onnx_runtime.py``).

The ONNX files are cached under ``$SELFMEM_CACHE/onnx/`` with the weights' digest in their names,
written to a temporary file and renamed, so a crash or a second process never leaves half a file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DependencyError, ModelLoadError
from ._tensors import Tensor

__all__ = ["RUNTIME", "RUNTIME_W8Q", "EXPORT_VERSION", "available", "export", "quantize_w8", "OnnxEncoder",
           "mean_pool", "bulk_threads"]

RUNTIME = "onnxruntime-fp32"
RUNTIME_W8Q = "onnxruntime-w8q"  # runtime="onnx-w8": own-model queries with 8-bit weights (bulk: PyTorch float32)
EXPORT_VERSION = "v1"  # part of the cached file's name: a change to the exported graph makes a new file
_EXPORT_LOCK = threading.Lock()


def available() -> bool:
    """True when ONNX Runtime and the ``onnx`` package (the exporter writes through it) are installed."""
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def bulk_threads() -> int:
    """Intra-op threads for bulk work: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def mean_pool(h: Tensor, mask: Tensor) -> Tensor:
    """Attention-masked mean over tokens in float32, as the PyTorch paths pool: (b, t, d), (b, t) -> (b, d)."""
    m = mask.unsqueeze(-1).float()
    return (h.float() * m).sum(1) / m.sum(1).clamp(min=1.0)


def export(forward: Callable[[Tensor, Tensor], Tensor], weights: Mapping[str, Tensor], target: Path, *,
           what: str) -> Path:
    """Write ``forward(ids, mask) -> (b, dim)`` to ``target`` as ONNX, unless it is there already.

    Parameters
    ----------
    forward : callable
        Token ids (b, t) int64 and mask (b, t) int64 -> float32 vectors (b, dim), in plain torch.
    weights : mapping name -> tensor
        Every tensor ``forward`` reads; they become the graph's initializers (named, not folded constants).
    target : Path
        The cached file; written through a temporary file in the same directory and renamed.
    what : str
        The model, for messages.

    Raises
    ------
    DependencyError
        ``onnx`` (the exporter's writer) is not installed.
    ModelLoadError
        The export failed, or the cache directory cannot be written.
    """
    if target.is_file():
        return target
    if importlib.util.find_spec("onnx") is None:
        raise DependencyError(f"exporting {what} to ONNX needs the 'onnx' package: pip install onnx "
                              "(or run the models in PyTorch: EmbeddingConfig(runtime='torch'))")
    import torch

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i, tensor in enumerate(weights.values()):
                self.register_buffer(f"w{i}", tensor)  # the same tensors: the tracer names them initializers

        def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
            return forward(ids, mask)

    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 0, 0]], dtype=torch.int64)
    mask = (ids > 0).to(torch.int64)
    with _EXPORT_LOCK:
        if target.is_file():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
            os.close(fd)
        except OSError as exc:
            raise ModelLoadError(f"cannot write the ONNX cache {target.parent}: {exc}; set SELFMEM_CACHE to a "
                                 "writable directory") from exc
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings(), \
                    contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.onnx.export(Forward(), (ids, mask), tmp, dynamo=False, opset_version=17,
                                  input_names=["input_ids", "attention_mask"], output_names=["pooled"],
                                  dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                                "attention_mask": {0: "batch", 1: "tokens"},
                                                "pooled": {0: "batch"}})
            os.chmod(tmp, 0o644)  # mkstemp made it private; the cache is shared like the dequantized models
            os.replace(tmp, target)
        except (RuntimeError, ValueError, TypeError, OSError, torch.onnx.OnnxExporterError) as exc:
            raise ModelLoadError(f"cannot export {what} to ONNX ({target}): {exc}; run the models in PyTorch "
                                 "instead: EmbeddingConfig(runtime='torch')") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return target


def quantize_w8(src: Path, target: Path, block: int = 32) -> Path:
    """Write ``src`` with its float32 weight matrices as 8-bit blocks (ONNX Runtime's ``MatMulNBits``), once.

    Each MatMul whose second input is a (K, N) float32 initializer (K a multiple of ``block``) becomes
    ``MatMulNBits`` (bits 8, symmetric, one float32 scale per ``block`` weights along K; accuracy level 4:
    the activations are quantized per block too, and the products run in int8). For SmolLM2's first 9
    layers the pooled vectors stay within cosine 0.9998 of float32 (``tests/test_onnx_runtime.py``), and a
    one-text query runs 1.3-1.4x faster than in float32 on one core: with so few tokens the float32
    weights' bytes and FLOPs, not the activations, set the time. Larger batches are not faster in
    8 bits, so only queries and small batches use this file.
    """
    if target.is_file():
        return target
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise DependencyError("making the 8-bit query model needs the 'onnx' package: pip install onnx "
                              "(or EmbeddingConfig(runtime='torch'))") from exc

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes, replaced = [], set()
    for node in graph.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or len(w.dims) != 2 or w.data_type != onnx.TensorProto.FLOAT or w.dims[0] % block:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(w)
        k, n = weight.shape
        blocks = weight.T.reshape(n, k // block, block)
        scale = np.abs(blocks).max(-1) / 127.0
        scale[scale == 0] = 1.0
        q = (np.clip(np.rint(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8)  # zero point 128
        qn, sn = node.input[1] + ".w8", node.input[1] + ".w8_scale"
        graph.initializer.extend([numpy_helper.from_array(q, qn),
                                  numpy_helper.from_array(scale.astype(np.float32).reshape(-1), sn)])
        replaced.add(node.input[1])
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], qn, sn], list(node.output), name=node.name + ".w8",
                                      domain="com.microsoft", K=k, N=n, bits=8, block_size=block, accuracy_level=4))
    used = {i for node in nodes for i in node.input}
    keep = [i for i in graph.initializer if i.name not in replaced or i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot write {target}: {exc}; set SELFMEM_CACHE to a writable directory") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


class OnnxEncoder:
    """An exported model in ONNX Runtime: ``(ids, mask, small) -> (b, dim)`` float32.

    Two sessions, each made on first use: for a query or a small batch (``small``), one intra-op thread
    (as :func:`._embedders.threads_for` does for PyTorch: threads that wait on a busy neighbour cost
    more than they give) on ``small_path`` when given (the 8-bit weights of :func:`quantize_w8`);
    for bulk work, every core the process may run on, on ``path``. Each session holds its own copy of
    the weights.

    Parameters
    ----------
    path : Path
        The float32 ONNX file (from :func:`export`).
    small_path : Path, optional
        The file for small batches (default ``path``).
    """

    def __init__(self, path: Path, small_path: Path | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise DependencyError("the ONNX path needs onnxruntime: pip install onnxruntime "
                                  "(or EmbeddingConfig(runtime='torch'))") from exc
        self.path = path
        self.small_path = small_path or path
        self._ort = onnxruntime
        self._sessions: dict[bool, Any] = {}  # onnxruntime.InferenceSession (untyped)
        self._lock = threading.Lock()
        self.session(True)  # load now: a damaged file fails here, with the message below

    def session(self, small: bool) -> Any:
        """The session for small batches or for bulk work (made once)."""
        with self._lock:
            if small not in self._sessions:
                ort = self._ort
                opts = ort.SessionOptions()
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                opts.intra_op_num_threads = 1 if small else bulk_threads()
                opts.inter_op_num_threads = 1
                opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                opts.log_severity_level = 3
                path = self.small_path if small else self.path
                try:
                    self._sessions[small] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                except Exception as exc:  # onnxruntime raises its own untyped errors (Fail, InvalidGraph, ...)
                    raise ModelLoadError(f"ONNX Runtime cannot load {path}: {exc}; delete the file to export it "
                                         "again, or use EmbeddingConfig(runtime='torch')") from exc
            return self._sessions[small]

    def __call__(self, ids: np.ndarray, mask: np.ndarray, small: bool = True) -> np.ndarray:
        out = self.session(small).run(["pooled"], {"input_ids": np.ascontiguousarray(ids, dtype=np.int64),
                                                   "attention_mask": np.ascontiguousarray(mask, dtype=np.int64)})
        return np.asarray(out[0], dtype=np.float32)
