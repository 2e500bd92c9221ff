"""Small frozen types shared by every layer: records, hits, topics, stats, enriched prompts.

This module sits at the bottom of the package (beside ``_config`` and ``_errors``): any layer
may import it, and it imports nothing of selfmem but ``_errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

if TYPE_CHECKING:  # numpy is not imported here: memctl --url prints these types without it
    import numpy as np

__all__ = ["JSON", "Metadata", "SessionRow", "to_json", "Record", "Hit", "Stats", "IndexParams", "IndexInfo", "RebuildInfo", "ViewInfo", "Topic", "Enriched", "NewRecord", "TopicRow", "EPS", "Node", "Edge", "Subgraph",
           "Finding", "Checkup", "Points"]

JSON: TypeAlias = Any
"""A value as ``json.loads`` returns it (metadata values, manifests, wire bodies, fingerprints): the package's
boundary type for data whose shape the caller, not selfmem, decides."""

Metadata: TypeAlias = dict[str, JSON]
"""A record's metadata (or any JSON object) as read back: string keys, JSON values."""



class SessionRow(TypedDict):
    """One session as ``Memory.sessions()`` lists it (``session`` is ``""`` for records outside one)."""

    session: str
    records: int
    first: str
    """ISO time (seconds) of its first record."""
    last: str
    kinds: list[str]


EPS = 1e-3
"""The ``eps`` of the design's contribution weight ``w = 1 / (d + eps)``."""


@dataclass(frozen=True)
class Record:
    """One stored memory.

    Attributes
    ----------
    id : int
        Stable id, unique within the memory.
    kind : str
        One of the configured kinds (``"output"``, ``"task"``, ...).
    text : str
        The full text as added.
    metadata : dict
        JSON-compatible metadata given on add.
    session : str or None
        The session the record was added in.
    created_at : datetime
        UTC time of the add.
    importance : float
        Importance given on add (default 1.0).
    use_count : int
        How often the record was used to enrich a prompt.
    last_used_at : datetime or None
        UTC time of the last use.
    parents : tuple of int
        Ids of records this one was derived from.
    """

    id: int
    kind: str
    text: str
    metadata: Metadata = field(default_factory=dict, hash=False)
    session: str | None = None
    created_at: datetime | None = None
    importance: float = 1.0
    use_count: int = 0
    last_used_at: datetime | None = None
    parents: tuple[int, ...] = ()


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes
    ----------
    record : Record
        The memory found.
    score : float
        Cosine similarity between the query and the memory, in [-1, 1].
    distance : float
        Cosine distance ``1 - score``.
    rank : int
        0-based position in the result list.
    relevance : float
        The ranking score (fused relevance plus importance, recency and use terms).
    keyword : float
        The BM25 score of the memory for the query.
    topic : int or None
        The memory's most probable topic (None before topics are first fitted).
    via : tuple of str
        Empty for a ranked hit. For a hit added by graph expansion (``search(expand=True)``): the
        edge path that led to it from the ranked hit ``expanded_from``, e.g. ``("FOLLOWS",)``
        or ``("ABOUT", "SOLVES")``; its ``relevance`` is that hit's.
    expanded_from : int or None
        The id of the ranked hit that brought an expanded one.
    """

    record: Record
    score: float
    distance: float
    rank: int
    relevance: float = 0.0
    keyword: float = 0.0
    topic: int | None = None
    via: tuple[str, ...] = ()
    expanded_from: int | None = None

    @property
    def weight(self) -> float:
        """The design's contribution weight ``1 / (distance + eps)`` (eps = 1e-3).

        >>> rec = Record(id=1, kind="note", text="x")
        >>> round(Hit(record=rec, score=0.9, distance=0.1, rank=0).weight, 2)
        9.9
        """
        return 1.0 / (max(self.distance, 0.0) + EPS)


@dataclass(frozen=True)
class Topic:
    """A node of the topic tree.

    Attributes
    ----------
    id : int
        Topic id (leaf topics 0, 1, ...; super-topics of level L from ``L * 100000``).
    level : int
        0 for Dirichlet-process topics; higher for super-topics.
    parent : int or None
        The super-topic above (None at the top level).
    children : tuple of int
        Topics directly below.
    size : int
        Memories whose most probable topic lies in this subtree.
    label : str
        Top keywords joined (``"(provisional)"`` until the next rebuild labels it).
    keywords : tuple of str
        c-TF-IDF keywords, best first.
    provisional : bool
        Opened online since the last rebuild.
    members : tuple of int
        Record ids (filled by ``Memory.topic(id)``; empty in ``Memory.topics()``).
    """

    id: int
    level: int
    parent: int | None
    children: tuple[int, ...]
    size: int
    label: str
    keywords: tuple[str, ...]
    provisional: bool = False
    members: tuple[int, ...] = ()


class IndexParams(TypedDict, total=False):
    """An IVF-PQ index's parameters (an exact index has none)."""

    nlist: int
    nprobe: int
    rerank: int
    n_trained: int


class IndexInfo(IndexParams, total=False):
    """``Stats.index``: the index's kind (``"flat"`` or ``"ivfpq"``), size, dimension, the fusion mode in use
    (``"general"``, ``"own"`` or ``"dual"``) and, for IVF-PQ, its parameters."""

    kind: str
    size: int
    dim: int
    mode: str


class RebuildInfo(TypedDict, total=False):
    """``Stats.last_rebuild`` (empty if never rebuilt): when, how many records, and the change since."""

    at: str
    records: int
    added_since: int
    deleted_since: int


class ViewInfo(TypedDict, total=False):
    """``Stats.view`` (empty when none is published): when, its age, records and Parquet segments."""

    published_at: str
    age_s: float
    records: int
    segments: int


@dataclass(frozen=True)
class Stats:
    """What ``Memory.stats()`` (and ``memctl inspect``) reports.

    Attributes
    ----------
    path : str
        The memory directory.
    records : int
        Number of stored records.
    kinds : dict of str to int
        Records per kind.
    sessions : dict of str to int
        Records per session (``""`` for records made outside a session).
    embedders : dict of str to dict
        Fingerprint (name, dim, revision) of each embedder with stored vectors.
    index : IndexInfo
        Index kind, size, dimension, fusion mode, and the IVF-PQ parameters (a TypedDict).
    config : dict
        The configuration as stored in ``config.toml``.
    notes : tuple of str
        Human-readable remarks (e.g. a fallback in use).
    graph : dict of str to int
        Edges of the knowledge graph per type.
    topic_levels : dict of int to int
        Topics per level of the tree (0 = Dirichlet-process topics).
    provisional_topics : int
        Leaf topics opened online since the last rebuild.
    disk : dict of str to int
        Bytes per file of the memory directory (``view/`` summed as one entry).
    last_rebuild : RebuildInfo
        ``{"at": ISO time, "records": n, "added_since": a, "deleted_since": d}``; empty if never rebuilt.
    view : ViewInfo
        The read view (``published_at``, ``records``, ``segments``); empty when none is published.
    health : tuple of Finding
        Warnings about the memory's state, each with the command that fixes it.
    """

    path: str
    records: int
    kinds: dict[str, int]
    sessions: dict[str, int]
    embedders: dict[str, Metadata]
    index: IndexInfo
    config: Metadata
    notes: tuple[str, ...] = ()
    graph: dict[str, int] = field(default_factory=dict)
    topic_levels: dict[int, int] = field(default_factory=dict)
    provisional_topics: int = 0
    disk: dict[str, int] = field(default_factory=dict)
    last_rebuild: RebuildInfo = field(default_factory=lambda: RebuildInfo())
    view: ViewInfo = field(default_factory=lambda: ViewInfo())
    health: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One warning of ``Memory.stats().health`` or one problem found by :func:`selfmem.doctor`.

    Attributes
    ----------
    part : str
        What it concerns (``"store"``, ``"index"``, ``"re-rank file"``, ``"keywords"``, ``"topics"``,
        ``"graph"``, ``"whitening"``, ``"read view"``, ``"config"``).
    message : str
        What is wrong.
    fix : str
        The command that fixes it (e.g. ``memctl rebuild PATH``).
    code : str
        A stable machine-readable code, ``"<part>.<problem>"`` (e.g. ``"index.missing"``,
        ``"store.damaged"``); ``""`` for health notes that need none.
    """

    part: str
    message: str
    fix: str
    code: str = ""


@dataclass(frozen=True)
class Checkup:
    """What :func:`selfmem.doctor` found (and repaired).

    Attributes
    ----------
    path : str
        The memory directory.
    checked : tuple of str
        The parts checked, in order.
    problems : tuple of Finding
        Disagreements found before any repair.
    repaired : tuple of str
        Parts rebuilt by ``repair=True``.
    remaining : tuple of Finding
        Problems still present after the repair (``problems`` when not repairing).
    """

    path: str
    checked: tuple[str, ...]
    problems: tuple[Finding, ...]
    repaired: tuple[str, ...] = ()
    remaining: tuple[Finding, ...] = ()

    @property
    def healthy(self) -> bool:
        """True when nothing is (left) wrong."""
        return not self.remaining


@dataclass(frozen=True)
class Enriched:
    """The result of ``Memory.enrich``.

    Attributes
    ----------
    prompt : str
        The final prompt: the past-context block (if any memory fits) and the question.
    hits : tuple of Hit
        The memories placed in the block, in order.
    tokens : int
        Tokens of ``prompt`` (counted with the own model's tokenizer when there is one).
    dropped : int
        Retrieved memories left out to respect the budget.
    """

    prompt: str
    hits: tuple[Hit, ...]
    tokens: int
    dropped: int = 0


@dataclass(frozen=True)
class NewRecord:
    """A validated record about to be inserted (no id yet; ``created_at`` in UTC, None for now)."""

    kind: str
    text: str
    metadata_json: str
    session: str | None
    importance: float
    parents: tuple[int, ...]
    created_at: datetime | None = None
    key: str | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)
    """The metadata as given (validated; ``metadata_json`` is its stored form), so no part parses it again."""


@dataclass(frozen=True)
class TopicRow:
    """One stored topic (level 0 = leaf topics; higher levels = super-topics).

    ``centroid`` has shape (dim,): the unit mean of the members' index vectors.
    """

    id: int
    parent: int | None
    level: int
    size: int
    centroid: np.ndarray
    label: str
    keywords: tuple[str, ...]
    provisional: bool


@dataclass(frozen=True)
class Node:
    """A node of the knowledge graph.

    Attributes
    ----------
    key : str
        ``"memory:<id>"``, ``"topic:<id>"``, ``"session:<name>"`` or ``"task:<task id>"``.
    label : str
        ``"Memory"``, ``"Topic"``, ``"Session"`` or ``"Task"``.
    props : dict
        Memory: kind, text (first 200 characters), session. Topic: label, level. Session and Task: name.
    """

    key: str
    label: str
    props: Metadata = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Edge:
    """A directed, typed edge of the knowledge graph.

    Attributes
    ----------
    src, dst : str
        Node keys.
    rel : str
        IN_TOPIC, SUBTOPIC_OF, RELATED_TO, SIMILAR_TO, IN_SESSION, FOLLOWS, ABOUT, SOLVES or DERIVED_FROM.
    weight : float
        Membership probability (IN_TOPIC), cosine (SIMILAR_TO, RELATED_TO), else 1.0.
    created_at : datetime or None
        UTC time the edge was made (None for edges read off the topic tree).
    props : dict
        Further properties (SOLVES: ``verified_by``).
    """

    src: str
    rel: str
    dst: str
    weight: float = 1.0
    created_at: datetime | None = field(default=None, compare=False)
    props: Metadata = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Subgraph:
    """Nodes and edges returned by ``Memory.neighbours``, ``path`` and ``subgraph``.

    Attributes
    ----------
    nodes : tuple of Node
        For ``path``: in path order, from the start to the end.
    edges : tuple of Edge
    """

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The node keys, in order."""
        return tuple(n.key for n in self.nodes)

    def to_networkx(self) -> Any:  # networkx ships no types
        """A ``networkx.MultiDiGraph``; needs the networkx package.

        Node attributes: ``type`` (the node's label: "Memory", "Topic", ...) and its props; edge key and
        attribute ``rel``, ``weight``, ``created_at`` and the edge's props.

        >>> g = Subgraph((Node("memory:1", "Memory"), Node("memory:2", "Memory")),
        ...              (Edge("memory:2", "FOLLOWS", "memory:1"),)).to_networkx()
        >>> list(g.edges(keys=True))
        [('memory:2', 'memory:1', 'FOLLOWS')]
        """
        try:
            import networkx as nx
        except ImportError as exc:
            from ._errors import DependencyError

            raise DependencyError("to_networkx() needs networkx: pip install networkx") from exc
        g = nx.MultiDiGraph()
        for n in self.nodes:
            g.add_node(n.key, type=n.label, **n.props)
        for e in self.edges:
            g.add_edge(e.src, e.dst, key=e.rel, rel=e.rel, weight=e.weight, created_at=e.created_at, **e.props)
        return g


@dataclass(frozen=True)
class Points:
    """Memories with their index vectors, for maps and notebooks (``Memory.points``).

    Attributes
    ----------
    ids : ndarray, shape (n,) int64
        Record ids, ascending.
    vectors : ndarray, shape (n, dim) float32
        The index vectors search uses (fused, whitened views).
    texts, kinds, sessions : tuple of str, length n
        ``sessions`` has ``""`` for records outside a session.
    topics : ndarray, shape (n,) int64
        Most probable leaf topic (-1: none yet).
    tops : ndarray, shape (n,) int64
        Its top-level ancestor in the topic tree (-1: none).
    total : int
        Records in the memory (``n < total`` when sampled).
    """

    ids: np.ndarray
    vectors: np.ndarray
    texts: tuple[str, ...]
    kinds: tuple[str, ...]
    sessions: tuple[str, ...]
    topics: np.ndarray
    tops: np.ndarray
    total: int


def to_json(obj: object) -> JSON:
    """A JSON-compatible copy of ``obj`` (dataclasses, tuples, datetimes, numpy values)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    numpy = sys.modules.get("numpy")  # an object can be a numpy value only once numpy is imported
    if numpy is not None:
        if isinstance(obj, numpy.ndarray):
            return obj.tolist()
        if isinstance(obj, numpy.generic):
            return obj.item()
    return obj
