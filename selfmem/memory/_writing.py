"""Writing records: validate, embed, commit the store and the parts' writes in one transaction, tell each part.

:class:`Writer` serves ``Memory.add``, ``add_many`` and ``delete``; the server's group commit calls
:meth:`Writer.add_rows` with vectors it embedded outside the handle's lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from .._errors import InvalidInputError, RecordNotFoundError
from .._interrupt import interruptible
from .._progress import show_progress
from .._types import NewRecord
from . import _validate as v
from ._parts import AddBatch
from ._state import AUTO_PROGRESS, MemoryState

__all__ = ["Writer"]


class Writer:
    """Adds and deletes of one handle (the caller holds the handle's guard)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def add_many(self, texts: Sequence[str], kind: str | Sequence[str] = "output",
                 metadata: Sequence[Mapping[str, object] | None] | None = None, *,
                 session: str | None = None, importance: float | Sequence[float] = 1.0,
                 parents: Sequence[Sequence[int]] | None = None,
                 own_embedding: np.ndarray | Sequence[np.ndarray] | None = None,
                 progress: bool | None = None,
                 created_at: datetime | Sequence[datetime] | None = None,
                 keys: Sequence[str | None] | None = None) -> list[int]:
        """``Memory.add_many``: validate everything, then add the rows whose key is not stored yet."""
        state = self.state
        store = state.live()
        rows = v.check_batch(texts, kind, metadata, session if session is not None else state.session.get(),
                             importance, parents, kinds=state.config.kinds, max_chars=state.config.max_text_chars,
                             existing=store.existing, created_at=created_at, keys=keys)
        if not rows:
            return []
        own_given = None
        if own_embedding is not None:
            if state.views.own is None:
                raise InvalidInputError("own_embedding given but this memory has no own model (config.embedding.own)")
            own_given = v.check_vectors(own_embedding, len(rows), state.views.own.dim, "own_embedding")
        v.check_flag(progress, "progress", optional=True)
        done = store.ids_of_keys([r.key for r in rows if r.key is not None])
        if not done:
            return self.add_rows(rows, own_given, progress)
        # a retry: rows whose key is stored keep their first id; only the others are added
        fresh = [i for i, r in enumerate(rows) if r.key not in done]
        new_ids = iter(self.add_rows([rows[i] for i in fresh], None if own_given is None else own_given[fresh],
                                     progress) if fresh else [])
        return [done[r.key] if r.key in done else next(new_ids) for r in rows]

    def add_rows(self, rows: Sequence[NewRecord], own_given: np.ndarray | None, progress: bool | None,
                 raw: dict[str, np.ndarray] | None = None) -> list[int]:
        """Embed, write (one transaction) and index validated rows; the new ids, in order.

        ``raw`` (by role, each (len(rows), dim)) are the rows' vectors from ``views.embed_raw`` when the
        caller embedded them already (the server does, outside the handle's lock)."""
        state = self.state
        store = state.live()
        if raw is None:
            show = show_progress(progress if progress is not None else state.progress, len(rows), AUTO_PROGRESS)
            with interruptible():  # nothing is written yet: Ctrl-C may stop the embedding at once
                raw = state.views.embed_raw([r.text for r in rows], own_given, progress=show)
        ids = np.asarray(store.allocate_ids(len(rows)), dtype=np.int64)
        batch = AddBatch(ids, tuple(r.text for r in rows), raw, state.views.index_vectors(raw), state.space(),
                         tuple(rows))
        writes = [w for w in (part.write(batch) for part in state.parts) if w is not None]
        store.insert(rows, raw, ids.tolist(), writes)
        for part in state.parts:
            part.on_add(batch)
        state.maintain()
        out: list[int] = ids.tolist()
        return out

    def delete(self, ids: int | Sequence[int]) -> None:
        """``Memory.delete``: all or nothing (RecordNotFoundError names the unknown ids)."""
        state = self.state
        store = state.live()
        wanted = v.check_ids(ids)
        missing = set(wanted) - store.existing(wanted)
        if missing:
            raise RecordNotFoundError(f"no records with ids {sorted(missing)}; nothing was deleted")
        store.delete(wanted, [w for w in (part.write_delete(wanted) for part in state.parts) if w is not None])
        for part in state.parts:
            part.on_delete(wanted)
        state.maintain()
