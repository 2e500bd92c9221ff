"""Moving records in and out: ``Memory.export`` (JSONL / Parquet) and ``Memory.import_records``."""

from __future__ import annotations

import os

from . import _validate as v
from ._export import export_records
from ._importing import read_records, session_groups
from ._state import MemoryState
from ._writing import Writer

__all__ = ["Transfer"]


class Transfer:
    """Export and import of one handle (the caller holds the handle's guard)."""

    def __init__(self, state: MemoryState, writer: Writer) -> None:
        self.state, self.writer = state, writer

    def export(self, out: str | os.PathLike[str], format: str = "jsonl", *, progress: bool | None = None) -> int:
        """``Memory.export``: every record to one file, replaced atomically; the count written."""
        v.check_flag(progress, "progress", optional=True)
        s = self.state
        store = s.live()
        roles = {role: emb.dim for role, emb in s.views.roles.items()}
        with s.bar(store.count(), f"export {format}", "memories", progress) as shown:
            return export_records(store, out, format, roles, shown.update, protect=(s.directory,))

    def import_records(self, file: str | os.PathLike[str], *, kind: str = "note", session: str | None = None,
                       progress: bool | None = None) -> list[int]:
        """``Memory.import_records``: every line validated first, then one transaction per session run."""
        if session is not None:
            v.check_session(session)
        rows = read_records(file, kind)
        new_id: dict[int, int] = {}
        out: list[int] = []
        for group_session, group in session_groups(rows, session):
            self.state.poll()  # as each add_many call would: finished refits swapped in, due ones started
            ids = self.writer.add_many(
                [r["text"] for r in group], kind=[r["kind"] for r in group],
                metadata=[r["metadata"] for r in group], session=group_session,
                importance=[r["importance"] for r in group],
                parents=[[new_id[p] for p in r["parents"] if p in new_id] for r in group],
                created_at=None if any(r["created_at"] is None for r in group) else [r["created_at"] for r in group],
                keys=[r["key"] for r in group], progress=progress)
            for r, i in zip(group, ids):
                if r["id"] is not None:
                    new_id[r["id"]] = i
            out += ids
        return out
