"""What ``Memory.stats()`` adds for ``memctl inspect``: disk use, topic levels, the last rebuild, health.

Every health warning is a :class:`Finding` naming the command that fixes it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .._types import JSON, Finding, RebuildInfo, SessionRow, ViewInfo
from ..store import Store

if TYPE_CHECKING:
    from .._config import MemoryConfig
    from ..retrieval._post import Whitener

__all__ = ["natural_key", "session_rows", "disk_use", "last_rebuild", "mark_rebuild", "health", "view_info", "saved_index_count"]

LAST_REBUILD = "last_rebuild"


def natural_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that orders embedded numbers by value: s2 before s10.

    >>> sorted(["s10", "s2", "s1", "a"], key=natural_key)
    ['a', 's1', 's2', 's10']
    """
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def session_rows(store: Store) -> list[SessionRow]:
    """Every session (``""``: records outside one) with its records, first and last time and kinds, in
    natural order."""
    out: list[SessionRow] = [{"session": name, "records": n, "first": first.isoformat(timespec="seconds"),
            "last": last.isoformat(timespec="seconds"), "kinds": kinds}
           for name, n, first, last, kinds in store.session_summary()]
    return sorted(out, key=lambda r: natural_key(r["session"]))


def disk_use(directory: Path) -> dict[str, int]:
    """Bytes per entry of ``directory`` (a sub-directory summed as one entry), largest first."""
    out: dict[str, int] = {}
    for entry in directory.iterdir():
        try:
            if entry.is_dir():  # each file once: readers' pins are hard links to the view's files
                out[entry.name + "/"] = sum({(st.st_dev, st.st_ino): st.st_size for st in
                                             (p.stat() for p in entry.rglob("*") if p.is_file())}.values())
            else:
                out[entry.name] = entry.stat().st_size
        except OSError:  # a file replaced while we looked
            continue
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def mark_rebuild(store: Store) -> None:
    """Record a full rebuild (time, records, highest id) in the store's meta table."""
    hi, n = store.id_range()
    store.set_meta(LAST_REBUILD, json.dumps({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                             "records": int(n), "max_id": int(hi)}))


def last_rebuild(store: Store) -> RebuildInfo:
    """The last full rebuild and what changed since: ``{at, records, added_since, deleted_since}``."""
    raw = store.get_meta(LAST_REBUILD)
    if not raw:
        return RebuildInfo()
    try:
        data = json.loads(raw)
        added = store.count_between(int(data["max_id"]))
        deleted = int(data["records"]) + added - store.count()
    except (ValueError, KeyError, TypeError):
        return RebuildInfo()
    return RebuildInfo(at=data["at"], records=int(data["records"]), added_since=added, deleted_since=deleted)


def saved_index_count(directory: Path) -> int | None:
    """Vectors in the saved index (``index.json``), or None when there is none."""
    try:
        return int(json.loads((directory / "index.json").read_text())["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def view_info(manifest: Mapping[str, JSON] | None) -> ViewInfo:
    """The read view that a reader reads or a writer last published."""
    if not manifest:
        return ViewInfo()
    at = datetime.fromtimestamp(float(manifest["published_at"]), timezone.utc)
    return ViewInfo(published_at=at.isoformat(timespec="seconds"), age_s=round(time.time() - at.timestamp(), 1),
                    records=int(manifest["records"]), segments=len(manifest["segments"]))


def health(*, path: str, records: int, whitener: Whitener | None, views_mode: str, own: bool, cfg: MemoryConfig, levels: dict[int, int],
           provisional: int, topics_fitted: bool, graph: bool, saved_index: int | None, writable: bool
           ) -> tuple[Finding, ...]:
    """Warnings about a memory's state, each with its fix.

    Parameters
    ----------
    path : str
        The memory directory (for the fix commands).
    records : int
    whitener : Whitener or None
        The own view's whitening in use.
    views_mode, own : str, bool
        The fusion mode and whether an own model is configured.
    cfg : MemoryConfig
    levels, provisional : dict, int
        From ``Store.topic_levels``.
    topics_fitted, graph : bool
        Whether a topic model is loaded, whether the graph tables exist.
    saved_index : int or None
        Vectors in the saved index file.
    writable : bool
        Whether the memory was opened for writing (a writer reconciles files itself).
    """
    out: list[Finding] = []
    rebuild = f"memctl rebuild {path}"
    ec = cfg.embedding
    if own and views_mode != "general":
        if whitener is None and records >= ec.own_min_fit:
            out.append(Finding("whitening", f"the own view is not whitened yet ({records} records)", rebuild))
        elif whitener is not None and whitener.n_samples_ < min(records / max(ec.own_refit_growth, 1.0),
                                                                 ec.own_refit_until):
            out.append(Finding("whitening", f"the whitening was fitted on {whitener.n_samples_} of {records} "
                                            "records: the own view's distances are skewed", rebuild))
    leaves = levels.get(0, 0)
    if provisional and provisional >= max(3, 0.25 * leaves):
        out.append(Finding("topics", f"{provisional} of {leaves} topics are provisional (opened online, unlabelled "
                                     "and outside the tree)", rebuild))
    if records >= cfg.topics.min_records and not topics_fitted and not leaves:
        out.append(Finding("topics", f"no topics yet although the memory holds {records} records", rebuild))
    if not graph and records:
        out.append(Finding("graph", "the knowledge graph is not built (a memory from an older selfmem)", rebuild))
    if not writable and records and (saved_index is None or saved_index < 0.9 * records):
        held = "no saved index" if saved_index is None else f"the saved index holds {saved_index} of {records} records"
        out.append(Finding("index", f"{held}: every read-only open indexes the rest again (a writer saves it "
                                    "when it closes)", f"memctl doctor {path} --repair"))
    return tuple(out)
