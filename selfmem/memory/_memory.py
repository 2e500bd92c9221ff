"""The Memory facade: add, get, delete, search, sessions, rebuild."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import os
import shutil
import threading
from datetime import datetime
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import (
    CorruptMemoryError,
    ReadOnlyError,
    EmbedderMismatchError,
    InvalidInputError,
    MemoryClosedError,
    RecordNotFoundError,
)
from ..retrieval._embedders import Embedder, batches
from ..retrieval._index import (
    FlatIndex,
    IVFPQIndex,
    build_index,
    load_index,
    reconcile,
    save_index,
    wanted_kind,
)
from ..clustering._topics import TOPICS_FILE, TopicState
from ..retrieval._enrich import Enriched, build_prompt
from ..retrieval._ivfpq import RERANK_IDS, RERANK_VECS
from ..retrieval._keywords import KEYWORDS_FILE, KeywordIndex
from ..retrieval._search import rank
from ..retrieval._models import make_embedder, make_own_embedder
from ..retrieval._views import WHITENER_FILE, Views
from . import _validate as v
from ._config import MemoryConfig
from ._records import Hit, Record, Stats, Topic
from ._retrieve import gather
from ._store import NewRecord, Store, snapshot

__all__ = ["Memory"]

STORE_FILE = "memory.duckdb"
CONFIG_FILE = "config.toml"
_OWN_FILES = {STORE_FILE, STORE_FILE + ".wal", CONFIG_FILE, "index.faiss", "index.json", WHITENER_FILE,
              RERANK_VECS, RERANK_IDS, KEYWORDS_FILE, TOPICS_FILE}
_AUTO_PROGRESS = 512


_BLAS: Any = None


def _single_blas_thread() -> Any:
    """Context limiting BLAS (OpenBLAS/MKL) to one thread for the small matrix products of a search.

    Idle BLAS threads spin after each call and starve the embedding models' threads: on the 2-core
    test machine this alone moved search p50 at 100k memories from 45 to 26 ms.
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


class Memory:
    """A self-organising memory stored in one directory.

    Parameters
    ----------
    path : str or path-like
        The memory directory; created if missing. It holds ``memory.duckdb`` (the
        durable store), ``config.toml`` and derived files (the FAISS index).
    config : MemoryConfig, optional
        Configuration. When omitted, the directory's ``config.toml`` is read (or the
        defaults are used for a new memory); when given, it is written there.
    general : Embedder, optional
        Use this embedder object instead of the one named in ``config.embedding.general``.
    own : Embedder, optional
        Use this object as the own-model embedder instead of ``config.embedding.own``.
    progress : bool, optional
        Force progress bars on or off; by default they show for long work.
    create : bool
        When False, raise :class:`InvalidInputError` instead of creating a new memory.
    reembed : bool
        When the stored vectors were made by other models than the configured ones,
        re-embed every record (with a progress bar) instead of raising
        :class:`EmbedderMismatchError`.
    read_only : bool
        Open a consistent snapshot (a private copy of the directory) without taking the
        writer's lock, e.g. to inspect a memory while a solver writes to it. Writes raise
        :class:`ReadOnlyError`.

    Examples
    --------
    >>> with Memory("runs/mem") as mem:                          # doctest: +SKIP
    ...     with mem.session("exp-1"):
    ...         rid = mem.add("The grid is rotated 90 degrees.", kind="output")
    ...         hits = mem.search("rotation of the grid", k=5)
    """

    def __init__(self, path: str | os.PathLike[str], config: MemoryConfig | None = None, *,
                 general: Embedder | None = None, own: Embedder | None = None, progress: bool | None = None,
                 create: bool = True, reembed: bool = False, read_only: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
            raise InvalidInputError(f"path must be a directory path, got {path!r}")
        if config is not None and not isinstance(config, MemoryConfig):
            raise InvalidInputError(f"config must be a MemoryConfig, got {type(config).__name__}")
        for name, flag in (("create", create), ("reembed", reembed), ("read_only", read_only)):
            if not isinstance(flag, bool):
                raise InvalidInputError(f"{name} must be True or False, got {flag!r}")
        if progress is not None and not isinstance(progress, bool):
            raise InvalidInputError(f"progress must be True, False or None, got {progress!r}")
        for name, obj in (("general", general), ("own", own)):
            if obj is not None and not isinstance(obj, Embedder):
                raise InvalidInputError(f"{name} must implement the Embedder protocol (dim, fingerprint(), embed())")
        self.path = Path(path).expanduser()
        if self.path.exists() and not self.path.is_dir():
            raise InvalidInputError(f"{self.path} is a file; a memory is a directory")
        self._check_foreign(self.path)
        self.read_only = bool(read_only)
        if (not create or read_only) and not (self.path / STORE_FILE).is_file():
            raise InvalidInputError(f"no memory at {self.path} (no {STORE_FILE}); check the path")
        cfg_path = self.path / CONFIG_FILE
        if config is None:
            config = MemoryConfig.read(cfg_path) if cfg_path.is_file() else MemoryConfig()
        self.config = config
        self._progress = progress
        self._lock = threading.RLock()
        self._session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"selfmem-session-{id(self)}", default=None)
        ec = config.embedding
        if own is not None and ec.own is None:
            raise InvalidInputError("an own embedder object needs config.embedding.own set (any label, e.g. 'custom')")
        self._views = Views(
            general if general is not None else make_embedder(ec.general, ec),
            own if own is not None else make_own_embedder(ec.own, ec),
            mode=ec.mode, alpha=ec.alpha, own_dim=ec.own_dim, shrinkage=ec.own_shrinkage, min_fit=ec.own_min_fit)
        self._topics = TopicState(self.config.topics, self.path)
        if read_only:
            self._dir, self._store = snapshot(self.path, STORE_FILE, _OWN_FILES)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._dir, self._store = self.path, Store(self.path / STORE_FILE)
        try:
            stale = self._check_fingerprints(allow=reembed and not read_only)
            if not read_only:
                config.write(cfg_path)
            if stale:
                self._reembed(stale)
            self._views.load_whitener(self._dir)
            if self._views.whitener is None and self._views.own is not None:
                self._fit_own()
            self._index = self._open_index()
            self._keywords = self._open_keywords()
            self._topics = self._open_topics()
        except BaseException:
            self._close_store()
            raise

    # -- opening ----------------------------------------------------------------
    @staticmethod
    def _check_foreign(path: Path) -> None:
        if not path.is_dir() or (path / STORE_FILE).exists():
            return
        foreign = sorted(p.name for p in path.iterdir() if p.name not in _OWN_FILES and not p.name.endswith(".tmp"))
        if foreign:
            raise CorruptMemoryError(
                f"{path} is not empty and holds no selfmem store (found {foreign[:5]}); "
                "pass a new or empty directory"
            )

    def _check_fingerprints(self, *, allow: bool) -> list[str]:
        """Record the embedders' fingerprints; return the roles whose stored vectors are stale.

        Raises EmbedderMismatchError for stale roles unless ``allow``.
        """
        store = self._live()
        stored = {role: json.loads(fp) for role, fp in store.meta_items("embedder.").items()}
        has_records = store.count() > 0
        stale = []
        for role, emb in self._views.roles.items():
            fp = emb.fingerprint()
            old = stored.get(role)
            if has_records and old != fp and (old is not None or role == "own"):
                if not allow:
                    raise EmbedderMismatchError(
                        f"the memory's {role} vectors were made by {old}, but the configured {role} embedder is "
                        f"{fp}; configure the original model, or re-embed with Memory(path, config, reembed=True) "
                        "(memctl rebuild --reembed)"
                    )
                stale.append(role)
            elif old != fp and not self.read_only:
                store.set_meta(f"embedder.{role}", json.dumps(fp, sort_keys=True))
        return stale

    def _open_index(self) -> FlatIndex | IVFPQIndex:
        """Load the saved index and reconcile it with the store (missing ids added, deleted removed)."""
        store = self._live()
        index = load_index(self._dir, self._views.signature())
        if index is None or index.kind != wanted_kind(self.config.index, store.count()):
            return self._build_index()
        if isinstance(index, IVFPQIndex):
            index.nprobe = self.config.index.nprobe or index.nprobe
            index.rerank = self.config.index.rerank or index.rerank
        missing, extra = reconcile(index, store.ids())
        if len(extra):
            index.remove(extra)
        if len(missing):
            ids, vecs = self._index_vectors(missing)
            index.add(ids, vecs)
        return index

    def _open_keywords(self) -> KeywordIndex:
        """Load the BM25 index and reconcile it with the store (or build it from the texts)."""
        store = self._live()
        kw = KeywordIndex.load(self._dir)
        store_ids = store.ids()
        if kw is None:
            kw = KeywordIndex()
            ids, texts = store.texts()
            kw.add(ids, texts)
            kw.save(self._dir)
            return kw
        held = kw.ids()
        kw.remove(np.setdiff1d(held, store_ids))
        missing = np.setdiff1d(store_ids, held)
        if len(missing):
            recs = store.get(missing.tolist())
            kw.add(list(recs), [r.text for r in recs.values()])
        return kw

    def _index_stale(self) -> bool:
        """True when the index should be rebuilt: wrong kind for the size, or grown 4x since training."""
        n = len(self._index)
        if self._index.kind != wanted_kind(self.config.index, n):
            return True
        return isinstance(self._index, IVFPQIndex) and n >= 4 * self._index.n_trained

    def _raw(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Stored raw vectors of every view, aligned by id: ids (n,), {role: (n, dim_role)}."""
        store = self._live()
        out: dict[str, np.ndarray] = {}
        ref_ids = None
        for role, emb in self._views.roles.items():
            rids, vecs = store.vectors(role, ids)
            if ref_ids is not None and not np.array_equal(rids, ref_ids):
                raise CorruptMemoryError(
                    f"records lack {role} vectors; run Memory(path, reembed=True) or memctl rebuild --reembed")
            ref_ids = rids
            out[role] = vecs if len(rids) else np.zeros((0, emb.dim), np.float32)
        return ref_ids, out

    def _index_vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Index vectors from the store's raw vectors, shapes (n,) and (n, dim)."""
        rids, raw = self._raw(ids)
        if len(rids) == 0:
            return rids, np.zeros((0, self._views.dim), dtype=np.float32)
        return rids, self._views.index_vectors(raw)

    def _build_index(self) -> FlatIndex | IVFPQIndex:
        ids, vecs = self._index_vectors()
        index = build_index(self.config.index, self._views.dim, self._dir, ids, vecs)
        save_index(index, self._dir, self._views.signature())
        return index

    def _fit_own(self) -> None:
        """Fit the own-view whitening on the stored own vectors (or drop it below ``own_min_fit``)."""
        if self._views.own is None or self._live().count() < self._views.min_fit:
            self._views.fit_whitener(np.zeros((0, 1)), self._dir)
        else:
            _, own = self._live().vectors("own")
            self._views.fit_whitener(own, self._dir)

    def _reembed(self, roles: Sequence[str]) -> None:
        """Re-run the embedders of ``roles`` over every record's text and replace the stored vectors."""
        store = self._live()
        ids, texts = store.texts()
        show = self._progress is not False
        for role in roles:
            emb = self._views.roles[role]
            parts = [emb.embed(texts[s]) for s in batches(len(texts), 256, progress=show, desc=f"re-embed {role}")]
            arr = np.concatenate(parts) if parts else np.zeros((0, emb.dim), np.float32)
            store.replace_vectors(role, ids, v.check_vectors(arr, len(ids), emb.dim, f"{role} embedder output")
                                  if len(ids) else arr)
            store.set_meta(f"embedder.{role}", json.dumps(emb.fingerprint(), sort_keys=True))

    # -- state ------------------------------------------------------------------
    def _live(self) -> Store:
        if self._store is None:
            raise MemoryClosedError("this Memory is closed; open it again with Memory(path)")
        return self._store

    def _show_progress(self, n: int) -> bool:
        return self._progress if self._progress is not None else n >= _AUTO_PROGRESS

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._store is None

    def __len__(self) -> int:
        with self._lock:
            return self._live().count()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self)} records"
        return f"Memory({str(self.path)!r}, {state})"

    # -- sessions ---------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, name: str) -> Iterator[str]:
        """Context manager: records added inside carry the session ``name``.

        Sessions nest (the innermost wins) and are per thread / async task.
        """
        v.check_session(name)
        self._live()
        token = self._session.set(name)
        try:
            yield name
        finally:
            self._session.reset(token)

    @property
    def current_session(self) -> str | None:
        """The session that ``add`` would use now (None outside ``session()``)."""
        return self._session.get()

    # -- writes -----------------------------------------------------------------
    def add(self, text: str, kind: str = "output", metadata: Mapping[str, Any] | None = None, *,
            session: str | None = None, importance: float = 1.0, parents: Sequence[int] = (),
            own_embedding: np.ndarray | None = None) -> int:
        """Store one memory and index it.

        Parameters
        ----------
        text : str
            The memory (non-empty).
        kind : str
            One of ``config.kinds``.
        metadata : dict, optional
            JSON-serialisable metadata.
        session : str, optional
            Overrides the session of the enclosing ``session()`` block.
        importance : float
            A finite weight >= 0.
        parents : sequence of int
            Ids of existing records this one derives from.
        own_embedding : array, shape (own_dim,), optional
            Hidden states the solver already computed for ``text`` with its own model
            (mean-pooled layer ``config.embedding.own_layer``); skips running the own model.

        Returns
        -------
        int
            The new record's id.
        """
        own = None if own_embedding is None else [own_embedding]
        return self.add_many([text], kind=kind, metadata=[metadata], session=session,
                             importance=importance, parents=[parents], own_embedding=own)[0]

    def add_many(self, texts: Sequence[str], kind: str | Sequence[str] = "output",
                 metadata: Sequence[Mapping[str, Any] | None] | None = None, *,
                 session: str | None = None, importance: float | Sequence[float] = 1.0,
                 parents: Sequence[Sequence[int]] | None = None,
                 own_embedding: np.ndarray | Sequence[np.ndarray] | None = None,
                 progress: bool | None = None) -> list[int]:
        """Store many memories with batched embedding, in one transaction.

        Parameters
        ----------
        texts : sequence of str, length n
        kind : str or sequence of str (length n)
        metadata : sequence of dict or None (length n), optional
        session : str, optional
        importance : float or sequence of float (length n)
        parents : sequence of sequences of int (length n), optional
        own_embedding : array, shape (n, own_dim), optional
            Own-model hidden states the solver already computed, one row per text.
        progress : bool, optional
            Show a progress bar (default: for 512 texts or more).

        Returns
        -------
        list of int
            The new ids, in the order of ``texts``. Nothing is written if any input is invalid.
        """
        with self._lock:
            store = self._writable()
            rows = self._validate_batch(texts, kind, metadata, session, importance, parents)
            if not rows:
                return []
            own_given = self._check_own_embedding(own_embedding, len(rows))
            show = progress if progress is not None else self._show_progress(len(rows))
            raw = self._views.embed_raw([r.text for r in rows], own_given, progress=show)
            vecs = self._views.index_vectors(raw)
            memberships, new_topics = None, []
            if self._topics.fitted and self._topics.signature == self._topic_signature():
                memberships, new_topics = self._topics.assign(vecs)
            ids = store.insert(rows, raw, memberships, new_topics)
            self._keywords.add(ids, [r.text for r in rows])
            if self._views.own is not None and self._views.whitener is None and store.count() >= self._views.min_fit:
                self._fit_own()  # the index-vector space changed: index and topics are rebuilt
                self._index = self._build_index()
                self._fit_topics(progress=False)
                return ids
            self._index.add(np.asarray(ids, dtype=np.int64), vecs)
            if self._index_stale():
                self._index = self._build_index()
            n = store.count()
            if not self._topics.fitted and n >= self.config.topics.min_records:
                self._fit_topics(progress=False)
            elif self.config.topics.auto_rebuild and self._topics.rebuild_reason(n):
                self._fit_topics(progress=False)
            return ids

    # -- topics -----------------------------------------------------------------
    def _topic_signature(self) -> str:
        return json.dumps(self._views.signature(), sort_keys=True)

    def _open_topics(self) -> TopicState:
        """Load the topic model; refit it if it is missing or stale and the memory is big enough."""
        state = TopicState(self.config.topics, self._dir)
        store = self._live()
        leaves = sum(1 for t in store.topics() if t.level == 0)
        if not state.load(self._topic_signature(), leaves) and store.count() >= self.config.topics.min_records \
                and not self.read_only:
            self._topics = state
            self._fit_topics(progress=False)
        return state

    def _fit_topics(self, *, progress: bool) -> None:
        """Refit reducer, Dirichlet-process topics, tree and labels on every memory; swap them in."""
        store = self._live()
        if store.count() < self.config.topics.min_records:
            return
        from tqdm.auto import tqdm

        with tqdm(total=3, desc="topics", unit="step", disable=not progress) as bar:
            ids, vecs = self._index_vectors()
            _, texts = store.texts()
            bar.update(1)
            rows, tids, probs = self._topics.fit(ids, vecs, texts, self._topic_signature())
            bar.update(1)
            store.replace_topics(rows, ids, tids, probs)
            self._topics.save()
            bar.update(1)

    def _check_own_embedding(self, value: Any, n: int) -> np.ndarray | None:
        if value is None:
            return None
        own = self._views.own
        if own is None:
            raise InvalidInputError("own_embedding given but this memory has no own model (config.embedding.own)")
        return v.check_vectors(value, n, own.dim, "own_embedding")

    def _validate_batch(self, texts: Any, kind: Any, metadata: Any, session: Any, importance: Any,
                        parents: Any) -> list[NewRecord]:
        cfg = self.config
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidInputError("texts must be a list of str (use add() for one text)")
        n = len(texts)

        def per_item(value: Any, what: str, scalar: type | tuple[type, ...]) -> list[Any]:
            if isinstance(value, scalar) or value is None:
                return [value] * n
            if isinstance(value, Sequence) and len(value) == n:
                return list(value)
            raise InvalidInputError(f"{what} must be one value or a list of {n} values")

        kinds = per_item(kind, "kind", str)
        metas = per_item(metadata, "metadata", dict)
        imps = per_item(importance, "importance", (int, float))
        pars = [()] * n if parents is None else per_item(parents, "parents", ())
        if session is not None:
            v.check_session(session)
        sess = session if session is not None else self._session.get()
        wanted_parents = sorted({p for ps in pars for p in v.check_ids(ps or [], "parents")})
        if wanted_parents:
            missing = set(wanted_parents) - self._live().existing(wanted_parents)
            if missing:
                raise RecordNotFoundError(f"parent ids {sorted(missing)} do not exist in this memory")
        return [
            NewRecord(
                kind=v.check_kind(kinds[i], cfg.kinds),
                text=v.check_text(texts[i], cfg.max_text_chars, f"texts[{i}]" if n > 1 else "text"),
                metadata_json=v.metadata_json(metas[i]),
                session=sess,
                importance=v.check_importance(1.0 if imps[i] is None else imps[i]),
                parents=tuple(v.check_ids(pars[i] or [], "parents")),
            )
            for i in range(n)
        ]

    def delete(self, ids: int | Sequence[int]) -> None:
        """Delete one record or several; raises RecordNotFoundError (deleting nothing) if any id is unknown."""
        with self._lock:
            store = self._writable()
            wanted = v.check_ids(ids)
            missing = set(wanted) - store.existing(wanted)
            if missing:
                raise RecordNotFoundError(f"no records with ids {sorted(missing)}; nothing was deleted")
            store.delete(wanted)
            self._index.remove(wanted)
            self._keywords.remove(wanted)

    # -- reads ------------------------------------------------------------------
    def get(self, id: int) -> Record:
        """The record with this id; raises RecordNotFoundError."""
        with self._lock:
            rid = v.check_id(id)
            rec = self._live().get([rid]).get(rid)
            if rec is None:
                raise RecordNotFoundError(f"no record with id {rid}")
            return rec

    def search(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sessions: Sequence[str] | None = None, where: Mapping[str, Any] | None = None,
               since: datetime | None = None, until: datetime | None = None,
               max_distance: float | None = None, mode: str | None = None) -> list[Hit]:
        """The k memories most relevant to ``query``.

        Ranking follows ``config.search`` (default ``hybrid``: dense and BM25 candidates,
        fused; formulas in ``selfmem.retrieval._search``).

        Parameters
        ----------
        query : str
        k : int
        kinds, sessions : list of str, optional
            Keep only records of these kinds / sessions.
        where : dict, optional
            Metadata filters: ``{"task": "3c9b0459"}`` (equality; dotted keys reach nested
            values) or operators ``{"score": {"$gte": 0.5}}`` ($eq $ne $gt $gte $lt $lte $in $nin $exists).
        since, until : datetime, optional
            Keep records created in ``[since, until)`` (timezone-aware).
        max_distance : float, optional
            Drop hits whose cosine distance ``1 - cos`` exceeds it.
        mode : {"hybrid", "dense", "keyword"}, optional
            Override ``config.search.mode`` for this call.

        Returns
        -------
        list of Hit
            Best first; ``score`` is the cosine, ``distance`` is ``1 - score``, ``relevance``
            the ranking score.
        """
        with self._lock, _single_blas_thread():
            return self._search(query, k, kinds=kinds, sessions=sessions, where=where, since=since, until=until,
                                max_distance=max_distance, mode=mode)

    def _search(self, query: Any, k: Any, *, kinds: Any, sessions: Any, where: Any, since: Any, until: Any,
                max_distance: Any, mode: Any) -> list[Hit]:
        store = self._live()
        v.check_text(query, self.config.max_text_chars, "query")
        k = v.check_k(k)
        kinds = v.check_name_list(kinds, "kinds")
        sessions = v.check_name_list(sessions, "sessions")
        if where is not None and not isinstance(where, Mapping):
            raise InvalidInputError("where must be a dict of metadata key -> value or -> {operator: value}")
        for name, ts in (("since", since), ("until", until)):
            if ts is not None and (not isinstance(ts, datetime) or ts.tzinfo is None):
                raise InvalidInputError(f"{name} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
        if max_distance is not None:
            max_distance = v.check_number(max_distance, "max_distance", 0.0, 2.0)
        cfg = self.config.search if mode is None else v.check_mode(mode, self.config.search)
        allowed = None
        if kinds is not None or sessions is not None or where or since or until:
            allowed = store.filter_ids(kinds, sessions, where, since, until)
            if len(allowed) == 0:
                return []
        if store.count() == 0:
            return []
        qvec = self._views.index_vectors(self._views.embed_query(query))
        if cfg.mode == "topics" and self._topics.fitted:
            routed = store.topic_members(self._topics.route(qvec[0], cfg.route_topics))
            allowed = routed if allowed is None else np.intersect1d(allowed, routed)
            if len(allowed) == 0:
                return []
        cands = gather(store, self._index, self._keywords, query, qvec, max(cfg.candidates, k), allowed, cfg.mode)
        ranked = rank(cands, k, cfg, max_distance=max_distance)
        topic_of = store.top_topics([c.id for c, _ in ranked])
        return [Hit(record=c.record, score=c.cos, distance=1.0 - c.cos, rank=r, relevance=s, keyword=c.bm25,
                    topic=topic_of.get(c.id)) for r, (c, s) in enumerate(ranked)]

    def enrich(self, prompt: str, k: int = 5, *, budget_tokens: int | None = None, mark_used: bool = True,
               **search: Any) -> Enriched:
        """The prompt with the most relevant memories placed before it in a quoted "past context" block.

        Parameters
        ----------
        prompt : str
            The solver's new question (also the search query).
        k : int
            Memories retrieved (fewer are placed if the budget is tight).
        budget_tokens : int, optional
            Token budget of the whole final prompt; whole memories are cut, least useful first.
        mark_used : bool
            Increment ``use_count`` and set ``last_used_at`` of the memories placed.
        **search
            Filters passed to :meth:`search` (kinds, sessions, where, since, until, max_distance, mode).

        Returns
        -------
        Enriched
            ``prompt`` (the final text), ``hits`` (placed memories; pass their ids as
            ``parents=`` when adding the solver's answer), ``tokens``, ``dropped``.
        """
        with self._lock:
            v.check_text(prompt, self.config.max_text_chars, "prompt")
            if budget_tokens is not None:
                budget_tokens = v.check_k(budget_tokens, "budget_tokens")
            unknown = set(search) - {"kinds", "sessions", "where", "since", "until", "max_distance", "mode"}
            if unknown:
                raise InvalidInputError(f"enrich() got unknown arguments {sorted(unknown)}")
            with _single_blas_thread():
                hits = self._search(prompt, k, **{n: search.get(n) for n in (
                    "kinds", "sessions", "where", "since", "until", "max_distance", "mode")})
            out = build_prompt(prompt, hits, budget_tokens, self._views.count_tokens)
            if mark_used and out.hits:
                self._writable().mark_used([h.record.id for h in out.hits])
            return out

    def topics(self) -> list[Topic]:
        """Every topic of the tree (leaves first, then super-topics), without member lists."""
        with self._lock:
            return self._topic_nodes()

    def topic(self, id: int) -> Topic:
        """One topic with its member record ids (a super-topic's members are its leaves' members)."""
        with self._lock:
            tid = v.check_id(id)
            nodes = {t.id: t for t in self._topic_nodes()}
            if tid not in nodes:
                raise RecordNotFoundError(f"no topic with id {tid}; see Memory.topics()")
            leaves, stack = [], [tid]
            while stack:
                t = nodes[stack.pop()]
                leaves += [t.id] if t.level == 0 else []
                stack += list(t.children)
            members = tuple(int(i) for i in self._live().topic_members(leaves))
            return dataclasses.replace(nodes[tid], members=members)

    def _topic_nodes(self) -> list[Topic]:
        store = self._live()
        rows = store.topics()
        live = store.topic_sizes()
        children: dict[int, list[int]] = {}
        for r in rows:
            if r.parent is not None:
                children.setdefault(r.parent, []).append(r.id)
        size: dict[int, int] = {}
        for r in rows:  # rows come leaves first, so children are counted before parents
            size[r.id] = live.get(r.id, 0) if r.level == 0 else sum(size.get(c, 0) for c in children.get(r.id, []))
        return [Topic(id=r.id, level=r.level, parent=r.parent, children=tuple(children.get(r.id, ())),
                      size=size[r.id], label=r.label, keywords=r.keywords, provisional=r.provisional) for r in rows]

    def stats(self) -> Stats:
        """Counts, embedders, index and config of this memory (what ``memctl inspect`` shows)."""
        with self._lock:
            store = self._live()
            embedders = {role: json.loads(fp) for role, fp in store.meta_items("embedder.").items()}
            return Stats(
                path=str(self.path),
                records=store.count(),
                kinds=store.group_counts("kind"),
                sessions=store.group_counts("session"),
                embedders=embedders,
                index={"kind": self._index.kind, "size": len(self._index), "dim": self._index.dim,
                       "mode": self._views.effective_mode},
                config=self.config.to_dict(),
                notes=tuple(self._views.notes(store.count()) + self._topic_notes(store.count())),
            )

    def _topic_notes(self, n: int) -> list[str]:
        if not self._topics.fitted:
            if n < self.config.topics.min_records:
                return [f"topics not fitted yet ({n} records < {self.config.topics.min_records})"]
            return ["topic model file missing or stale (UMAP reducers are never saved; older versions used "
                    "another format): the stored topics are listed; opening the memory for writing refits it"]
        reason = self._topics.rebuild_reason(n)
        return [f"rebuild suggested: {reason} (Memory.rebuild() / memctl rebuild)"] if reason else []

    # -- maintenance ------------------------------------------------------------
    def rebuild(self, *, reembed: bool = False) -> None:
        """Refit the derived state from the store and swap it in.

        Refits the own-view whitening (when an own model is configured) and rebuilds
        the index. Changing ``mode``, ``alpha`` or the whitening needs only this.

        Parameters
        ----------
        reembed : bool
            Also re-run every embedder over every record's text first (needed after
            a model change), with a progress bar.
        """
        if not isinstance(reembed, bool):
            raise InvalidInputError(f"reembed must be True or False, got {reembed!r}")
        with self._lock:
            self._writable()
            if reembed:
                self._reembed(list(self._views.roles))
            self._fit_own()
            self._index = self._build_index()
            self._fit_topics(progress=self._progress is not False)

    def close(self) -> None:
        """Save derived files and close the store. Idempotent."""
        with self._lock:
            if self._store is None:
                return
            try:
                if not self.read_only:
                    save_index(self._index, self._dir, self._views.signature())
                    self._keywords.save(self._dir)
                    self._topics.save()
            finally:
                self._close_store()

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self.read_only:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _writable(self) -> Store:
        store = self._live()
        if self.read_only:
            raise ReadOnlyError("this Memory was opened with read_only=True; open it without read_only to write")
        return store

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
