"""Best-first search over typed DSL compositions, with a node budget and memory guidance.

A node is a program; evaluating it applies its last step to the previous step's values on every train
and test input (one node), so the budget counts primitive applications over the whole task. The
frontier is ordered by the program's cost under a prior over primitives (``-log p`` per step) plus a
small penalty while the grids' shapes differ from the train outputs'. Only primitives whose input
type matches the value's type are tried, and a node whose values equal an earlier node's
(an equivalent intermediate grid) is not expanded again.

Guidance (from the memory): seed programs join the frontier ahead of their cost (a bonus of
``seed_bonus`` times the seed's weight ``w = 1 / (d + eps)`` normalised over the seeds), as they are
and with their colour arguments refitted to this task; the closest seeds' programs with one step
replaced, inserted or deleted (typed edits, :mod:`._edits`) join it too; and each seed's primitives get a higher
prior in proportion to its weight. Seeds and edits are checked but not expanded: the search expands
the same programs when their own cost comes up. A memory prior can also push a program the unguided
search finds cheaply past the budget; with ``SearchSettings.default_share`` that share of the nodes
goes to a second frontier ordered by the DSL's default weights (a portfolio of the two orders, sharing
what has been evaluated), so a guided search keeps what the unguided one finds within that share.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..._errors import InvalidInputError
from ._cells import cell_guesses
from ._dsl import LEARNED, PRIMITIVES, Program, Step, apply_step, candidate_colors, step_function
from ._edits import EDIT_KINDS, typed_edits
from ._primitives import DSL
from ._grid import Grid
from ._learned import NORMALISED, RULES, apply_rule, fit_colormap, fit_rule

__all__ = ["SearchSettings", "Seed", "Guidance", "SearchResult", "search_task"]


@dataclass(frozen=True)
class SearchSettings:
    """Search limits and the weights of guidance.

    Attributes
    ----------
    budget : int
        Nodes (primitive applications over all of a task's inputs) before giving up.
    max_depth : int
        Longest composition (steps, not counting the learned colour map).
    attempts : int
        Distinct answers wanted per test input (the competition scores 2).
    extra : float
        After the first solution, keep searching for a second answer at most ``extra * budget`` nodes.
    boost : float
        How strongly the seeds' primitives raise the prior (``p * (1 + boost * share)``).
    edit_bonus : float
        Cost subtracted from a seed's edits (times the seed's normalised weight).
    shape_penalty : float
        Added to the cost of a grid whose shapes differ from the train outputs'.
    seed_bonus : float
        Cost subtracted from a remembered program (times the seed's normalised weight) when it joins the
        frontier: large values try every seed first, small ones let cheap programs go before weak seeds.
    edit_seeds : int
        How many of the closest seeds get their typed one-step edits into the frontier (retrieve-and-edit).
    edits : tuple of str
        Which edits (:func:`~selfmem.solver.arc._edits.typed_edits`): ``"replace"`` a step, ``"insert"`` one
        (reaching one step past ``max_depth``), ``"delete"`` one.
    rule_depth : int
        Local rules (``rule_patch3``, ...) are fitted after programs of at most this many steps (-1: never).
    normalised_depth : int
        The colour-normalised rules (``rule_npatch3``, ...) are fitted after programs of at most this many
        steps (-1: never). 0, chosen on training: on the inputs as given they gained 4 tasks; after one-step
        programs too, 5 gained and 2 lost (chance fits taking the second attempt).
    window_depth : int
        The window rule (``rule_window``, a fixed crop) is fitted after programs of at most this many steps
        whose grids differ in shape from the outputs (-1: never). 2, chosen on training: 196 -> 198 tasks
        against 1, none lost.
    guesses : bool
        Fill the attempts no verified program takes with the cell classifiers' guesses
        (:mod:`~selfmem.solver.arc._cells`: decision trees over cell features, same-shape tasks only).
        On, chosen on training: 14 tasks gained, none lost (a guess never displaces a program).
    collect : int
        Hindsight experiences to return (0: none): programs the search executed, each the exact solution
        of "these train inputs -> its outputs", deduplicated by outputs, identities and constants left
        out, a seeded sample of at most this many (see :class:`SearchResult`).
    sample_seed : int
        Changes which experiences that sample keeps (0: the default sample; repetitions use 1, 2, ...).
    abstraction_discount : float
        An abstraction's cost as a share of the summed cost of its steps (see :class:`Guidance`).
    default_share : float
        With a memory prior: the share of nodes (0-1) spent on a second frontier ordered by the DSL's
        default weights, so that a guided search keeps what the unguided one finds cheaply (0: the
        memory's order only; 1: the default order, the memory's prior only where that frontier is empty).
        1 with ``memory_nodes=300``, chosen on the training set (two folds, leave one out): 0.5 gained one
        task more and lost two that the unguided search solves.
    memory_nodes : int
        With seeds: the nodes of a phase before the search in which the seeds and then their edits are
        tried, each cheapest first (0: they join the search's frontier instead). A fixed count, so that a
        task the unguided search solves is lost only if it needed its last ``memory_nodes`` nodes (with
        ``default_share=1``). 300 chosen on the training set: 600 lost a task on one fold.
    """

    budget: int = 2000
    max_depth: int = 3
    attempts: int = 2
    extra: float = 0.25
    boost: float = 2.0
    edit_bonus: float = 4.0
    shape_penalty: float = 1.5
    rule_depth: int = 1
    window_depth: int = 2
    normalised_depth: int = 0
    guesses: bool = True
    edit_seeds: int = 8
    edits: tuple[str, ...] = ("replace", "insert", "delete")
    seed_bonus: float = 8.0
    collect: int = 0
    sample_seed: int = 0
    abstraction_discount: float = 0.5
    default_share: float = 1.0
    memory_nodes: int = 300

    def __post_init__(self) -> None:
        if not set(self.edits) <= set(EDIT_KINDS):
            raise InvalidInputError(f"edits are some of {EDIT_KINDS}, got {self.edits!r}")
        if not 0.0 <= self.default_share <= 1.0:
            raise InvalidInputError(f"default_share is a share of the nodes in [0, 1], got {self.default_share!r}")
        if isinstance(self.memory_nodes, bool) or not isinstance(self.memory_nodes, int) or self.memory_nodes < 0:
            raise InvalidInputError(f"memory_nodes must be an integer >= 0, got {self.memory_nodes!r}")


@dataclass(frozen=True)
class Seed:
    """A program retrieved from the memory: what solved a similar task, and how close that task was."""

    program: Program
    weight: float
    task_id: str
    distance: float


@dataclass(frozen=True)
class Guidance:
    """What the memory suggests for one task. ``programs_first``/``priors`` switch the two uses (ablations).

    ``prior`` (primitive name -> probability, summing to 1), when given, replaces the DSL's default
    primitive weights: a step costs ``-log p``. ``pairs`` (previous primitive name, ``"^"`` at the
    start -> name -> probability) refines it: a step after ``a`` costs
    ``-log(pair_mix * pairs[a][name] + (1 - pair_mix) * prior[name])``. ``abstractions`` (learned
    sub-programs) are expanded like one primitive: they count as one step of ``max_depth`` and cost
    ``SearchSettings.abstraction_discount`` times the sum of their steps' costs.
    """

    seeds: tuple[Seed, ...] = ()
    programs_first: bool = True
    priors: bool = True
    prior: Mapping[str, float] | None = None
    pairs: Mapping[str, Mapping[str, float]] | None = None
    pair_mix: float = 0.0
    abstractions: tuple[Program, ...] = ()


@dataclass(frozen=True)
class SearchResult:
    """The search's outcome for one task.

    Attributes
    ----------
    programs : tuple of Program
        Verified programs (every train pair), one per distinct test answer, at most ``attempts``.
    predictions : tuple of tuple of Grid
        ``predictions[a][t]``: attempt ``a``'s answer for test input ``t``.
    nodes : int
        Nodes evaluated in all.
    nodes_to_solution : int or None
        Nodes evaluated when the first verified program was found.
    seconds : float
    source : str
        Where the first solution came from: ``"seed"``, ``"edit"`` or ``"search"`` ("" if none).
    seed_task : str
        The task id of the remembered program that led to it ("" if none).
    near_misses : tuple of (str, float)
        Programs whose grids had the outputs' shapes, with the share of cells right (best first).
    experiences : tuple of (str, array)
        With ``SearchSettings.collect``: executed programs and the transformation embedding
        (:func:`~selfmem.solver.arc.transformation_features`) of the train inputs -> their outputs.
    found_at : tuple of int
        For each of ``programs``: the smallest node limit under which the search finds it (the search's
        order does not depend on the budget, so a search at budget ``b`` returns the first program if
        ``found_at[0] <= b`` and the second if also ``found_at[1] <= min(b, nodes_to_solution +
        int(extra * b) + 1)``: :func:`kept_at`). One search at the largest budget gives the whole budget curve.
    guesses : tuple of Program
        With ``SearchSettings.guesses``: the cell classifiers' guesses (``rule_cells_*``), fitted on the
        train pairs alone (so the same at every budget), up to ``attempts`` of them.
    guess_predictions : tuple of tuple of Grid
        ``guess_predictions[g][t]``: guess ``g``'s answer for test input ``t``.
    attempts : int
        Answers allowed per test input (``SearchSettings.attempts``).
    """

    programs: tuple[Program, ...]
    predictions: tuple[tuple[Grid, ...], ...]
    nodes: int
    nodes_to_solution: int | None
    seconds: float
    source: str = ""
    seed_task: str = ""
    near_misses: tuple[tuple[str, float], ...] = field(default=())
    experiences: tuple[tuple[str, np.ndarray], ...] = field(default=())
    found_at: tuple[int, ...] = field(default=())
    guesses: tuple[Program, ...] = field(default=())
    guess_predictions: tuple[tuple[Grid, ...], ...] = field(default=())
    attempts: int = 2

    def answers(self, kept: int | None = None) -> tuple[tuple[Grid, ...], ...]:
        """The answers to score: the first ``kept`` programs' (all by default), then the guesses that differ
        from them, at most ``attempts`` in all; ``answers()[a][t]`` is attempt ``a``'s grid for test ``t``."""
        out = list(self.predictions[:len(self.predictions) if kept is None else kept])
        for guess in self.guess_predictions:
            if len(out) >= self.attempts:
                break
            if not any(all(np.array_equal(a, b) for a, b in zip(guess, prev)) for prev in out):
                out.append(guess)
        return tuple(out[:self.attempts])


def kept_at(found_at: Sequence[int], first: int | None, budget: int, extra: float = SearchSettings.extra) -> int:
    """How many of a search's programs (found at ``found_at``, the first at ``first`` nodes) a search of the
    same task with ``budget`` nodes would have returned: 0, 1 or 2 (see :class:`SearchResult`)."""
    if not found_at or first is None or found_at[0] > budget:
        return 0
    limit = min(budget, first + int(extra * budget) + 1)
    return 1 + sum(1 for n in found_at[1:] if n <= limit)


@dataclass(frozen=True)
class _Children:
    """The child steps of one value type (after one previous step) and their step costs, shape (n,) each."""

    steps: tuple[Step, ...]
    cost: np.ndarray
    default: np.ndarray
    position: Mapping[Step, int]


@dataclass(frozen=True, eq=False)
class _Expansion:
    """One expanded node's search children: their costs in both frontiers, each frontier's order (cost, then
    push order) and the push counters each child would have had, shape (n,) each."""

    parent: tuple[Step, ...]
    depth: int
    kids: _Children
    costs: np.ndarray
    defaults: np.ndarray
    order: np.ndarray
    order_default: np.ndarray
    counters: np.ndarray
    counters_default: np.ndarray


_Entry = tuple[float, int, "tuple[Step, ...] | None", str, str, "tuple[_Expansion, bool, int] | None"]
"""A frontier entry: cost, push counter (ties), steps (None for a lazy child), source, seed task, lazy child."""


_EDIT_TIER = 1e6
"""Added to an edit's cost in the memory's phase (``memory_nodes``): the seeds as remembered (and refitted)
are tried before any edit, then the edits cheapest first."""

_NORMALISED_KINDS = frozenset(f"n{kind}" for kind in NORMALISED)

_PAINTS = ("paint", "paint_over")
"""The steps that end a scene (:mod:`._prims_scene`), tried on every changed scene."""


def _key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return (value.shape, value.tobytes())
    if type(value) is tuple and all(type(v) is np.ndarray for v in value):  # a node's grids: the usual case
        return tuple((v.shape, v.tobytes()) for v in value)
    if isinstance(value, tuple) and value and hasattr(value[0], "grid"):
        objs = tuple((o.top, o.left, o.grid.shape, o.grid.tobytes()) for o in value)
        source = getattr(value, "source", None)  # a scene: its paints depend on the grid it came from
        return objs if source is None else (objs, source.shape, source.tobytes())
    if isinstance(value, tuple):
        return tuple(_key(v) for v in value)
    return value


def _nothing(value: Any) -> None:
    return None


def _type_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "G"
    if isinstance(value, (int, np.integer)):
        return "I"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], np.ndarray):
        return "P"
    return "O"


class _Search:
    def __init__(self, train: Sequence[tuple[Grid, Grid]], tests: Sequence[Grid], settings: SearchSettings,
                 guidance: Guidance, dsl: DSL) -> None:
        self.dsl = dsl
        self.inputs = [i for i, _ in train] + list(tests)
        self.targets = [o for _, o in train]
        self.n_train = len(train)
        # when every train output differs from its input, a program leaving a test input as it is is wrong
        self.changes = all(i.shape != o.shape or not np.array_equal(i, o) for i, o in train)
        self.settings, self.guidance = settings, guidance
        self.colors = candidate_colors(self.targets, self.inputs[:self.n_train])
        self.cache: dict[tuple[Step, ...], tuple | None] = {(): tuple(self.inputs)}
        self._fns: dict[Step, Callable[[Any], Any]] = {}  # each step resolved once (step_function)
        self.seen: set[Any] = {_key(tuple(self.inputs))}
        self.expanded: set[tuple[Step, ...]] = set()
        self.checked: set[tuple[Step, ...]] = set()
        self.nodes = 0
        self.first: int | None = None
        self.found: list[tuple[Program, tuple[Grid, ...], str, str, int]] = []
        self.loop_nodes = -1  # nodes at the last check of the budget in the main loop (see found_at)
        self.misses: dict[str, float] = {}
        self.cost = self._costs()
        self.default = self._default_costs()
        self.portfolio = settings.default_share > 0 and self.cost != self.default
        self.heap: list[_Entry] = []
        self.heap_default: list[_Entry] = []
        self.heap_memory: list[_Entry] = []  # seeds and edits, with memory_nodes: tried before the search
        self._children: dict[tuple[str, str], _Children] = {}  # a value type's child steps and their costs
        self._lazy: dict[tuple[Step, ...], _Expansion] = {}  # expanded nodes, for a macro meeting their children
        self.path: dict[tuple[Step, ...], tuple[float, float]] = {(): (0.0, 0.0)}
        self.default_nodes = 0
        self.counter = 0
        self.experience: dict[Any, tuple[tuple[Step, ...], tuple]] = {}
        self.depth: dict[tuple[Step, ...], int] = {(): 0}
        self.macros = [p.steps for p in guidance.abstractions
                       if p.steps and all(st.name in dsl for st in p.steps)]

    def _default_costs(self) -> dict[str, float]:
        z = sum(p.weight for p in self.dsl.values())
        return {n: -math.log(p.weight / z) for n, p in self.dsl.items()}

    def _costs(self) -> dict[str, float]:
        g = self.guidance
        if g.prior is not None and g.priors:
            floor = 1e-6
            return {n: -math.log(max(float(g.prior.get(n, 0.0)), floor)) for n in self.dsl}
        weights = {n: p.weight for n, p in self.dsl.items()}
        seeds = self.guidance.seeds
        if seeds and self.guidance.priors:
            total = sum(s.weight for s in seeds)
            for s in seeds:
                for name in set(s.program.names) & set(weights):
                    weights[name] *= 1 + self.settings.boost * s.weight / total
        z = sum(weights.values())
        return {n: -math.log(w / z) for n, w in weights.items()}

    # -- evaluation ------------------------------------------------------------------
    def evaluate(self, steps: tuple[Step, ...]) -> tuple | None:
        if steps in self.cache:
            return self.cache[steps]
        parent = self.evaluate(steps[:-1])
        if parent is None or self.nodes >= self.limit():
            self.cache[steps] = None
            return None
        self.nodes += 1
        out = []
        step = steps[-1]
        fn = self._fns.get(step)
        if fn is None:
            try:
                fn = step_function(step, self.dsl)
            except KeyError:  # a remembered step this DSL lacks: it applies to nothing
                fn = _nothing
            self._fns[step] = fn
        for v in parent:
            try:
                r = fn(v)
            except (ValueError, IndexError, TypeError, KeyError):
                r = None
            if r is None:
                break
            out.append(r)
        values = tuple(out) if len(out) == len(parent) else None
        if values is not None and len({_type_of(v) for v in values}) != 1:
            values = None
        self.cache[steps] = values
        if values is not None and self.settings.collect and isinstance(values[0], np.ndarray):
            self._remember(steps, values[:self.n_train])
        return values

    def _remember(self, steps: tuple[Step, ...], outs: tuple) -> None:
        """Keep the first program reaching these train outputs, unless they are the inputs or constant."""
        key = _key(outs)
        if key in self.experience:
            return
        ins = self.inputs[:self.n_train]
        if all(o.shape == i.shape and np.array_equal(o, i) for o, i in zip(outs, ins)):
            return
        if len(outs) > 1 and all(o.shape == outs[0].shape and np.array_equal(o, outs[0]) for o in outs[1:]):
            return
        if all(np.all(o == o.flat[0]) for o in outs):
            return
        self.experience[key] = (steps, outs)

    def experiences(self) -> tuple[tuple[str, np.ndarray], ...]:
        """A seeded sample of at most ``collect`` remembered programs, with their transformation embeddings."""
        from ._features import transformation_features

        items = list(self.experience.values())
        if len(items) > self.settings.collect:
            seed = self.settings.sample_seed
            rng = np.random.default_rng(len(items) if seed == 0 else [len(items), seed])
            items = [items[i] for i in sorted(rng.choice(len(items), self.settings.collect, replace=False))]
        ins = self.inputs[:self.n_train]
        return tuple((str(Program(steps)), transformation_features(list(zip(ins, outs)))) for steps, outs in items)

    def limit(self) -> int:
        s = self.settings
        return s.budget if self.first is None else min(s.budget, self.first + int(s.extra * s.budget) + 1)

    def check(self, steps: tuple[Step, ...], values: tuple, source: str, seed_task: str) -> None:
        if not isinstance(values[0], np.ndarray):
            self._paint(steps, values, source, seed_task)
            return
        preds = values[:self.n_train]
        if all(p.shape == t.shape and np.array_equal(p, t) for p, t in zip(preds, self.targets)):
            self._solved(Program(steps), values[self.n_train:], source, seed_task)
            return
        cmap = fit_colormap(preds, self.targets)
        if cmap is not None:
            step = Step("colormap", cmap)
            tests = tuple(apply_step(step, v, self.dsl) for v in values[self.n_train:])
            self._solved(Program(steps + (step,)), tests, source, seed_task)
            return
        if len(steps) <= self.settings.window_depth and self._window(steps, values, source, seed_task):
            return
        if all(p.shape == t.shape for p, t in zip(preds, self.targets)):
            if len(steps) <= self.settings.rule_depth and self.try_rules(steps, values, source, seed_task):
                return
            score = float(np.mean([np.mean(p == t) for p, t in zip(preds, self.targets)]))
            self.misses[str(Program(steps))] = score

    def _paint(self, steps: tuple[Step, ...], values: tuple, source: str, seed_task: str) -> None:
        """A scene changed by an object step (``keep``, ``each``, ``recolor``) is also checked painted, on an
        empty canvas and over its grid: one node each, evaluated now rather than queued (a paint is the
        usual end of an object program, as a colour map is of a grid program)."""
        if not steps or self.dsl[steps[-1].name].src != "O" or not hasattr(values[0], "source"):
            return
        for name in _PAINTS:
            child = steps + (Step(name),)
            if name not in self.dsl or child in self.cache:
                continue
            painted = self.evaluate(child)
            if painted is not None and child not in self.checked:
                self.checked.add(child)
                self.check(child, painted, source, seed_task)

    def _window(self, steps: tuple[Step, ...], values: tuple, source: str, seed_task: str) -> bool:
        """The targets as one fixed window of the grids (``rule_window``), where their shapes differ."""
        preds = values[:self.n_train]
        if all(p.shape == t.shape for p, t in zip(preds, self.targets)):
            return False
        return self._rule("window", steps, values, source, seed_task)

    def try_rules(self, steps: tuple[Step, ...], values: tuple, source: str, seed_task: str) -> bool:
        """Fit each local rule on the train pairs; a rule that covers every test cell is a solution."""
        solved = False
        for kind in RULES:
            if kind == "window":  # a crop: tried where the shapes differ (_window)
                continue
            if kind in _NORMALISED_KINDS and len(steps) > self.settings.normalised_depth:
                continue
            solved = self._rule(kind, steps, values, source, seed_task) or solved
        return solved

    def _rule(self, kind: str, steps: tuple[Step, ...], values: tuple, source: str, seed_task: str) -> bool:
        """Rule ``kind`` fitted on the train pairs: a solution when it applies to every test grid."""
        table = fit_rule(kind, values[:self.n_train], self.targets)
        if table is None:
            return False
        tests = tuple(apply_rule(kind, table, v) for v in values[self.n_train:])
        if any(t is None for t in tests):
            return False
        self._solved(Program(steps + (Step(f"rule_{kind}"),)), tests, source, seed_task)
        return True

    def _solved(self, program: Program, tests: tuple, source: str, seed_task: str) -> None:
        if self.changes and any(t is None or (t.shape == i.shape and np.array_equal(t, i))
                                for t, i in zip(tests, self.inputs[self.n_train:])):
            return
        key = _key(tests)
        if any(_key(f[1]) == key for f in self.found):
            return
        if self.first is None:
            self.first = self.nodes
        # the smallest limit that lets this happen: every loop check so far passed, and its node was allowed
        self.found.append((program, tests, source, seed_task, max(self.loop_nodes + 1, self.nodes)))

    def done(self) -> bool:
        return len(self.found) >= self.settings.attempts or self.nodes >= self.limit()

    # -- the frontier -----------------------------------------------------------------
    def step_cost(self, step: Step, prev: str = "") -> float:
        g = self.guidance
        if g.pairs is not None and g.priors and g.pair_mix > 0 and prev in g.pairs:
            p = g.pair_mix * float(g.pairs[prev].get(step.name, 0.0)) + (1 - g.pair_mix) * math.exp(
                -self.cost.get(step.name, 0.0))
            c = -math.log(max(p, 1e-9))
        else:
            c = self.cost.get(step.name, 0.0)
        return c + self._arg_cost(step)

    def _arg_cost(self, step: Step) -> float:
        """Colour arguments cost more the later they come in this task's candidate colours; an option costs
        ``-log p(option | primitive)``."""
        if step.arg is None or isinstance(step.arg, tuple):
            return 0.0
        if isinstance(step.arg, str):
            prim = self.dsl.get(step.name)
            return 0.0 if prim is None else prim.arg_cost(step.arg)
        return 0.5 * (self.colors.index(step.arg) if step.arg in self.colors else len(self.colors))

    def default_step_cost(self, step: Step) -> float:
        return self.default.get(step.name, 0.0) + self._arg_cost(step)

    def push(self, priority: float, steps: tuple[Step, ...], source: str, seed_task: str = "",
             heap: list[_Entry] | None = None) -> None:
        self.counter += 1
        heapq.heappush(self.heap if heap is None else heap, (priority, self.counter, steps, source, seed_task, None))

    def children(self, kind: str, prev: str) -> _Children:
        """The child steps of a value of type ``kind`` after a step named ``prev``, in the DSL's order, with
        their costs in both frontiers (computed once per search; the costs depend only on these two)."""
        key = (kind, prev if self.guidance.pairs is not None else "")
        found = self._children.get(key)
        if found is None:
            steps = [Step(prim.name, arg) for prim in self.dsl.values() if prim.src == kind
                     for arg in prim.options(self.colors)]
            found = self._children[key] = _Children(
                tuple(steps), np.array([self.step_cost(st, prev) for st in steps], dtype=np.float64),
                np.array([self.default_step_cost(st) for st in steps], dtype=np.float64),
                {st: i for i, st in enumerate(steps)})
        return found

    def expansion(self, steps: tuple[Step, ...], values: tuple, cost: float
                  ) -> tuple[int, float, str, float, str] | None:
        """What a node's children are pushed with: its depth, its cost in the default frontier, its value type,
        the shape penalty and its last step's name (``"^"`` at the start); None at the depth limit."""
        depth = self.depth.get(steps, len(steps))
        if depth >= self.settings.max_depth:
            return None
        kind = _type_of(values[0])
        h = 0.0
        if kind == "G" and not all(v.shape == t.shape for v, t in zip(values, self.targets)):
            h = self.settings.shape_penalty
        return depth, self.path.get(steps, (cost, cost))[1], kind, h, steps[-1].name if steps else "^"

    def expand(self, steps: tuple[Step, ...], values: tuple, cost: float, source: str, seed_task: str) -> None:
        """Add a node's children to the frontier(s), lazily: one heap entry per frontier stands for all the
        search children, ordered as pushing each child would order them (cost, then push order); the next
        sibling joins the heap when one is taken (:meth:`take`). The pop order, and so every result, is the
        same as pushing every child at once; the search evaluates ~2% of the children it pushes, so pushing
        each cost more than running the primitives (issue 39's search speed)."""
        found = self.expansion(steps, values, cost)
        if found is None:
            return
        depth, base_default, kind, h, prev = found
        kids = self.children(kind, prev)
        n = len(kids.steps)
        if n:
            per = 2 if self.portfolio else 1  # counters as pushing each child to each frontier would take them
            base = self.counter
            costs = (cost + kids.cost) + h
            defaults = (base_default + kids.default) + h if self.portfolio else np.zeros(n)
            exp = _Expansion(steps, depth + 1, kids, costs, defaults,
                             np.argsort(costs, kind="stable"), np.argsort(defaults, kind="stable"),
                             base + 1 + per * np.arange(n), base + 2 + 2 * np.arange(n))
            self.counter += per * n
            self._lazy[steps] = exp
            self._enqueue(exp, False, 0)
            if self.portfolio:
                self._enqueue(exp, True, 0)
        for macro in self.macros:
            if self.dsl[macro[0].name].src != kind:
                continue
            c, p = 0.0, prev
            for st in macro:
                c += self.step_cost(st, p)
                p = st.name
            target = steps + macro
            self._settle(target)  # as a single step from an expanded node, it was pushed before this
            self.push(cost + self.settings.abstraction_discount * c + h, target, source, seed_task)
            self.depth.setdefault(target, depth + 1)

    def _enqueue(self, exp: _Expansion, default: bool, k: int) -> None:
        """Put the ``k``-th cheapest child of ``exp`` (in one frontier's order) on that frontier."""
        order = exp.order_default if default else exp.order
        if k >= len(order):
            return
        i = int(order[k])
        if default:
            heapq.heappush(self.heap_default, (float(exp.defaults[i]), int(exp.counters_default[i]), None, "search", "",
                                               (exp, True, k)))
        else:
            heapq.heappush(self.heap, (float(exp.costs[i]), int(exp.counters[i]), None, "search", "", (exp, False, k)))

    def take(self, entry: _Entry) -> tuple[float, tuple[Step, ...], str, str]:
        """A popped entry as (cost, steps, source, seed task); a lazy child is made a node and its next sibling
        queued, and it gets the depth and path its push would have given it."""
        cost, _, steps, source, seed_task, lazy = entry
        if lazy is None:
            assert steps is not None
            if source == "search":  # a macro's program: as a single step from an expanded node it was pushed too
                self._settle(steps)
            return cost, steps, source, seed_task
        exp, default, k = lazy
        self._enqueue(exp, default, k + 1)
        i = int((exp.order_default if default else exp.order)[k])
        child = exp.parent + (exp.kids.steps[i],)
        self.depth.setdefault(child, exp.depth)
        if self.portfolio:
            self.path.setdefault(child, (float(exp.costs[i]), float(exp.defaults[i])))
        return cost, child, source, seed_task

    def _settle(self, steps: tuple[Step, ...]) -> None:
        """Give ``steps`` the depth and path its push as a search child would have given it, if its parent was
        expanded and has it among its children (a macro reaching the same program must not take them)."""
        exp = self._lazy.get(steps[:-1])
        i = None if exp is None else exp.kids.position.get(steps[-1])
        if exp is None or i is None:
            return
        self.depth.setdefault(steps, exp.depth)
        if self.portfolio:
            self.path.setdefault(steps, (float(exp.costs[i]), float(exp.defaults[i])))

    def visit(self, steps: tuple[Step, ...], cost: float, source: str, seed_task: str) -> None:
        """Evaluate a node and check it; a search node with new values is also expanded.

        Seeds and edits are only checked: their cost holds a bonus that their extensions must not
        inherit, and the search expands the same programs when their own cost comes up.
        """
        values = self.evaluate(steps)
        if values is None:
            return
        if source != "search":
            if steps not in self.checked:
                self.checked.add(steps)
                self.check(steps, values, source, seed_task)
            return
        key = _key(values)
        self.expanded.add(steps)
        if key in self.seen:
            return
        self.seen.add(key)
        if steps not in self.checked:
            self.checked.add(steps)
            self.check(steps, values, source, seed_task)
        self.expand(steps, values, cost, "search", "")

    def run(self) -> None:
        g = self.guidance
        if g.seeds and g.programs_first:
            self.try_seeds()
        self.check((), tuple(self.inputs), "search", "")
        self.expand((), tuple(self.inputs), 0.0, "search", "")
        while self.heap_memory and self.nodes < self.settings.memory_nodes and not self.done():
            self.loop_nodes = self.nodes  # the memory's phase: seeds and edits, cheapest first, checked only
            cost, _, steps, source, seed_task, _ = heapq.heappop(self.heap_memory)
            if steps is not None and steps not in self.checked:
                self.visit(steps, cost, source, seed_task)
        share = self.settings.default_share
        while (self.heap or self.heap_default) and not self.done():
            self.loop_nodes = self.nodes
            from_default = bool(self.heap_default) and (not self.heap or share >= 1.0
                                                        or self.default_nodes < share * self.nodes)
            before = self.nodes
            cost, steps, source, seed_task = self.take(heapq.heappop(self.heap_default if from_default else self.heap))
            if steps in self.expanded or (source != "search" and steps in self.checked):
                continue
            if from_default:
                cost = self.path[steps][0]  # its children are ordered in both frontiers by their own costs
            self.visit(steps, cost, source, seed_task)
            if from_default:
                self.default_nodes += self.nodes - before

    def try_seeds(self) -> None:
        total = sum(s.weight for s in self.guidance.seeds)
        heap = self.heap_memory if self.settings.memory_nodes > 0 else self.heap
        for seed in self.guidance.seeds:  # remembered programs join the frontier ahead of their cost
            steps = tuple(s for s in seed.program.steps if s.name not in LEARNED)
            if not steps or any(s.name not in self.dsl for s in steps):
                continue
            bonus = self.settings.seed_bonus * seed.weight / total
            for variant in _recoloured(steps, self.colors):
                self.push(sum(self.step_cost(s) for s in variant) - bonus, variant, "seed", seed.task_id, heap)
        top = sorted(self.guidance.seeds, key=lambda s: -s.weight)[:self.settings.edit_seeds]
        for seed in top:  # the typed one-step edits of the closest seeds join the frontier with a bonus
            steps = tuple(s for s in seed.program.steps if s.name not in LEARNED)
            bonus = self.settings.edit_bonus * seed.weight / total
            for _, variant in typed_edits(steps, self.dsl, self.colors, self.settings.edits):
                tier = _EDIT_TIER if heap is self.heap_memory else 0.0  # the memory's phase: every seed first
                self.push(tier + sum(self.step_cost(s) for s in variant) - bonus, variant, "edit", seed.task_id, heap)

    def result(self, seconds: float) -> SearchResult:
        found = self.found[:self.settings.attempts]
        guesses = self.guesses()
        misses = tuple(sorted(self.misses.items(), key=lambda kv: -kv[1])[:3])
        return SearchResult(programs=tuple(f[0] for f in found), predictions=tuple(f[1] for f in found),
                            nodes=self.nodes, nodes_to_solution=self.first, seconds=seconds,
                            source=found[0][2] if found else "", seed_task=found[0][3] if found else "",
                            near_misses=misses,
                            experiences=self.experiences() if self.settings.collect else (),
                            found_at=tuple(f[4] for f in found), guesses=tuple(g[0] for g in guesses),
                            guess_predictions=tuple(g[1] for g in guesses), attempts=self.settings.attempts)

    def guesses(self) -> list[tuple[Program, tuple[Grid, ...]]]:
        """The cell classifiers' guesses (none when the task leaves every grid as it is, or the setting is off)."""
        if not self.settings.guesses:
            return []
        tests = self.inputs[self.n_train:]
        train = list(zip(self.inputs[:self.n_train], self.targets))
        out = []
        for kind, answers in cell_guesses(train, tests, self.settings.attempts):
            if self.changes and any(np.array_equal(a, i) for a, i in zip(answers, tests)):
                continue
            out.append((Program((Step(f"rule_{kind}"),)), answers))
        return out


def _recoloured(steps: tuple[Step, ...], colors: tuple[int, ...]) -> list[tuple[Step, ...]]:
    """The steps as remembered, then with each colour argument replaced by this task's candidates."""
    out = [steps]
    for i, s in enumerate(steps):
        if isinstance(s.arg, int):
            out += [steps[:i] + (Step(s.name, c),) + steps[i + 1:] for c in colors if c != s.arg]
    return out


def search_task(train: Sequence[tuple[Grid, Grid]], tests: Sequence[Grid], settings: SearchSettings = SearchSettings(),
                guidance: Guidance = Guidance(), dsl: DSL | None = None) -> SearchResult:
    """Search for programs that map every train input to its output; predict the test outputs.

    Parameters
    ----------
    train : sequence of (Grid, Grid)
        Input/output pairs, each of shape (h, w).
    tests : sequence of Grid
        Test inputs.
    settings : SearchSettings
    guidance : Guidance
        Seeds from the memory (empty: an unguided search).
    dsl : DSL, optional
        The primitives to search over (default: the default DSL, ``PRIMITIVES``).

    Examples
    --------
    >>> g = np.array([[1, 0, 0]], np.int8)
    >>> r = search_task([(g, g[:, ::-1])], [np.array([[5, 6, 7]], np.int8)])
    >>> str(r.programs[0]), r.predictions[0][0].tolist()
    ('flip(h)', [[7, 6, 5]])
    """
    t0 = time.perf_counter()
    if dsl is not None and not isinstance(dsl, DSL):
        raise InvalidInputError(f"dsl is a DSL (e.g. PRIMITIVES.without([...])), got {type(dsl).__name__}")
    s = _Search(train, tests, settings, guidance, PRIMITIVES if dsl is None else dsl)
    s.run()
    r = s.result(0.0)
    return replace(r, seconds=time.perf_counter() - t0)
