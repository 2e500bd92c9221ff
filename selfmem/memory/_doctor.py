"""``doctor``: check that a memory's store and every derived file agree; repair only what disagrees.

A writer reconciles its derived files silently when it opens a memory (it adds what an index lacks,
rebuilds what is damaged). The doctor looks before that happens: it opens the store read-only in
place (so a memory held by a writer is refused, and nothing is written while checking), loads each
derived file the way its part would and compares it with the store. ``repair=True`` then opens the
memory for writing and rebuilds only the parts found wrong, and checks again.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .._config import MemoryConfig
from .._errors import ConfigError, CorruptMemoryError, InvalidInputError, MemoryLockedError, StorageError
from .._types import Checkup, Finding
from ..retrieval._embedders import Embedder
from ..clustering._topics import TOPICS_FILE
from ..retrieval._index import INDEX_META, load_index
from ..retrieval._keywords import KeywordIndex
from ._opening import STORE_FILE, make_views, read_config
from ._part_topics import TopicPart
from ._parts import PartContext, reconcile
from ..store import DATABASE_ERRORS, DuckDBStore, Store
from ..store._readview import VIEW_DIR, behind, read_manifest, view_files

if TYPE_CHECKING:
    import numpy as np

__all__ = ["doctor"]

CHECKED = ("config", "store", "whitening", "index", "re-rank file", "keywords", "topics", "graph", "read view")
PART_OF = {"index": "vector index", "re-rank file": "vector index", "whitening": "vector index",
           "keywords": "keyword index", "topics": "topic model", "graph": "knowledge graph", "read view": "read view"}
"""Which derived part (by ``name``) rebuilds what a finding concerns."""
_AFTER_WHITENING = ("topic model", "knowledge graph")  # fitted in the index-vector space a new whitening changes
UNREPAIRABLE = ("store.damaged", "store.unreadable", "config.invalid")
"""Finding codes that a rebuild cannot fix (restore a backup / fix the file)."""


def _ids_agree(part: str, held: np.ndarray, stored: np.ndarray, fix: str) -> list[Finding]:
    missing, extra = reconcile(held, stored)
    out = []
    if len(missing):
        out.append(Finding(part, f"lacks {len(missing)} of {len(stored)} stored records", fix,
                           f"{part}.missing_records"))
    if len(extra):
        out.append(Finding(part, f"holds {len(extra)} records that the store no longer has", fix,
                           f"{part}.extra_records"))
    return out


def _check_store(store: Store, cfg: MemoryConfig, path: str) -> list[Finding]:
    """Read every row once (the database verifies its blocks as it reads) and check vectors per record."""
    try:
        counts = store.scan()
    except CorruptMemoryError as exc:
        return [Finding("store", str(exc), f"restore {path}/memory.duckdb from a backup (every other file is "
                        "derived from it)", "store.damaged")]
    n = counts["records"]
    out = []
    roles = ["general"] + (["own"] if cfg.embedding.own is not None else [])
    for role in roles:
        have = counts.get(f"vectors.{role}", 0)
        if have != n:
            out.append(Finding("store", f"{n - have} of {n} records lack {role} vectors",
                               f"memctl rebuild {path} --reembed", "store.missing_vectors"))
    return out


def _index_was_whitened(directory: Path) -> bool:
    """Whether the saved index was built on whitened own vectors (then a missing whitening is a loss; before
    the first whitening is swapped in, none was ever saved and the next open fits it)."""
    try:
        meta = json.loads((directory / INDEX_META).read_text())
    except (OSError, ValueError):
        return True  # no readable index: the index check reports it; do not hide a missing whitening
    return isinstance(meta, dict) and "whitener" in (meta.get("signature") or {})


def _check_derived(store: Store, directory: Path, cfg: MemoryConfig, general: Embedder | None,
                   own: Embedder | None) -> list[Finding]:
    path = str(directory)
    rebuild = f"memctl doctor {path} --repair"
    out: list[Finding] = []
    ids = store.ids()
    n = len(ids)
    views = make_views(cfg.embedding, general, own)
    ctx = PartContext(store, directory, views, cfg, writable=False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            views.load_whitener(directory, store.store_id)
            if views.own is not None and views.mode != "general" and views.whitener is None \
                    and n >= views.min_fit and _index_was_whitened(directory):  # else the first fit is pending
                out.append(Finding("whitening", "own_whitener.npz is missing, damaged or from another memory",
                                   rebuild, "whitening.missing"))
            index = load_index(directory, {**views.signature(), "store": store.store_id}, read_only=True)
            if index is None:
                if n:
                    out.append(Finding("index", "index.faiss is missing, damaged, or built for other vectors", rebuild,
                                       "index.missing"))
            else:
                out += _ids_agree("index", index.ids(), ids, rebuild)
            keywords = KeywordIndex.load(directory, store.store_id)
            if keywords is None:
                if n:
                    out.append(Finding("keywords", "keywords.npz is missing, damaged or from another memory", rebuild,
                                       "keywords.missing"))
            else:
                out += _ids_agree("keywords", keywords.ids(), ids, rebuild)
            topics = TopicPart(ctx)
            leaves = sum(1 for t in store.topics() if t.level == 0)
            pending = leaves == 0 and not (directory / TOPICS_FILE).exists()  # the first fit is due at the next open
            if not topics.state.load(topics._signature(ctx.space()), leaves) and n >= cfg.topics.min_records \
                    and not pending:
                out.append(Finding("topics", "topics.npz is missing, damaged or does not match the stored topics",
                                   rebuild, "topics.missing"))
        for w in caught:
            if "re-rank" in str(w.message):
                out.append(Finding("re-rank file", str(w.message).split(" (")[0] + " has a bad checksum", rebuild,
                                   "rerank.checksum"))
    finally:
        ctx.cleanup()
    out += _check_tables(store, n, rebuild)
    out += _check_view(store, directory, rebuild)
    return out


def _check_tables(store: Store, n: int, fix: str) -> list[Finding]:
    out = []
    leaves, unassigned, orphan = store.membership_problems()
    if leaves and unassigned:
        out.append(Finding("topics", f"{unassigned} of {n} records have no topic", fix, "topics.unassigned"))
    if orphan:
        out.append(Finding("topics", f"{orphan} topic memberships name missing records or topics", fix,
                           "topics.orphans"))
    if not store.has_table("edges"):
        if n:
            out.append(Finding("graph", "the graph tables are missing (a memory from an older selfmem)", fix,
                               "graph.missing"))
        return out
    dangling = store.graph.dangling()
    if dangling:
        out.append(Finding("graph", f"{dangling} edges name deleted memories", fix, "graph.dangling"))
    if n:
        no_edges = store.graph.missing_follows()
        if no_edges:
            out.append(Finding("graph", f"{no_edges} memories lack the FOLLOWS edge to the one before in their session",
                               fix, "graph.missing_follows"))
    return out


def _check_view(store: Store, directory: Path, fix: str) -> list[Finding]:
    manifest = read_manifest(directory)
    out = []
    why = behind(manifest, store)
    if why is not None:  # a writer publishes at close: one that did not finish leaves it behind
        out.append(Finding("read view", why + (": read-only opens copy the store" if manifest is None else ""), fix,
                           "view.behind"))
    if manifest is None or manifest.get("store_id") != store.store_id:
        return out
    lost = sorted(name for name in view_files(manifest) if not (directory / VIEW_DIR / name).is_file())
    if lost:
        out.append(Finding("read view", f"{len(lost)} files of the read view are missing ({lost[:3]})", fix,
                           "view.missing_files"))
    return out


def _examine(directory: Path, general: Embedder | None, own: Embedder | None) -> list[Finding]:
    path = str(directory)
    out: list[Finding] = []
    try:
        cfg = read_config(directory)
    except ConfigError as exc:
        out.append(Finding("config", f"config.toml is invalid ({exc})", f"fix or delete {path}/config.toml",
                           "config.invalid"))
        cfg = MemoryConfig()
    try:
        store = DuckDBStore(directory / STORE_FILE, read_only=True)
    except CorruptMemoryError as exc:
        return out + [Finding("store", str(exc).split(";")[0],
                              f"restore {path}/memory.duckdb from a backup (every other file is derived from it)",
                              "store.unreadable")]
    try:
        problems = _check_store(store, cfg, path)
        out += problems
        if not any(p.code == "store.damaged" for p in problems):
            out += _check_derived(store, directory, cfg, general, own)
    except DATABASE_ERRORS + (CorruptMemoryError,) as exc:  # damage the scan's reads did not reach
        out.append(Finding("store", f"memory.duckdb is damaged ({str(exc)[:160]})",
                           f"restore {path}/memory.duckdb from a backup (every other file is derived from it)",
                           "store.damaged"))
    finally:
        with contextlib.suppress(*DATABASE_ERRORS, CorruptMemoryError, StorageError):
            store.close()
    return out


def doctor(path: str | os.PathLike[str], *, repair: bool = False, general: Embedder | None = None,
           own: Embedder | None = None, progress: bool | None = None) -> Checkup:
    """Check that a memory's store, index, re-rank file, keywords, topics, graph and read view agree.

    Parameters
    ----------
    path : str or path-like
        A memory directory, not open for writing anywhere (a writer reconciles it itself).
    repair : bool
        Rebuild the parts found wrong (the memory is opened for writing; nothing else is refitted).
    general, own : Embedder, optional
        Embedder objects the memory was made with, when not the ones its config names.
    progress : bool, optional
        Progress bars for the repair.

    Returns
    -------
    Checkup
        What was checked, found, repaired, and what remains.

    Raises
    ------
    MemoryLockedError
        A writer holds the memory.
    InvalidInputError
        No memory at ``path``.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip() or "\x00" in str(path):
        raise InvalidInputError(f"path must be a memory directory, got {path!r}")
    if not isinstance(repair, bool):
        raise InvalidInputError(f"repair must be True or False, got {repair!r}")
    directory = Path(path).expanduser()
    if (directory / "config.toml").is_file() and not (directory / STORE_FILE).is_file():
        with contextlib.suppress(ConfigError):
            if read_config(directory).store != "duckdb":
                raise InvalidInputError(f"{directory} is a memory on PostgreSQL: doctor checks DuckDB memories; on "
                                        "PostgreSQL each process rebuilds its caches as it opens (memctl rebuild "
                                        "refits them all)")
    if not (directory / STORE_FILE).is_file():
        raise InvalidInputError(f"no memory at {directory} (no {STORE_FILE}); check the path")
    from ._registry import writer_of
    from ._memory import Memory

    if writer_of(directory) is not None:
        raise MemoryLockedError(f"{directory} is open for writing in this process; close it before running doctor")
    problems = tuple(_examine(directory, general, own))
    if not repair or not problems or any(p.code in UNREPAIRABLE for p in problems):
        return Checkup(str(directory), CHECKED, problems, (), problems)
    reembed = any(p.code == "store.missing_vectors" for p in problems)
    repaired: list[str] = []
    with warnings.catch_warnings():  # the damage was reported above; opening for writing rebuilds it quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        mem = Memory(directory, general=general, own=own, progress=progress, create=False, reembed=reembed)
    with mem:
        if reembed:
            mem.rebuild(reembed=True)
            repaired.append("store (re-embedded; every part rebuilt)")
        else:
            found = {p.part for p in problems if p.part in PART_OF}
            names = {PART_OF[p] for p in found} | (set(_AFTER_WHITENING) if "whitening" in found else set())
            repaired += mem._maintenance.repair(names, index_only="whitening" not in found)
    remaining = tuple(_examine(directory, general, own))
    return Checkup(str(directory), CHECKED, problems, tuple(repaired), remaining)
