"""The vector part: the own-view whitening and the FAISS index (with its re-rank file), kept together.

They are one part because index vectors depend on the whitening: a new whitening means a new index,
and the two are swapped in together. Refit rules (checked by :meth:`VectorPart.maintain`):

- the whitening is fitted when the memory first reaches ``embedding.own_min_fit`` records, and refitted
  each time it has grown ``embedding.own_refit_growth`` times since (until it was fitted on
  ``embedding.own_refit_until`` records); these fits use the first records by id, as many as the last
  threshold reached (``own_min_fit`` times a power of ``own_refit_growth``), on every store, so the same
  records added in the same order give the same whitening, and the same searches, on DuckDB and on
  PostgreSQL whatever the batches were (``rebuild()`` fits on every record of a DuckDB memory);
- the index is rebuilt when its kind no longer fits the size (flat below ``index.ivf_threshold``,
  IVF-PQ above) or when an IVF-PQ index has grown 4x since it was trained.

Both refits run as one background job on a read snapshot; new records keep going into the index
in use, and the swap adds whatever the snapshot missed.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np


from ..retrieval._index import INDEX_FILE, INDEX_META, FlatIndex, IVFPQIndex, VectorIndex, build_index, load_index, save_index, wanted_kind
from .._errors import CorruptMemoryError
from .._types import JSON
from ..retrieval._post import Whitener
from ..retrieval._ivfpq import RERANK_IDS, RERANK_VECS
from ..retrieval._views import WHITENER_FILE, Views
from ._parts import AddBatch, Part, PartContext, index_vectors, reconcile
from ..store import Store

__all__ = ["VectorPart", "STAGING_DIR"]

STAGING_DIR = ".refit-index"
SHARED_WHITENER = "whitener.npz.b64"  # a shared store keeps the one whitening of every process in its meta
SHARED_DIGEST = "whitener.digest"


class VectorPart(Part):
    """Whitening + FAISS index of one memory (``self.index`` is the index in use)."""

    name = "vector index"
    files = (INDEX_FILE, INDEX_META, WHITENER_FILE, RERANK_VECS, RERANK_IDS, STAGING_DIR)

    def __init__(self, ctx: PartContext) -> None:
        super().__init__(ctx)
        self.index: VectorIndex = FlatIndex(1)

    # -- contract -------------------------------------------------------------------
    def open(self) -> None:
        ctx = self.ctx
        views = ctx.views
        views.load_whitener(ctx.directory, ctx.store.store_id)
        if views.whitener is None and self._whitening_due():  # built from the store alone: as rebuild() does
            self._set(self._fit(ctx.store, views, every_record=True), staging=None)
            return
        index = load_index(ctx.directory, self._signature(), read_only=not ctx.writable)
        if index is not None:
            index.built_for = self._signature()
        if index is None or index.kind != wanted_kind(ctx.config.index, ctx.store.count()):
            self._set(self._fit(ctx.store, views, whitening=False), staging=None)
            return
        if isinstance(index, IVFPQIndex):
            index.nprobe = ctx.config.index.nprobe or index.nprobe
            index.rerank = ctx.config.index.rerank or index.rerank
        self.index = index
        self._catch_up()

    def on_add(self, batch: AddBatch) -> None:
        self.index.add(batch.ids, batch.vectors)

    def lacking(self, ids: np.ndarray) -> np.ndarray:
        return np.setdiff1d(ids, self.index.ids())

    def on_delete(self, ids: Sequence[int] | np.ndarray) -> None:
        self.index.remove(ids)

    def maintain(self) -> None:
        if not self.ctx.writable or self.refit.running:
            return
        whiten = (self.ctx.views.whitener is None and self._whitening_due()) or self._whitening_grown() \
            or self._shared_whitener_changed()
        if whiten or self._index_stale():
            views = self.ctx.views

            def job() -> tuple[Views, VectorIndex]:
                with self.reading() as store:
                    return self._fit(store, views, whitening=whiten, staging=True)

            self.refit.start(job, lambda result: self._set(result, staging=self.ctx.directory / STAGING_DIR))

    def rebuild(self) -> None:
        self.refit.wait()
        self._set(self._fit(self.ctx.store, self.ctx.views, every_record=True), staging=None)

    def rebuild_index(self) -> None:
        """Rebuild the index (and its re-rank file) under the whitening in use (``memctl doctor --repair``)."""
        self.refit.wait()
        self._set(self._fit(self.ctx.store, self.ctx.views, whitening=False), staging=None)

    def save(self) -> None:
        self.ctx.views.save_whitener(self.ctx.directory, self.ctx.store.store_id)
        # saved under what *this index* was built for, never the views' signature of the moment: a swap
        # interrupted between the new whitening and the new index must not label the old index as new
        save_index(self.index, self.ctx.directory, getattr(self.index, "built_for", {"unknown": True}))

    def _signature(self, views: Views | None = None) -> dict[str, JSON]:
        """What a saved index was built for: the index-vector space and this store (not a copied one)."""
        return {**(views or self.ctx.views).signature(), "store": self.ctx.store.store_id}

    def notes(self) -> list[str]:
        n = self.ctx.store.count()
        if self.refit.running and self.ctx.views.whitener is None and self._whitening_due():
            return [f"own view whitening is being fitted in the background ({n} records): searching the general "
                    "view until it is swapped in"]
        return self.ctx.views.notes(n)

    # -- refits ---------------------------------------------------------------------
    def _whitening_due(self) -> bool:
        views = self.ctx.views
        return views.own is not None and views.mode != "general" and self.ctx.store.count() >= views.min_fit

    def _whitening_grown(self) -> bool:
        """The memory has grown ``own_refit_growth`` times since the whitening was fitted (below the cap)."""
        cfg, w = self.ctx.config.embedding, self.ctx.views.whitener
        if w is None or cfg.own_refit_growth == 0 or w.n_samples_ >= cfg.own_refit_until:
            return False
        return self.ctx.store.count() >= cfg.own_refit_growth * w.n_samples_

    def _stored_whitener(self, store: Store, at_least: int) -> Whitener | None:
        """The whitening another process shared through the store, when fitted on ``at_least`` records."""
        raw = store.get_meta(SHARED_WHITENER)
        if not raw:
            return None
        try:
            w = Whitener.from_bytes(base64.b64decode(raw))
        except (CorruptMemoryError, ValueError):
            return None
        return w if w.n_samples_ >= at_least else None

    def _shared_whitener_changed(self) -> bool:
        """Another process shared a whitening other than this one's (a shared store only)."""
        store, w = self.ctx.store, self.ctx.views.whitener
        if not store.shared or self.ctx.views.own is None or self.ctx.views.mode == "general":
            return False
        digest = store.get_meta(SHARED_DIGEST)
        return digest is not None and (w is None or digest != w.digest())

    def _shared_sample(self, n: int) -> int:
        """The whitening is fitted on the first records by id, as many as the last refit threshold reached
        (``own_min_fit`` times a power of ``own_refit_growth``, up to the first at or past ``own_refit_until``): processes that
        hold the same records fit the same whitening, so their index vectors, and their search results, agree;
        and so do a DuckDB and a PostgreSQL memory filled alike (a fit on every record present when the fit
        ran would depend on the batch sizes: a LoCoMo conversation filled session by session was whitened
        on 216 records on DuckDB and on 400 on PostgreSQL, and ranked differently)."""
        cfg = self.ctx.config.embedding
        size = self.ctx.views.min_fit
        # up to the first threshold at or past own_refit_until: where _whitening_grown stops (a cap below it
        # made a memory past 2x the last threshold refit at every call, never reaching the cap)
        while cfg.own_refit_growth > 1 and size < cfg.own_refit_until and size * cfg.own_refit_growth <= n:
            size = int(size * cfg.own_refit_growth)
        return min(size, n)

    def _index_stale(self) -> bool:
        n = len(self.index)
        if self.index.kind != wanted_kind(self.ctx.config.index, n):
            return True
        return isinstance(self.index, IVFPQIndex) and n >= 4 * self.index.n_trained

    def _fit(self, store: Store, views: Views, *, whitening: bool = True, staging: bool = False,
             every_record: bool = False) -> tuple[Views, VectorIndex]:
        """New views (refitted whitening when ``whitening``) and an index of every stored record under them.

        The whitening is fitted on the first :meth:`_shared_sample` records by id; with ``every_record``
        (``rebuild()``) on all of them, except on a shared store (one whitening for every process).
        """
        if whitening:
            whitener: Whitener | None = None
            if views.own is not None and views.mode != "general":
                _, own = store.vectors("own")
                if store.shared:  # one whitening for every process: the one in the store when it is recent enough
                    whitener = self._stored_whitener(store, self._shared_sample(len(own)))
                    if whitener is None:
                        whitener = views.fit_whitener(own[:self._shared_sample(len(own))])
                else:
                    whitener = views.fit_whitener(own if every_record else own[:self._shared_sample(len(own))])
            views = views.with_whitener(whitener)
        directory = self.ctx.build_dir()
        if staging:
            directory = directory / STAGING_DIR
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
        ids, vecs = self.ctx.index_vectors(store, views)
        index = build_index(self.ctx.config.index, views.dim, directory, ids, vecs)
        index.built_for = self._signature(views)
        return views, index

    def _set(self, result: tuple[Views, VectorIndex], *, staging: Path | None) -> None:
        """Swap in new views and index (writer's thread): move staged files, catch up, save."""
        views, index = result
        ctx = self.ctx
        if staging is not None:
            index.relocate(ctx.directory)
            shutil.rmtree(staging, ignore_errors=True)
        ctx.views.whitener = views.whitener
        self.index = index
        self._catch_up()
        w = views.whitener
        if ctx.store.shared and ctx.writable and w is not None and ctx.store.get_meta(SHARED_DIGEST) != w.digest():
            with ctx.store.transaction("share the whitening"):  # the others adopt it at their next call
                # the first whitening shared at a size wins: two processes that fitted at one threshold while
                # writers were still committing (other records among the first by id) must not take turns
                # overwriting each other; the later one adopts the stored one at its next maintain()
                if self._stored_whitener(ctx.store, w.n_samples_) is None:
                    ctx.store.set_meta(SHARED_WHITENER, base64.b64encode(w.to_bytes()).decode())
                    ctx.store.set_meta(SHARED_DIGEST, w.digest())
        self.save_after_swap()

    def _catch_up(self) -> None:
        """Add the stored records the index lacks, drop the ones the store no longer has."""
        missing, extra = reconcile(self.index.ids(), self.ctx.store.ids())
        if len(extra):
            self.index.remove(extra)
        if len(missing):
            ids, vecs = index_vectors(self.ctx.store, self.ctx.views, missing)
            self.index.add(ids, vecs)
