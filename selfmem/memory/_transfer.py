"""Moving records in and out: ``export`` and ``import_records`` (a method group of ``Memory``)."""

from __future__ import annotations

import os
from . import _validate as v
from ._core import MemoryCore, guarded
from ._export import export_records
from ._importing import read_records, session_groups

__all__ = ["TransferMethods"]


class TransferMethods(MemoryCore):
    """Export to JSONL / Parquet and import (mixed into :class:`selfmem.Memory`)."""

    @guarded()
    def export(self, out: str | os.PathLike[str], format: str = "jsonl", *, progress: bool | None = None) -> int:
        """Write every record to a file; return how many were written (``memctl export PATH --format``).

        Parameters
        ----------
        out : str or path-like
            The file to write (replaced atomically); a path inside a memory directory is refused.
        format : {"jsonl", "parquet"}
            JSON Lines (one record per line: id, text, kind, metadata, session, created_at, importance,
            parents, key, topic_ids, topic_path; :meth:`import_records` reads it back), or Parquet with
            the same columns plus each embedder's raw vectors as a ``FLOAT[dim]`` column named after the role.
        progress : bool, optional
            Show a bar (default: on a terminal, for 512 records or more).
        """
        v.check_flag(progress, "progress", optional=True)
        store = self._live()
        roles = {role: emb.dim for role, emb in self._views.roles.items()}
        with self._bar(store.count(), f"export {format}", "memories", progress) as shown:
            return export_records(store, out, format, roles, shown.update, protect=(self.directory,))

    @guarded(write=True, poll=False)
    def import_records(self, file: str | os.PathLike[str], *, kind: str = "note", session: str | None = None,
                       progress: bool | None = None) -> list[int]:
        """Add the records of a ``.jsonl`` file (as :meth:`export` writes it) or a text file (one per line).

        Every line is validated before anything is written. Records keep their session, time,
        importance, metadata and key; ``parents`` are mapped from the file's ``id`` values to the new
        ids (parents not in the file are dropped). Each run of lines with one session is added in one
        transaction; lines with a ``key`` are skipped when already stored, so a re-run after a failure
        completes an import without duplicating it.

        Parameters
        ----------
        file : str or path-like
        kind : str
            Kind of lines that name none.
        session : str, optional
            Put every record in this session (overrides the file's sessions).
        progress : bool, optional

        Returns
        -------
        list of int
            The new ids, in file order.
        """
        if session is not None:
            v.check_session(session)
        rows = read_records(file, kind)
        new_id: dict[int, int] = {}
        out: list[int] = []
        for group_session, group in session_groups(rows, session):
            ids = self.add_many(
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
