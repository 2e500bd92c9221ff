"""``doctor``: check that a memory's store and every derived file agree; repair only what disagrees.

A writer reconciles its derived files silently when it opens a memory (it adds what an index lacks,
rebuilds what is damaged). The doctor looks before that happens: it opens the store read-only in
place (so a memory held by a writer is refused, and nothing is written while checking), loads each
derived file the way its part would and compares it with the store. ``repair=True`` then opens the
memory for writing and rebuilds only the parts found wrong, and checks again.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import duckdb

from .._config import MemoryConfig
from .._errors import ConfigError, CorruptMemoryError, InvalidInputError, MemoryLockedError
from .._types import Checkup, Finding
from ..retrieval._embedders import Embedder
from ..retrieval._index import load_index
from ..retrieval._keywords import KeywordIndex
from ._opening import STORE_FILE, make_views, read_config
from ._part_topics import TopicPart
from ._parts import PartContext, reconcile
from ._store import Store
from ._view import VIEW_DIR, behind, read_manifest, view_files

__all__ = ["doctor"]

CHECKED = ("config", "store", "whitening", "index", "re-rank file", "keywords", "topics", "graph", "read view")
_PARTS = {"index": "_vectors", "re-rank file": "_vectors", "whitening": "_vectors", "keywords": "_keywords",
          "topics": "_topics", "graph": "_graph", "read view": "_view"}
_AFTER_WHITENING = ("_topics", "_graph")  # fitted in the index-vector space, which a new whitening changes


def _ids_agree(part: str, held: Any, stored: Any, fix: str) -> list[Finding]:
    missing, extra = reconcile(held, stored)
    out = []
    if len(missing):
        out.append(Finding(part, f"lacks {len(missing)} of {len(stored)} stored records", fix))
    if len(extra):
        out.append(Finding(part, f"holds {len(extra)} records that the store no longer has", fix))
    return out


def _check_store(store: Store, cfg: MemoryConfig, path: str) -> list[Finding]:
    """Read every row once (DuckDB verifies block checksums as it reads) and check vectors per record."""
    con = store.connection
    out = []
    try:
        n, _ = con.execute("SELECT count(*), sum(length(text) + length(metadata)) FROM records").fetchone()
        per_role = dict(con.execute("SELECT embedder, count(*) FROM embeddings GROUP BY 1").fetchall())
        con.execute("SELECT sum(octet_length(vector)) FROM embeddings").fetchone()
    except duckdb.Error as exc:
        return [Finding("store", f"memory.duckdb is damaged ({str(exc)[:160]})",
                        f"restore {path}/memory.duckdb from a backup (every other file is derived from it)")]
    roles = ["general"] + (["own"] if cfg.embedding.own is not None else [])
    for role in roles:
        if per_role.get(role, 0) != n:
            out.append(Finding("store", f"{n - per_role.get(role, 0)} of {n} records lack {role} vectors",
                               f"memctl rebuild {path} --reembed"))
    return out


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
                    and n >= views.min_fit:
                out.append(Finding("whitening", "own_whitener.npz is missing, damaged or from another memory",
                                   rebuild))
            index = load_index(directory, {**views.signature(), "store": store.store_id}, read_only=True)
            if index is None:
                if n:
                    out.append(Finding("index", "index.faiss is missing, damaged, or built for other vectors", rebuild))
            else:
                out += _ids_agree("index", index.ids(), ids, rebuild)
            keywords = KeywordIndex.load(directory, store.store_id)
            if keywords is None:
                if n:
                    out.append(Finding("keywords", "keywords.npz is missing, damaged or from another memory", rebuild))
            else:
                out += _ids_agree("keywords", keywords.ids(), ids, rebuild)
            topics = TopicPart(ctx)
            leaves = sum(1 for t in store.topics() if t.level == 0)
            if not topics.state.load(topics._signature(ctx.space()), leaves) and n >= cfg.topics.min_records:
                out.append(Finding("topics", "topics.npz is missing, damaged or does not match the stored topics",
                                   rebuild))
        for w in caught:
            if "re-rank" in str(w.message):
                out.append(Finding("re-rank file", str(w.message).split(" (")[0] + " has a bad checksum", rebuild))
    finally:
        ctx.cleanup()
    out += _check_tables(store, n, rebuild)
    out += _check_view(store, directory, rebuild)
    return out


def _check_tables(store: Store, n: int, fix: str) -> list[Finding]:
    con = store.connection
    out = []
    if store.has_table("memberships") and store.has_table("topics"):
        leaves = con.execute("SELECT count(*) FROM topics WHERE level = 0").fetchone()[0]
        unassigned, orphan = con.execute(
            "SELECT (SELECT count(*) FROM records r WHERE NOT EXISTS "
            "  (SELECT 1 FROM memberships m WHERE m.record_id = r.id AND m.rank = 0)), "
            "(SELECT count(*) FROM memberships m WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = m.record_id) "
            "  OR NOT EXISTS (SELECT 1 FROM topics t WHERE t.id = m.topic_id))").fetchone()
        if leaves and unassigned:
            out.append(Finding("topics", f"{unassigned} of {n} records have no topic", fix))
        if orphan:
            out.append(Finding("topics", f"{orphan} topic memberships name missing records or topics", fix))
    if not store.has_table("edges"):
        if n:
            out.append(Finding("graph", "the graph tables are missing (a memory from an older selfmem)", fix))
        return out
    dangling = con.execute(
        "SELECT count(*) FROM edges e WHERE (starts_with(e.src, 'memory:') AND TRY_CAST(substr(e.src, 8) AS BIGINT) "
        "NOT IN (SELECT id FROM records)) OR (starts_with(e.dst, 'memory:') AND TRY_CAST(substr(e.dst, 8) AS BIGINT) "
        "NOT IN (SELECT id FROM records))").fetchone()[0]
    if dangling:
        out.append(Finding("graph", f"{dangling} edges name deleted memories", fix))
    if n:
        no_edges = con.execute(
            "SELECT count(*) FROM records r WHERE r.session IS NOT NULL AND r.id <> (SELECT min(id) FROM records q "
            "WHERE q.session = r.session) AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.src = 'memory:' || r.id "
            "AND e.rel = 'FOLLOWS')").fetchone()[0]
        if no_edges:
            out.append(Finding("graph", f"{no_edges} memories lack the FOLLOWS edge to the one before in their session",
                               fix))
    return out


def _check_view(store: Store, directory: Path, fix: str) -> list[Finding]:
    manifest = read_manifest(directory)
    out = []
    why = behind(manifest, store)
    if why is not None:  # a writer publishes at close: one that did not finish leaves it behind
        out.append(Finding("read view", why + (": read-only opens copy the store" if manifest is None else ""), fix))
    if manifest is None or manifest.get("store_id") != store.store_id:
        return out
    lost = sorted(name for name in view_files(manifest) if not (directory / VIEW_DIR / name).is_file())
    if lost:
        out.append(Finding("read view", f"{len(lost)} files of the read view are missing ({lost[:3]})", fix))
    return out


def _examine(directory: Path, general: Embedder | None, own: Embedder | None) -> list[Finding]:
    path = str(directory)
    out: list[Finding] = []
    try:
        cfg = read_config(directory)
    except ConfigError as exc:
        out.append(Finding("config", f"config.toml is invalid ({exc})", f"fix or delete {path}/config.toml"))
        cfg = MemoryConfig()
    try:
        store = Store(directory / STORE_FILE, read_only=True)
    except CorruptMemoryError as exc:
        return out + [Finding("store", str(exc).split(";")[0],
                              f"restore {path}/memory.duckdb from a backup (every other file is derived from it)")]
    try:
        problems = _check_store(store, cfg, path)
        out += problems
        if not any(p.part == "store" and "damaged" in p.message for p in problems):
            out += _check_derived(store, directory, cfg, general, own)
    finally:
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
    if not (directory / STORE_FILE).is_file():
        raise InvalidInputError(f"no memory at {directory} (no {STORE_FILE}); check the path")
    from ._memory import Memory

    with Memory._writers_lock:
        held = Memory._writer_of(directory) is not None
    if held:
        raise MemoryLockedError(f"{directory} is open for writing in this process; close it before running doctor")
    problems = tuple(_examine(directory, general, own))
    if not repair or not problems:
        return Checkup(str(directory), CHECKED, problems, (), problems)
    unrepairable = {"store", "config"}
    parts = {p.part for p in problems} - unrepairable
    store_bad = [p for p in problems if p.part == "store"]
    repaired: list[str] = []
    if any("damaged" in p.message or "cannot" in p.message for p in store_bad):
        return Checkup(str(directory), CHECKED, problems, (), problems)

    reembed = any("lack" in p.message for p in store_bad)
    with warnings.catch_warnings():  # the damage was reported above; opening for writing rebuilds it quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        mem = Memory(directory, general=general, own=own, progress=progress, create=False, reembed=reembed)
    with mem:
        if reembed:
            mem.rebuild(reembed=True)
            repaired.append("store (re-embedded; every part rebuilt)")
        else:
            names = {_PARTS[p] for p in parts} | (set(_AFTER_WHITENING) if "whitening" in parts else set())
            for part in mem._parts:  # in dependency order
                name = next((n for n in names if getattr(mem, n) is part), None)
                if name is None:
                    continue
                if name == "_vectors" and "whitening" not in parts:
                    part.rebuild_index()
                else:
                    part.rebuild()
                repaired.append(part.name)
    remaining = tuple(_examine(directory, general, own))
    return Checkup(str(directory), CHECKED, problems, tuple(repaired), remaining)
