"""``memctl migrate``: copy a memory between stores (DuckDB <-> PostgreSQL), keeping ids, keys and times.

Records and their raw vectors are copied page by page with their ids (so parents, keys and sessions
stay as they were), with the store's id and the own-view whitening it was searched with; the copy
then builds its index, keywords, topics and graph from what it holds when it is opened: the same
computation on the same vectors, so searches give the same results.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from datetime import timezone
from pathlib import Path

from .._errors import InvalidInputError
from .._types import JSON, NewRecord
from ..retrieval._views import WHITENER_FILE
from ._memory import Memory
from ._part_sentences import SENTENCES_FILE
from ._state import OWN_FILES
from ._part_vectors import SHARED_DIGEST, SHARED_WHITENER
from ._opening import CONFIG_FILE, STORE_FILE
from ..store import Store

__all__ = ["migrate"]

CHUNK = 5_000


def _copy_edges(src: str | os.PathLike[str], t: Store) -> None:
    """Replace the copy's graph edges with the source's, page by page: SIMILAR_TO links were made as records
    arrived (against the memory of that moment), which a rebuild does not reproduce."""
    with Memory(src, read_only=True, progress=False) as source:
        s = source._state.live()
        with t.transaction("copy the graph"):
            t.graph.clear_edges()
            offset = 0
            while rows := s.graph.edges_page(offset, CHUNK):
                t.graph.put_edges(rows)
                offset += len(rows)


def migrate(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, store: str = "duckdb",
            schema: str = "", progress: bool | None = None) -> dict[str, JSON]:
    """Copy the memory at ``src`` to a new memory at ``dst`` whose store is ``store``.

    Parameters
    ----------
    src, dst : str or path-like
        Memory directories; ``dst`` must not hold a memory yet.
    store : str
        ``"duckdb"`` or a PostgreSQL URL for the copy (its password is used, never saved).
    schema : str
        The copy's PostgreSQL schema ("" : from ``dst``'s name).
    progress : bool, optional

    Returns
    -------
    dict
        ``records`` copied, ``src`` and ``dst`` stores (without passwords).
    """
    dst_path = Path(dst).expanduser()
    if (dst_path / "config.toml").exists() or (dst_path / "memory.duckdb").exists():
        raise InvalidInputError(f"{dst_path} already holds a memory; migrate into a new directory")
    with Memory(src, read_only=True, progress=progress) as source:
        config = source.config.replace(store=store, store_schema=schema)
        with Memory(dst_path, config, progress=progress) as target:
            if len(target):
                raise InvalidInputError(f"the store of {dst_path} already holds {len(target)} records; migrate into "
                                        "an empty one (another store_schema)")
            s, t = source._state.live(), target._state.live()  # the two stores: this module copies between them
            roles = list(source._state.views.roles)
            last, copied = 0, 0
            with target._state.bar(len(source), "migrate", "memories", progress) as shown:
                while rows := s.page(last, CHUNK):
                    ids = [int(r.id) for r in rows]
                    records = [NewRecord(kind=r.kind, text=r.text, metadata_json=r.metadata, session=r.session,
                                         importance=float(r.importance), parents=tuple(int(p) for p in r.parents or ()),
                                         created_at=r.created_at.replace(tzinfo=timezone.utc), key=r.key,
                                         metadata=json.loads(r.metadata)) for r in rows]
                    vectors = {role: s.vectors(role, ids)[1] for role in roles}
                    t.reserve_ids(ids[-1])
                    t.insert(records, vectors, ids)
                    used = s.get(ids)  # use counts and times: what the recency and use terms rank with
                    t.set_usage(ids, [used[i].use_count for i in ids], [used[i].last_used_at for i in ids])
                    last, copied = ids[-1], copied + len(ids)
                    shown.update(len(ids))
            t.set_meta("store_id", s.store_id)  # the copy's derived files may be the source's
            w = source._state.views.whitener
            if w is not None:  # the whitening the source searched with, shared (before close() fits one of its own)
                t.set_meta(SHARED_WHITENER, base64.b64encode(w.to_bytes()).decode())
                t.set_meta(SHARED_DIGEST, w.digest())
        for name in OWN_FILES - {STORE_FILE, STORE_FILE + ".wal", CONFIG_FILE}:  # made for the empty copy: gone
            target_file = dst_path / name
            if target_file.is_dir():
                shutil.rmtree(target_file)
            elif target_file.exists():
                target_file.unlink()
        ctx = source._state.ctx
        assert ctx is not None  # an open handle's parts context
        whitener = ctx.directory / WHITENER_FILE
        if whitener.is_file():
            shutil.copy2(whitener, dst_path / WHITENER_FILE)
        sentences = ctx.directory / SENTENCES_FILE  # made for the same store id and model: reconciled at open
        if sentences.is_file():
            shutil.copy2(sentences, dst_path / SENTENCES_FILE)
    with Memory(dst_path, store=store, progress=progress) as target:  # index and keywords are built as it opens
        target._maintenance.repair({"topic model", "knowledge graph"}, index_only=True)  # the rest from the copied records
        _copy_edges(src, target._state.live())
    return {"records": copied, "src": source.config.to_dict()["store"], "dst": config.to_dict()["store"]}
