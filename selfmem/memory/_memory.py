"""The Memory facade: validate the handle's arguments, open its state, delegate each call to one service.

Every public call is one guarded delegation (:func:`~._state.guarded`: the handle's lock, the checks that it
is open and writable, finished refits swapped in) to the service that implements it:

- :class:`~._writing.Writer` (``add``, ``add_many``, ``delete``),
- :class:`~._searching.Searcher` (``search``, ``enrich``),
- :class:`~._inspection.Inspector` (``get``, ``stats``, ``points``, ``sessions``, ``topics``, ``topic``),
- :class:`~._graph_queries.GraphQueries` (``neighbours``, ``path``, ``subgraph``, ``to_networkx``,
  ``export_neo4j``),
- :class:`~._transfer.Transfer` (``export``, ``import_records``),
- :class:`~._maintenance.Maintenance` (``wait``, ``rebuild``),

all over one :class:`~._state.MemoryState` (the store, views, derived parts, lock and session), which also
opens and closes the handle. ``docs/architecture.md`` has the table; a test checks it against the code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._config import MemoryConfig
from .._errors import InvalidInputError
from .._interrupt import deferred_interrupts
from .._types import Enriched, Hit, Points, Record, SessionRow, Stats, Subgraph, Topic
from ..retrieval._embedders import Embedder
from ..store import database_errors
from . import _registry
from . import _validate as v
from ._graph_queries import GraphQueries
from ._inspection import Inspector
from ._maintenance import Maintenance
from ._opening import STORE_FILE, check_foreign, check_open_args, make_views, read_config
from ._searching import Searcher
from ._state import OWN_FILES, MemoryState, guarded
from ._transfer import Transfer
from ._writing import Writer

__all__ = ["Memory"]


class Memory:
    """A self-organising memory stored in one directory (implements :class:`selfmem.MemoryAPI`).

    Parameters
    ----------
    path : str or path-like
        The memory directory; created if missing. It holds ``memory.duckdb`` (the durable store),
        ``config.toml`` and derived files (index, keywords, whitening, topics).
    config : MemoryConfig, optional
        Written to ``config.toml`` when given; else read from it (defaults for a new memory).
    general, own : Embedder, optional
        Embedder objects to use instead of the ones named in ``config.embedding``.
    progress : bool, optional
        Force progress bars on or off; by default they show for long work on a terminal.
    create : bool
        When False, raise :class:`InvalidInputError` instead of creating a new memory.
    reembed : bool
        When stored vectors were made by other models than the configured ones, re-embed them
        (with a progress bar) instead of raising :class:`EmbedderMismatchError`.
    read_only : bool
        Open a consistent snapshot without the writer's lock (e.g. while a solver writes);
        writes raise :class:`ReadOnlyError`.
    store : str, optional
        ``"duckdb"`` or a PostgreSQL URL (overrides ``config.store``; its password is used, never saved).

    Examples
    --------
    >>> from selfmem import EmbeddingConfig, MemoryConfig
    >>> cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
    >>> with Memory(tmp / "mem", cfg) as mem:
    ...     with mem.session("exp-1"):
    ...         rid = mem.add("The grid is rotated 90 degrees.", kind="output")
    ...     hits = mem.search("rotated grid", k=5)
    >>> hits[0].record.text, hits[0].record.session
    ('The grid is rotated 90 degrees.', 'exp-1')
    """

    def __init__(self, path: str | os.PathLike[str], config: MemoryConfig | None = None, *,
                 general: Embedder | None = None, own: Embedder | None = None, progress: bool | None = None,
                 create: bool = True, reembed: bool = False, read_only: bool = False, store: str | None = None) -> None:
        directory = check_open_args(path, config, general, own, progress, create=create, reembed=reembed,
                                    read_only=read_only)
        config = config if config is not None else read_config(directory)
        config = config if store is None else config.replace(store=store)
        if config.store == "duckdb":  # (a PostgreSQL memory's directory holds only this process's caches)
            check_foreign(directory, OWN_FILES)
        if (not create or read_only) and config.store == "duckdb" and not (directory / STORE_FILE).is_file():
            raise InvalidInputError(f"no memory at {directory} (no {STORE_FILE}); check the path")
        self._state = state = MemoryState(directory, config, read_only=read_only, progress=progress)
        self._writer = Writer(state)
        self._searcher = Searcher(state)
        self._inspector = Inspector(state)
        self._graph_queries = GraphQueries(state)
        self._transfer = Transfer(state, self._writer)
        self._maintenance = Maintenance(state)
        _registry.track(state)
        views = make_views(config.embedding, general, own)
        with deferred_interrupts(), database_errors(directory):  # never half open, never a raw DB error
            state.open(views, reembed)

    # -- the handle -------------------------------------------------------------
    @property
    def directory(self) -> Path:
        """The memory directory. (``path()`` is the graph method: a shortest path between two nodes.)"""
        return self._state.directory

    @property
    def config(self) -> MemoryConfig:
        """The memory's configuration (as in ``config.toml``)."""
        return self._state.config

    @property
    def read_only(self) -> bool:
        """Whether the handle was opened with ``read_only=True``."""
        return self._state.read_only

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        state = getattr(self, "_state", None)
        return state is None or state.closed

    @contextlib.contextmanager
    def session(self, name: str) -> Iterator[str]:
        """Context manager: records added inside carry the session ``name`` (nests; per thread / task)."""
        v.check_session(name)
        self._state.live()
        token = self._state.session.set(name)
        try:
            yield name
        finally:
            self._state.session.reset(token)

    @property
    def current_session(self) -> str | None:
        """The session that ``add`` would use now (None outside ``session()``)."""
        return self._state.session.get()

    def close(self) -> None:
        """Finish background refits, save derived files and close the store. Idempotent.

        Ctrl-C while it waits for a refit leaves the memory open and usable (close it again later; an
        interpreter that exits closes it, as does garbage collection of a handle no longer referenced).
        A failed refit is raised after the store is closed. In a forked child it raises
        :class:`MemoryForkedError` and leaves the parent's store alone.
        """
        self._state.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is KeyboardInterrupt and not all(part.refit.finished for part in self._state.parts):
            return  # Ctrl-C: do not make the user wait for a background refit here; it is closed at exit
        self.close()

    def __del__(self) -> None:
        """A handle dropped while open is closed as ``close()`` would (its refits finished, files saved)."""
        state = getattr(self, "_state", None)
        if state is not None and not state.closed and state.pid == os.getpid():
            _registry.dropped(state)

    def __len__(self) -> int:
        self._state.same_process()
        with self._state.lock:
            return self._state.live().count()

    def __repr__(self) -> str:
        return f"Memory({str(self.directory)!r}, {'closed' if self.closed else f'{len(self)} records'})"

    # -- the calls: each one guarded delegation -------------------------------------------------
    def add(self, text: str, kind: str = "output", metadata: Mapping[str, object] | None = None, *,
            session: str | None = None, importance: float = 1.0, parents: Sequence[int] = (),
            own_embedding: np.ndarray | None = None, created_at: datetime | None = None,
            key: str | None = None) -> int:
        """Store one memory and index it; return its id.

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
            Hidden states the solver already computed for ``text`` with its own model (mean-pooled
            layer ``config.embedding.own_layer``); the own model is then not run.
        created_at : datetime, optional
            When the memory was made, timezone-aware (for importing history); default now.
        key : str, optional
            An idempotency key: adding again with the same key writes nothing and returns the first id,
            so a caller can retry an add that raised (e.g. a full disk) without making a duplicate.
        """
        own = None if own_embedding is None else [own_embedding]
        return self.add_many([text], kind=kind, metadata=[metadata], session=session, importance=importance,
                             parents=[parents], own_embedding=own, created_at=created_at,
                             keys=None if key is None else [key])[0]

    @guarded(write=True)
    def add_many(self, texts: Sequence[str], kind: str | Sequence[str] = "output",
                 metadata: Sequence[Mapping[str, object] | None] | None = None, *,
                 session: str | None = None, importance: float | Sequence[float] = 1.0,
                 parents: Sequence[Sequence[int]] | None = None,
                 own_embedding: np.ndarray | Sequence[np.ndarray] | None = None,
                 progress: bool | None = None,
                 created_at: datetime | Sequence[datetime] | None = None,
                 keys: Sequence[str | None] | None = None) -> list[int]:
        """Store n memories with batched embedding, in one transaction; return the new ids in order.

        ``kind``, ``importance``, ``created_at`` (one value or n), ``metadata`` and ``parents`` (n each)
        are per text; ``created_at`` is timezone-aware (default now: when importing history, pass the
        original times, which ``since``/``until`` and the recency term use); ``keys`` (n, str or None)
        are idempotency keys: a text whose key is already stored is not added again, its first id is returned;
        ``own_embedding`` has shape (n, own_dim). Nothing is written if any input is invalid.
        ``progress`` shows a bar (default: 512 texts or more, on a terminal).
        """
        return self._writer.add_many(texts, kind, metadata, session=session, importance=importance, parents=parents,
                                     own_embedding=own_embedding, progress=progress, created_at=created_at, keys=keys)

    @guarded(write=True)
    def delete(self, ids: int | Sequence[int]) -> None:
        """Delete one record or several; raises RecordNotFoundError (deleting nothing) if any id is unknown."""
        return self._writer.delete(ids)

    @guarded(poll=False)
    def get(self, id: int) -> Record:
        """The record with this id; raises RecordNotFoundError."""
        return self._inspector.get(id)

    @guarded()
    def search(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sessions: Sequence[str] | None = None, where: Mapping[str, object] | None = None,
               since: datetime | None = None, until: datetime | None = None,
               max_distance: float | None = None, mode: str | None = None,
               expand: bool | Sequence[str] | None = None) -> list[Hit]:
        """The k memories most relevant to ``query``, best first.

        Parameters
        ----------
        query : str
        k : int
        kinds, sessions : list of str, optional
            Keep only records of these kinds / sessions.
        where : dict, optional
            Metadata filters: ``{"task": "3c9b0459"}`` (equality; dotted keys reach nested values) or
            operators ``{"score": {"$gte": 0.5}}`` ($eq $ne $gt $gte $lt $lte $in $nin $exists).
        since, until : datetime, optional
            Keep records created in ``[since, until)`` (timezone-aware).
        max_distance : float, optional
            Drop hits whose cosine distance ``1 - cos`` exceeds it.
        mode : {"hybrid", "dense", "keyword", "topics"}, optional
            Override ``config.search.mode`` for this call (formulas in ``selfmem.retrieval._search``).
        expand : bool or list of str, optional
            Graph expansion: the neighbours of the best ``config.graph.expand_hits`` hits along these
            edge types (FOLLOWS, DERIVED_FROM, SOLVES, SIMILAR_TO) are placed right after the hit that
            brought them, marked by ``Hit.via`` and ``Hit.expanded_from``; the list stays at k. None
            (default) follows ``config.graph.expand`` (SOLVES and FOLLOWS), True all four, False none.

        Returns
        -------
        list of Hit
            ``score`` is the cosine, ``distance`` is ``1 - score``, ``relevance`` the ranking score.
        """
        return self._searcher.search(query, k, kinds=kinds, sessions=sessions, where=where, since=since, until=until,
                                     max_distance=max_distance, mode=mode, expand=expand)

    @guarded()
    def enrich(self, /, prompt: str, k: int = 5, *, budget_tokens: int | None = None, mark_used: bool = True,
               order: str = "time", **search: object) -> Enriched:
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
        order : {"time", "relevance"}
            How the placed memories are shown: oldest first (the default) or most relevant first. They
            are chosen by relevance either way. Oldest first answered LoCoMo questions better with the
            same reader at every budget (leave-one-conversation-out, ``benchmarks/answers.py``).
        **search
            Passed to :meth:`search` (kinds, sessions, where, since, until, max_distance, mode, expand).

        Returns
        -------
        Enriched
            ``prompt`` (the final text), ``hits`` (placed memories; pass their ids as ``parents=``
            when adding the solver's answer), ``tokens``, ``dropped``.
        """
        return self._searcher.enrich(prompt, k, budget_tokens=budget_tokens, mark_used=mark_used, order=order, **search)

    @guarded()
    def stats(self) -> Stats:
        """Counts, embedders, index, topics, disk use, last rebuild and health of this memory (``memctl inspect``)."""
        return self._inspector.stats()

    @guarded()
    def points(self, limit: int | None = None, *, seed: int = 0) -> Points:
        """Memories with their index vectors and topics: all of them, or a uniform sample of ``limit``.

        Parameters
        ----------
        limit : int, optional
            At most this many (a random sample, ``seed``); None for every memory.
        seed : int

        Returns
        -------
        Points
            ``ids`` (n,), ``vectors`` (n, dim), texts, kinds, sessions, leaf and top-level topics.
        """
        return self._inspector.points(limit, seed=seed)

    @guarded()
    def sessions(self) -> list[SessionRow]:
        """Every session in natural order (s2 before s10): ``session`` (``""`` for records outside one),
        ``records``, ``first`` and ``last`` (ISO times) and ``kinds``."""
        return self._inspector.sessions()

    @guarded()
    def topics(self) -> list[Topic]:
        """Every topic of the tree (leaves first, then super-topics), without member lists."""
        return self._inspector.topics()

    @guarded()
    def topic(self, id: int) -> Topic:
        """One topic with its member record ids (a super-topic's members are its leaves' members)."""
        return self._inspector.topic(id)

    @guarded()
    def neighbours(self, node: int | str, rel: str | Sequence[str] | None = None, *, direction: str = "both",
                   depth: int = 1, limit: int = 100) -> Subgraph:
        """The graph around one node: the nodes within ``depth`` edges and the edges walked.

        Parameters
        ----------
        node : int or str
            A memory id, or a key: ``"memory:12"``, ``"topic:3"``, ``"session:<name>"``, ``"task:<id>"``,
            ``"entity:<phrase>"``.
        rel : str or list of str, optional
            Edge types to follow (IN_TOPIC, SUBTOPIC_OF, RELATED_TO, SIMILAR_TO, IN_SESSION, FOLLOWS,
            ABOUT, SOLVES, DERIVED_FROM, MENTIONS); all by default, MENTIONS (a memory's entities) only
            from an entity node or when named.
        direction : {"both", "out", "in"}
            Follow edges leaving the node, entering it, or both.
        depth : int
            Steps (1 to 6).
        limit : int
            Nodes returned at most, besides the start (breadth-first order).

        Returns
        -------
        Subgraph
            ``nodes[0]`` is the start; ``edges`` are those walked.
        """
        return self._graph_queries.neighbours(node, rel, direction=direction, depth=depth, limit=limit)

    @guarded()
    def path(self, a: int | str, b: int | str, *, max_depth: int = 4,
             rel: str | Sequence[str] | None = None) -> Subgraph | None:
        """A shortest path between two nodes, ignoring edge direction (None if none within ``max_depth``).

        ``nodes`` run from ``a`` to ``b``; ``edges[i]`` joins ``nodes[i]`` and ``nodes[i + 1]``.
        """
        return self._graph_queries.path(a, b, max_depth=max_depth, rel=rel)

    @guarded()
    def subgraph(self, nodes: Sequence[int | str], *, depth: int = 1, rel: str | Sequence[str] | None = None,
                 limit: int = 1000) -> Subgraph:
        """The nodes given, those within ``depth`` edges of them (0: none) and the edges among them all."""
        return self._graph_queries.subgraph(nodes, depth=depth, rel=rel, limit=limit)

    @guarded()
    def to_networkx(self) -> Any:
        """The whole knowledge graph as a ``networkx.MultiDiGraph`` (the same nodes and edges a Neo4j export
        writes: node keys like ``"memory:12"``, node attribute ``type``, edge key and attribute ``rel``)."""
        return self._graph_queries.to_networkx()

    @guarded()
    def export_neo4j(self, uri: str | None = None, user: str | None = None, password: str | None = None,
                     database: str | None = None, *, restart: bool = False, progress: bool | None = None
                     ) -> dict[str, int]:
        """Copy the whole graph to a Neo4j server (``selfmem[neo4j]``), in resumable, idempotent batches.

        Parameters
        ----------
        uri, user, password, database : str, optional
            Default to ``SELFMEM_NEO4J_URI`` / ``_USER`` / ``_PASSWORD`` / ``_DATABASE``, then ``config.graph``.
        restart : bool
            Ignore the progress left by an interrupted export (``neo4j-export.json`` in the directory).
        progress : bool, optional
            Show a bar (default: on a terminal).

        Returns
        -------
        dict
            Edges per type and ``memories`` copied. Raises :class:`GraphError` if Neo4j fails.
        """
        return self._graph_queries.export_neo4j(uri, user, password, database, restart=restart, progress=progress)

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
        return self._transfer.export(out, format, progress=progress)

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
        return self._transfer.import_records(file, kind=kind, session=session, progress=progress)

    @guarded()  # polls first: catches up with other writers and starts the refits that makes due
    def wait(self) -> None:
        """Block until background refits (whitening, index, topics) are finished and swapped in, including those
        due now (on a shared store: after catching up with other processes' commits and whitening)."""
        return self._maintenance.wait()

    @guarded(write=True, poll=False)
    def rebuild(self, *, reembed: bool = False) -> None:
        """Refit every derived part from the store now: whitening, index, keywords, topics, tree, labels, graph.

        Parameters
        ----------
        reembed : bool
            Also re-run every embedder over every record's text first (needed after a model
            change; roles already re-embedded when this Memory was opened are not run again).
        """
        return self._maintenance.rebuild(reembed=reembed)
