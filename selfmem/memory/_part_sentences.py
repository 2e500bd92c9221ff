"""The sentence part: the general model's vectors of each memory's sentences (``embedding.sentences``).

Search reads them for its best hits only (:mod:`selfmem.retrieval._sentences`), so they are held in memory
(float16, about ``3.4 * dim * 2`` bytes a LoCoMo turn: 2.6 kB with all-MiniLM-L6-v2) and saved as
``sentences.npz`` whenever the vectors held have grown by a quarter, and at close. A writer embeds what it adds
and, on open and as it catches up, what is missing (another process's records, its own before a crash; all of
them when the file is damaged or made for another store or model). A read-only handle embeds nothing: it
uses what the writers saved. A store that held records before it kept sentence vectors (made by an older
version, or with ``embedding.sentences`` off) records that in its meta (:data:`SINCE_KEY`): those records are
not embedded at open, they rank as if their sentences matched as well as the average, until
``Memory.rebuild()`` embeds them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._files import NPZ_ERRORS, atomic_write, damaged
from ..retrieval._sentences import best_match, sentence_units
from ._parts import AddBatch, Part, PartContext, reconcile

__all__ = ["SentencePart", "SENTENCES_FILE"]

SENTENCES_FILE = "sentences.npz"
SINCE_KEY = "sentences.since"
"""Store meta: the last record id stored before the store kept sentence vectors (0: it always did). In the
store, so that every process of a shared store (and a new directory opened on it) agrees."""
SAVE_AFTER = 1000
SAVE_GROWTH = 1.25


class SentencePart(Part):
    """Sentence vectors of one memory, by record id (nothing held when ``embedding.sentences`` is off)."""

    name = "sentence vectors"
    files = (SENTENCES_FILE,)

    def __init__(self, ctx: PartContext) -> None:
        super().__init__(ctx)
        self.units: dict[int, np.ndarray] = {}
        self.since: int = 0
        """Records up to this id were stored before the memory kept sentence vectors (not embedded until
        ``rebuild()``)."""
        self._saved = 0  # vectors in the file as last saved or loaded

    @property
    def on(self) -> bool:
        return bool(self.ctx.config.embedding.sentences)

    @property
    def embeds(self) -> bool:
        """Whether this handle embeds sentences: a writer does; a reader uses what the writers saved (the
        newest records, which they have not saved yet, rank as if their sentences matched as the average)."""
        return self.on and self.ctx.writable

    def _model(self) -> str:
        return json.dumps(self.ctx.views.general.fingerprint(), sort_keys=True)

    # -- contract -------------------------------------------------------------------
    def open(self) -> None:
        if not self.on:
            return
        store = self.ctx.store
        store_ids = store.ids()
        since = store.get_meta(SINCE_KEY)
        if since is None:  # the store has not kept them before: the records it holds are left to rebuild()
            self.since = int(store_ids.max()) if len(store_ids) else 0
            if self.ctx.writable:
                store.set_meta(SINCE_KEY, str(self.since))
        else:
            self.since = int(since)
        if (self.ctx.directory / SENTENCES_FILE).is_file() and self._load() is None:
            self.units = {}  # damaged, another store's or another model's: derived, so embedded again below
        missing, extra = reconcile(np.fromiter(self.units, np.int64, len(self.units)), store_ids)
        for i in extra.tolist():
            self.units.pop(i, None)
        if self.embeds:  # added since the last save: by this process before a crash, or by others
            self._embed_stored(missing[missing > self.since])

    def on_add(self, batch: AddBatch) -> None:
        if self.embeds:
            self._embed(batch.ids.tolist(), batch.texts)

    def maintain(self) -> None:
        """Save once the vectors held have grown by a quarter (and 1,000) since the last save, so that readers
        and a writer that did not close find most of them (each save writes them all: geometric growth keeps
        the total written within 5x of the last size)."""
        if self.embeds and len(self.units) >= max(SAVE_AFTER, SAVE_GROWTH * self._saved):
            self.save()

    def lacking(self, ids: np.ndarray) -> np.ndarray:
        if not self.embeds:
            return ids[:0]
        return np.asarray([i for i in ids.tolist() if i not in self.units], dtype=np.int64)

    def on_delete(self, ids: Sequence[int] | np.ndarray) -> None:
        for i in np.asarray(ids, dtype=np.int64).tolist():
            self.units.pop(i, None)

    def rebuild(self) -> None:
        """Embed every record whose sentences are not held (those from before the store kept them too): the
        ones held are exact for the model in use (another model's were dropped at open)."""
        if not self.embeds:
            return
        self._embed_stored(np.setdiff1d(self.ctx.store.ids(), np.fromiter(self.units, np.int64, len(self.units))))
        self.since = 0
        self.ctx.store.set_meta(SINCE_KEY, "0")
        self.save()

    def save(self) -> None:
        if not self.embeds:
            return
        ids = np.fromiter(self.units, np.int64, len(self.units))
        counts = np.array([len(self.units[i]) for i in ids.tolist()], dtype=np.int64)
        dim = self.ctx.views.general.dim
        vecs = np.concatenate([self.units[i] for i in ids.tolist()]) if len(ids) else np.zeros((0, dim), np.float16)
        atomic_write(self.ctx.directory / SENTENCES_FILE, lambda fh: np.savez(
            fh, ids=ids, counts=counts, vectors=vecs, model=np.array(self._model()),
            owner=np.array(self.ctx.store.store_id)))
        self._saved = len(ids)

    def notes(self) -> list[str]:
        if self.on and self.since:
            return [f"records up to id {self.since} were stored before this memory kept sentence vectors: "
                    "Memory.rebuild() (memctl rebuild) embeds their sentences"]
        return []

    # -- reads ----------------------------------------------------------------------
    def best(self, ids: Sequence[int], query: np.ndarray) -> np.ndarray:
        """Best sentence cosine of each memory against the query's general vector (shape (dim,)); NaN for a
        memory whose sentences are not held. Shape (len(ids),)."""
        return best_match([self.units.get(i) for i in ids], query)

    # -- helpers --------------------------------------------------------------------
    def _embed_stored(self, ids: np.ndarray) -> None:
        """Embed the sentences of these stored records (read here)."""
        if len(ids):
            recs = self.ctx.store.get(ids.tolist())
            self._embed(list(recs), [r.text for r in recs.values()])

    def _embed(self, ids: list[int], texts: Sequence[str]) -> None:
        if not ids:
            return
        units = [sentence_units(t) for t in texts]
        flat = [u for us in units for u in us]
        vecs = self.ctx.views.general.embed(flat).astype(np.float16)
        start = 0
        for i, us in zip(ids, units):
            self.units[i] = vecs[start:start + len(us)]
            start += len(us)

    def _load(self) -> dict[int, np.ndarray] | None:
        path: Path = self.ctx.directory / SENTENCES_FILE
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, counts, vecs = z["ids"], z["counts"], z["vectors"]
                model, owner = str(z["model"]), str(z["owner"])
        except NPZ_ERRORS + (KeyError,) as exc:
            damaged(path, exc)
            return None
        if owner != self.ctx.store.store_id:
            damaged(path, ValueError("it was built for another memory's store"))
            return None
        if model != self._model() or len(ids) != len(counts) or int(counts.sum()) != len(vecs) \
                or vecs.ndim != 2 or vecs.shape[1] != self.ctx.views.general.dim:
            return None  # another model's (re-embedded since) or inconsistent: embedded again whole
        ends = np.cumsum(counts)
        self.units = {i: vecs[e - c:e] for i, c, e in zip(ids.tolist(), counts.tolist(), ends.tolist())}
        self._saved = len(ids)
        return self.units
