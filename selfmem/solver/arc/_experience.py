"""Experience: programs as exact solutions of what they do, and the per-task prior they give.

Every program the search executes on a task is the exact solution of the task "these inputs -> its
outputs" (hindsight relabelling, as in CodeIt). The solver records them in bulk in the memory
(``kind="experience"``, metadata ``program``, ``primitives``, ``task_id``) with their transformation
embedding (:func:`~selfmem.solver.arc.transformation_features`) as the own view (``own_embedding=``).

For a new task, :class:`ExperiencePrior` finds the ``k`` experiences (and remembered solutions) whose
transformation embeddings are nearest by cosine, weights each ``w = 1 / (d + eps)`` and fits a
per-task distribution over primitives and over consecutive pairs of primitives (HYSYNTH's per-task
grammar, with samples from the memory); the search orders its frontier by ``-log p``
(:class:`~selfmem.solver.arc.Guidance`). The prior is a derived cache of the memory: it is loaded from
the stored records and their own-view vectors (``Memory.export`` to Parquet) and rebuilt from them.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..._errors import InvalidInputError
from ._dsl import LEARNED, PRIMITIVES, Program
from ._features import FEATURE_DIM
from ._search import Guidance, Seed

__all__ = ["ExperiencePrior", "PriorSettings", "memory_config", "EXPERIENCE_KINDS"]

EXPERIENCE_KINDS = ("experience", "solution")


def memory_config(general: str = "hash:256") -> Any:
    """A memory config whose own view is the transformation embedding (given with ``own_embedding=``).

    The general view embeds the record's text (``general``: a model name, or ``"hash:DIM"`` for the
    fast hashing embedder); the own view is a hash embedder of the transformation embedding's
    dimension, never run: the solver passes every own vector itself. The index searches the general view.
    Search ranks without the length prior (``length_weight=0``) and without sentence vectors
    (``embedding.sentences`` off, ``sentence_weight=0``): a task's description or a program is not the more
    relevant for being longer, its "sentences" are rows of a grid, and the solver's design was tuned without
    either.
    """
    from ..._config import DEFAULT_KINDS, EmbeddingConfig, MemoryConfig, SearchConfig

    kinds = DEFAULT_KINDS + tuple(k for k in ("experience", "abstraction") if k not in DEFAULT_KINDS)
    return MemoryConfig(embedding=EmbeddingConfig(general=general, own=f"hash:{FEATURE_DIM}", mode="general",
                                                  sentences=False),
                        kinds=kinds, search=SearchConfig(length_weight=0.0, sentence_weight=0.0))


@dataclass(frozen=True)
class PriorSettings:
    """How remembered experiences become a per-task prior (chosen on the training set).

    Attributes
    ----------
    k : int
        Nearest experiences used.
    eps : float
        Weight ``w = 1 / (d + eps)`` of an experience at cosine distance ``d``.
    mix : float
        Share of the memory's distribution in the prior (the rest is the DSL's default weights).
    pair_mix : float
        Share of the pair distribution (``p(b | a)``) in a step's probability.
    solution_weight : float
        Extra weight of a remembered solution over a relabelled experience.
    seeds : int
        The closest experiences' whole programs tried first (0: none).
    center : bool
        Compare embeddings after subtracting the experiences' mean (then re-normalising).
    solutions_only : bool
        Use remembered solutions only, no relabelled experiences (the ablation "experience off").
    """

    k: int = 64
    eps: float = 0.05
    mix: float = 0.8
    pair_mix: float = 0.5
    solution_weight: float = 2.0
    seeds: int = 8
    center: bool = True
    solutions_only: bool = False


def _names(program: str) -> tuple[str, ...] | None:
    try:
        return tuple(n for n in Program.parse(program).names if n not in LEARNED)
    except InvalidInputError:
        return None  # written by another DSL version


class ExperiencePrior:
    """Nearest-experience prior over primitives, fitted on remembered experiences.

    Parameters
    ----------
    settings : PriorSettings

    Attributes
    ----------
    vectors_ : array, shape (n, FEATURE_DIM)
    programs_ : list of str
    names_ : list of tuple of str
    tasks_ : array of str
    solution_ : array of bool
    """

    def __init__(self, settings: PriorSettings = PriorSettings()) -> None:
        if not isinstance(settings, PriorSettings):
            raise InvalidInputError("settings must be a PriorSettings")
        self.settings = settings
        self.vectors_ = np.zeros((0, FEATURE_DIM), np.float32)
        self.programs_: list[str] = []
        self.names_: list[tuple[str, ...]] = []
        self.tasks_ = np.zeros(0, dtype=object)
        self.solution_ = np.zeros(0, dtype=bool)
        self.mean_ = np.zeros(FEATURE_DIM, np.float32)
        self._unit = self.vectors_

    def __len__(self) -> int:
        return len(self.programs_)

    # -- fitting ------------------------------------------------------------------
    def fit(self, vectors: np.ndarray, programs: Sequence[str], tasks: Sequence[str],
            solutions: Sequence[bool] | None = None) -> ExperiencePrior:
        """Keep these experiences (replacing any): vectors (n, FEATURE_DIM), programs, source task ids."""
        self.vectors_ = np.zeros((0, FEATURE_DIM), np.float32)
        self.programs_, self.names_ = [], []
        self.tasks_, self.solution_ = np.zeros(0, dtype=object), np.zeros(0, dtype=bool)
        return self.extend(vectors, programs, tasks, solutions)

    def extend(self, vectors: np.ndarray, programs: Sequence[str], tasks: Sequence[str],
               solutions: Sequence[bool] | None = None) -> ExperiencePrior:
        """Add experiences (programs another DSL version wrote are skipped)."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, FEATURE_DIM)
        if len(vectors) != len(programs) or len(programs) != len(tasks):
            raise InvalidInputError(f"vectors, programs and tasks differ in length: {len(vectors)}, "
                                    f"{len(programs)}, {len(tasks)}")
        solutions = [False] * len(programs) if solutions is None else list(solutions)
        keep, names = [], []
        for i, p in enumerate(programs):
            n = _names(p)
            if n:
                keep.append(i)
                names.append(n)
        self.vectors_ = np.concatenate([self.vectors_, vectors[keep]])
        self.programs_ += [programs[i] for i in keep]
        self.names_ += names
        self.tasks_ = np.concatenate([self.tasks_, np.array([str(tasks[i]) for i in keep], dtype=object)])
        self.solution_ = np.concatenate([self.solution_, np.array([bool(solutions[i]) for i in keep], dtype=bool)])
        self.mean_ = self.vectors_.mean(0) if len(self.vectors_) and self.settings.center else \
            np.zeros(FEATURE_DIM, np.float32)
        self._unit = self._normalize(self.vectors_)
        return self

    def _normalize(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float32) - self.mean_
        n = np.linalg.norm(v, axis=-1, keepdims=True)
        return v / np.maximum(n, 1e-9)

    @classmethod
    def from_memory(cls, memory: Any, settings: PriorSettings = PriorSettings()) -> ExperiencePrior:
        """Load every experience and solution a memory holds, with their own-view vectors.

        The memory must have been written with :func:`memory_config` (the own view is the
        transformation embedding); records without an own vector of that size are skipped.
        """
        import pyarrow.parquet as pq

        prior = cls(settings)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "records.parquet"
            if memory.export(path, "parquet", progress=False) == 0:
                return prior
            table = pq.read_table(path)
        if "own" not in table.column_names:
            raise InvalidInputError("this memory has no own view: open it with selfmem.solver.arc.memory_config()")
        kinds = table.column("kind").to_pylist()
        wanted = ("solution",) if settings.solutions_only else EXPERIENCE_KINDS
        rows = [i for i, k in enumerate(kinds) if k in wanted]
        if not rows:
            return prior
        own = table.column("own").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        own = own.reshape(len(kinds), -1)
        if own.shape[1] != FEATURE_DIM:
            raise InvalidInputError(f"the memory's own view has {own.shape[1]} dimensions, the transformation "
                                    f"embedding {FEATURE_DIM}: open it with selfmem.solver.arc.memory_config()")
        metas = table.column("metadata").to_pylist()
        vecs, programs, tasks, sols = [], [], [], []
        for i in rows:
            md = json.loads(metas[i]) if isinstance(metas[i], str) else (metas[i] or {})
            if not md.get("program") or not np.isfinite(own[i]).all():
                continue
            vecs.append(own[i])
            programs.append(md["program"])
            tasks.append(str(md.get("task_id", "")))
            sols.append(kinds[i] == "solution")
        return prior.fit(np.array(vecs, np.float32), programs, tasks, sols)

    # -- the prior ----------------------------------------------------------------
    def nearest(self, vector: np.ndarray, k: int, exclude_task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and cosine distances of the ``k`` nearest experiences (not from ``exclude_task``)."""
        if not len(self):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        d = 1.0 - self._unit @ self._normalize(vector)
        if exclude_task is not None:
            d = np.where(self.tasks_ == exclude_task, np.inf, d)
        k = min(k, int(np.isfinite(d).sum()))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        idx = np.argpartition(d, k - 1)[:k]
        idx = idx[np.argsort(d[idx], kind="stable")]
        return idx, d[idx].astype(np.float32)

    def distribution(self, vector: np.ndarray, exclude_task: str | None = None
                     ) -> tuple[dict[str, float], dict[str, dict[str, float]], list[tuple[int, float, float]]]:
        """The per-task prior: primitive probabilities, pair probabilities, and the (index, distance, w) used."""
        s = self.settings
        idx, dist = self.nearest(vector, s.k, exclude_task)
        base = {n: p.weight for n, p in PRIMITIVES.items()}
        z = sum(base.values())
        uni = {n: 0.0 for n in base}
        pairs: dict[str, dict[str, float]] = {}
        used = []
        for i, d in zip(idx.tolist(), dist.tolist()):
            w = 1.0 / (max(d, 0.0) + s.eps) * (s.solution_weight if self.solution_[i] else 1.0)
            used.append((i, d, w))
            names = self.names_[i]
            for n in names:
                if n in uni:
                    uni[n] += w / len(names)
            for a, b in zip(("^",) + names[:-1], names):
                if b in uni:
                    pairs.setdefault(a, {}).setdefault(b, 0.0)
                    pairs[a][b] += w
        total = sum(uni.values())
        mix = s.mix if total > 0 else 0.0
        prior = {n: mix * (uni[n] / total if total else 0.0) + (1 - mix) * base[n] / z for n in base}
        pairs = {a: {b: v / sum(row.values()) for b, v in row.items()} for a, row in pairs.items()}
        return prior, pairs, used

    def guidance(self, vector: np.ndarray, exclude_task: str | None = None, *, seeds: Sequence[Seed] = (),
                 programs_first: bool = True, priors: bool = True) -> Guidance:
        """Guidance for a task with this transformation embedding: the prior, and the closest programs as seeds."""
        prior, pairs, used = self.distribution(vector, exclude_task)
        out = list(seeds)
        seen = {str(x.program) for x in out}
        for i, d, w in used:
            if len(out) - len(seeds) >= self.settings.seeds:
                break
            if self.programs_[i] in seen:
                continue
            seen.add(self.programs_[i])
            out.append(Seed(Program.parse(self.programs_[i]), w, str(self.tasks_[i]), float(d)))
        return Guidance(tuple(out), programs_first, priors, prior if used else None, pairs if used else None,
                        self.settings.pair_mix if used else 0.0)


def overlap_at_k(names: Sequence[tuple[str, ...]], truth: tuple[str, ...]) -> float:
    """Share of retrieved programs sharing at least one primitive with ``truth`` (the leave-one-out study)."""
    t = set(truth)
    return float(np.mean([bool(t & set(n)) for n in names])) if names else math.nan
