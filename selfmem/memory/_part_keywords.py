"""The keyword part: the BM25 index over every record's text, updated on every add and delete.

Nothing to refit (BM25 statistics are exact at all times); saved as ``keywords.npz`` at close and
reconciled with the store on open like every other part.
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np

from ..retrieval._keywords import KEYWORDS_FILE, KeywordIndex
from ._parts import AddBatch, Part, PartContext, reconcile

__all__ = ["KeywordPart"]


class KeywordPart(Part):
    """BM25 keyword index of one memory (``self.index``)."""

    name = "keyword index"
    files = (KEYWORDS_FILE,)

    def __init__(self, ctx: PartContext) -> None:
        super().__init__(ctx)
        self.index = KeywordIndex()

    def open(self) -> None:
        loaded = KeywordIndex.load(self.ctx.directory, self.ctx.store.store_id)
        if loaded is None:
            self.rebuild()
            return
        self.index = loaded
        missing, extra = reconcile(loaded.ids(), self.ctx.store.ids())
        loaded.remove(extra)
        if len(missing):
            recs = self.ctx.store.get(missing.tolist())
            loaded.add(list(recs), [r.text for r in recs.values()])

    def on_add(self, batch: AddBatch) -> None:
        self.index.add(batch.ids.tolist(), batch.texts)

    def lacking(self, ids: np.ndarray) -> np.ndarray:
        return np.setdiff1d(ids, self.index.ids())

    def on_delete(self, ids: Sequence[int] | np.ndarray) -> None:
        self.index.remove(ids)

    def rebuild(self) -> None:
        self.index = KeywordIndex()
        ids, texts = self.ctx.store.texts()
        self.index.add(ids.tolist(), texts)
        if self.ctx.writable:
            self.save()

    def save(self) -> None:
        self.index.save(self.ctx.directory, self.ctx.store.store_id)
