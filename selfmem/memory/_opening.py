"""Opening a memory directory: refuse foreign directories, check embedder fingerprints, re-embed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from .._config import EmbeddingConfig, MemoryConfig
from .._errors import CorruptMemoryError, EmbedderMismatchError, InvalidInputError
from .._progress import show_progress
from ..retrieval._bulk import bulk_embed
from ..retrieval._embedders import Embedder, batches, vector_space
from ..retrieval._models import make_embedder, make_own_embedder
from ..retrieval._views import Views
from . import _validate as v
from ..store import Store

__all__ = ["check_open_args", "make_views", "check_foreign", "discard_new", "check_fingerprints", "reembed_roles", "read_config",
           "STORE_FILE", "CONFIG_FILE"]

STORE_FILE = "memory.duckdb"
CONFIG_FILE = "config.toml"


def read_config(directory: Path) -> MemoryConfig:
    """The memory's ``config.toml``, or the defaults when it has none (raises ConfigError when invalid)."""
    path = directory / CONFIG_FILE
    return MemoryConfig.read(path) if path.is_file() else MemoryConfig()


def check_open_args(path: object, config: object, general: object, own: object, progress: object,
                    **flags: object) -> Path:
    """Validate ``Memory(...)``'s arguments; return the directory path (expanded)."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InvalidInputError(f"path must be a directory path, got {path!r}")
    if config is not None and not isinstance(config, MemoryConfig):
        raise InvalidInputError(f"config must be a MemoryConfig, got {type(config).__name__}")
    for name, flag in flags.items():
        v.check_flag(flag, name)
    v.check_flag(progress, "progress", optional=True)
    for name, obj in (("general", general), ("own", own)):
        if obj is not None and not isinstance(obj, Embedder):
            raise InvalidInputError(f"{name} must implement the Embedder protocol (dim, fingerprint(), embed())")
    if "\x00" in str(path):
        raise InvalidInputError(f"path {str(path)!r} contains a NUL character")
    try:
        out = Path(path).expanduser()
    except RuntimeError as exc:  # "~someone" with no such user
        raise InvalidInputError(f"path {str(path)!r}: {exc}; use an absolute path") from exc
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} is a file; a memory is a directory")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInputError(f"{out} lies under {parent}, which is a file; choose another directory")
            break
    return out


def make_views(ec: EmbeddingConfig, general: Embedder | None, own: Embedder | None) -> Views:
    """The views of a memory: the configured embedders (or the objects given) and the fusion settings."""
    if own is not None and ec.own is None:
        raise InvalidInputError("an own embedder object needs config.embedding.own set (any label, e.g. 'custom')")
    return Views(general if general is not None else make_embedder(ec.general, ec),
                 own if own is not None else make_own_embedder(ec.own, ec), mode=ec.mode, alpha=ec.alpha,
                 own_dim=ec.own_dim, shrinkage=ec.own_shrinkage, min_fit=ec.own_min_fit)


def check_foreign(path: Path, own_files: Collection[str]) -> None:
    """Raise CorruptMemoryError when ``path`` holds files but no selfmem store (never write into it)."""
    if not path.is_dir() or (path / STORE_FILE).exists():
        return
    names = {p.name for p in path.iterdir()}
    left = sorted(names & (set(own_files) - {STORE_FILE, STORE_FILE + ".wal"}))
    if left:  # the store was deleted or moved: never start a new, empty memory beside its derived files
        raise CorruptMemoryError(
            f"{path} has no {STORE_FILE} but holds a memory's other files ({left[:4]}): the store is missing. "
            f"Restore {STORE_FILE} from a backup, or move these files away to start a new memory here")
    foreign = sorted(n for n in names if n not in own_files and not n.endswith(".tmp"))
    if foreign:
        raise CorruptMemoryError(
            f"{path} is not empty and holds no selfmem store (found {foreign[:5]}); pass a new or empty directory")


def discard_new(directory: Path, own_files: Collection[str], made: bool) -> None:
    """Remove what a failed create made: the memory's own files in ``directory`` (nothing else), and the
    directory itself when this call ``made`` it and it is left empty."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.name in own_files or (entry.name.endswith(".tmp") and entry.name.startswith(".")):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    if made:
        with contextlib.suppress(OSError):
            directory.rmdir()


def check_fingerprints(store: Store, views: Views, *, allow: bool, write: bool) -> list[str]:
    """Record the embedders' fingerprints; return the roles whose stored vectors are stale.

    Raises EmbedderMismatchError for a stale role unless ``allow``; ``write`` records new fingerprints.
    Fingerprints that differ only in the runtime (PyTorch or ONNX Runtime: the same vectors within
    cosine 0.9999) match; a memory with records keeps the fingerprint of the runtime that made it.
    """
    stored = {role: json.loads(fp) for role, fp in store.meta_items("embedder.").items()}
    has_records = store.count() > 0
    stale = []
    for role, emb in views.roles.items():
        fp, old = emb.fingerprint(), stored.get(role)
        same = vector_space(old) == vector_space(fp)
        if has_records and not same and (old is not None or role == "own"):
            if not allow:
                raise EmbedderMismatchError(
                    f"the memory's {role} vectors were made by {old}, but the configured {role} embedder is "
                    f"{fp}; configure the original model, or re-embed with Memory(path, config, reembed=True) "
                    "(memctl rebuild --reembed)")
            stale.append(role)
        elif old != fp and write and not (same and has_records):
            store.set_meta(f"embedder.{role}", json.dumps(fp, sort_keys=True))
    return stale


def reembed_roles(store: Store, views: Views, roles: Sequence[str], progress: bool | None) -> set[str]:
    """Re-run the embedders of ``roles`` over every record's text and replace the stored vectors.

    Returns the roles re-embedded (so a later ``rebuild(reembed=True)`` need not run them again).
    """
    if not roles:
        return set()
    ids, texts = store.texts()
    show = show_progress(progress, len(texts), 1)
    bulk = bulk_embed({role: views.roles[role] for role in roles}, texts, progress=show)  # GPUs: one pipeline
    for role in roles:
        emb = views.roles[role]
        if role in bulk:
            arr = bulk[role]
        else:
            parts = [emb.embed(texts[s]) for s in batches(len(texts), 256, progress=show, desc=f"re-embed {role}")]
            arr = np.concatenate(parts) if parts else np.zeros((0, emb.dim), np.float32)
        if len(ids):
            arr = v.check_vectors(arr, len(ids), emb.dim, f"{role} embedder output")
        store.replace_vectors(role, ids, arr)
        store.set_meta(f"embedder.{role}", json.dumps(emb.fingerprint(), sort_keys=True))
    return set(roles)
