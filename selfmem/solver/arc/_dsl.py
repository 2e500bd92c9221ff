"""Programs of the grid DSL and their interpreter.

A :class:`Program` is a chain of steps from the input grid to a grid, written
``"rot(90) | crop(content) | fill_enclosed(4)"``; each step names a primitive of a DSL
(:mod:`._primitives`; the default one is built in :mod:`._registry`) with its argument, or a step
learned from the train pairs: the final ``colormap(1>2,3>4)``, or a local rule (``rule_patch3``, ...).
Programs written with retired names (``rot90``, ``gravity_down``) still parse, as the step that
replaced them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._errors import InvalidInputError
from ._grid import MAX_SIDE, Grid
from ._cells import CELL_KINDS, apply_cells, fit_cells
from ._learned import RULES, apply_colormap, apply_rule, fit_colormap, fit_rule
from ._primitives import DSL, Primitive
from ._registry import DEFAULT_DSL

__all__ = ["Primitive", "DSL", "Step", "Program", "PRIMITIVES", "LEARNED", "run_program", "apply_step",
           "fit_colormap", "apply_colormap", "candidate_colors"]

PRIMITIVES: DSL = DEFAULT_DSL
"""The default DSL (what a search uses unless given ``dsl=``)."""

LEARNED = ("colormap",) + tuple(f"rule_{k}" for k in RULES) + tuple(f"rule_{k}" for k in CELL_KINDS)
"""Steps fitted to each task's train pairs (not searched over: tried at every grid the search reaches)."""
_LEARNED_NAMES = frozenset(LEARNED)


# -- programs --------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One step: a primitive's name and its argument (a colour, an option's name, or the colour map's pairs)."""

    name: str
    arg: int | str | tuple[tuple[int, int], ...] | None = None
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # a search hashes programs (tuples of steps) millions of times: the hash is computed once
        object.__setattr__(self, "_hash", hash((self.name, self.arg)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Step], tuple[Any, ...]]:
        return Step, (self.name, self.arg)  # string hashes differ between processes: rehashed on unpickling

    def __str__(self) -> str:
        if self.arg is None:
            return self.name
        if isinstance(self.arg, tuple):
            return f"{self.name}({','.join(f'{a}>{b}' for a, b in self.arg)})"
        return f"{self.name}({self.arg})"


_STEP = re.compile(r"^([a-z_0-9]+)(?:\(([0-9a-z_>,\s]*)\))?$")


@dataclass(frozen=True)
class Program:
    """A chain of steps from the input grid to the output grid.

    >>> p = Program.parse("rot(90) | fill_enclosed(4)")
    >>> str(p), len(p), str(Program.parse("gravity_down"))
    ('rot(90) | fill_enclosed(4)', 2, 'gravity(down)')
    """

    steps: tuple[Step, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        return " | ".join(str(s) for s in self.steps) or "identity"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @classmethod
    def parse(cls, text: str, dsl: DSL | None = None) -> Program:
        """Read ``"a | b(3) | c(down) | colormap(1>2)"`` against ``dsl`` (default: the default DSL); raises
        InvalidInputError on unknown or mistyped steps."""
        if not isinstance(text, str):
            raise InvalidInputError(f"a program is text like 'rot(90) | crop(content)', got {type(text).__name__}")
        dsl = PRIMITIVES if dsl is None else dsl
        text = text.strip()
        if text == "identity":
            return cls(())
        steps, kind = [], "G"
        for part in text.split("|"):
            m = _STEP.match(part.strip())
            if not m:
                raise InvalidInputError(f"cannot read program step {part.strip()!r}: expected name or name(args)")
            name, raw = m.group(1), m.group(2)
            if name == "colormap":
                try:
                    pairs = tuple(tuple(int(x) for x in pr.split(">")) for pr in (raw or "").split(",") if pr.strip())
                except ValueError as exc:
                    raise InvalidInputError(f"colormap arguments are a>b pairs, got {raw!r}") from exc
                if kind != "G" or any(len(p) != 2 or not all(0 <= v <= 9 for v in p) for p in pairs):
                    raise InvalidInputError(f"bad colormap step {part.strip()!r}")
                steps.append(Step(name, tuple((p[0], p[1]) for p in pairs)))
                continue
            if name in LEARNED:
                if kind != "G" or raw:
                    raise InvalidInputError(f"{name} follows a grid step and takes no argument")
                steps.append(Step(name))
                continue
            step = _read_step(dsl, name, raw, text)
            prim = dsl[step.name]
            if prim.src != kind:
                raise InvalidInputError(f"{step.name} takes a {prim.src} value but gets a {kind} value in {text!r}")
            steps.append(step)
            kind = prim.dst
        if kind != "G":
            raise InvalidInputError(f"program {text!r} must end with a grid, ends with type {kind}")
        return cls(tuple(steps))


def _read_step(dsl: DSL, name: str, raw: str | None, text: str) -> Step:
    """One primitive step with its argument checked against the primitive's kind (or a retired name's step)."""
    raw = None if raw is None or not raw.strip() else raw.strip()
    if name not in dsl and name in dsl.aliases:
        if raw is not None:
            raise InvalidInputError(f"{name} takes no argument (it is now written {dsl.aliases[name][0]}(...))")
        return Step(*dsl.aliases[name])
    prim = dsl.get(name)
    if prim is None:
        raise InvalidInputError(f"unknown primitive {name!r} in {text!r}; known: {dsl.signatures()}")
    if prim.arg is None:
        if raw is not None:
            raise InvalidInputError(f"{name} takes no argument")
        return Step(name)
    if raw is None:
        raise InvalidInputError(f"{name} needs an argument: {prim.signature()}")
    if prim.arg == "colour":
        if not raw.isdigit() or not 0 <= int(raw) <= 9:
            raise InvalidInputError(f"{name}: colour must be 0-9, got {raw!r}")
        return Step(name, int(raw))
    if raw not in prim.choices:
        raise InvalidInputError(f"{name}: argument {raw!r} is not one of {prim.signature()}")
    return Step(name, raw)


def apply_step(step: Step, value: Any, dsl: DSL | None = None) -> Any:
    """One step on one value; ``None`` when the primitive does not apply (or is a rule needing train pairs)."""
    return step_function(step, dsl)(value)


def step_function(step: Step, dsl: DSL | None = None) -> Callable[[Any], Any]:
    """:func:`apply_step` of ``step`` as a function of the value alone (a search resolves each step once and
    applies it to every grid of a task)."""
    if step.name == "colormap":
        pairs = step.arg
        assert isinstance(pairs, tuple)  # Program.parse gives a colour map its pairs
        return lambda value: apply_colormap(value, pairs)
    if step.name in _LEARNED_NAMES:
        return lambda value: None
    fn, arg = (PRIMITIVES if dsl is None else dsl)[step.name].fn, step.arg

    def run(value: Any) -> Any:
        out = fn(value) if arg is None else fn(value, arg)
        if isinstance(out, np.ndarray) and (out.size == 0 or max(out.shape) > MAX_SIDE):
            return None
        return out

    return run


def run_program(program: Program, grid: Grid, train: Sequence[tuple[Grid, Grid]] = (),
                dsl: DSL | None = None) -> Grid | None:
    """Apply every step (primitives of ``dsl``, default the default DSL); ``None`` when a step does not apply.

    Rule steps (``rule_patch3``, ...) are fitted on ``train`` (input/output pairs) on the way.

    >>> run_program(Program.parse("flip(h)"), np.array([[1, 2]], np.int8)).tolist()
    [[2, 1]]
    """
    value: Any = grid
    values: list[Any] = [i for i, _ in train]
    for step in program.steps:
        if step.name in LEARNED and step.name != "colormap":
            if not values or any(v is None for v in values):
                return None
            kind, targets = step.name[5:], [o for _, o in train]
            if kind in CELL_KINDS:
                tree = fit_cells(kind, values, targets)
                value = None if tree is None else apply_cells(kind, tree, value)
            else:
                table = fit_rule(kind, values, targets)
                value = None if table is None else apply_rule(kind, table, value)
        else:
            value = apply_step(step, value, dsl)
            values = [None if v is None else apply_step(step, v, dsl) for v in values]
        if value is None:
            return None
    return value if isinstance(value, np.ndarray) else None


def candidate_colors(targets: Sequence[Grid], inputs: Sequence[Grid], limit: int = 3) -> tuple[int, ...]:
    """Colour arguments worth trying: colours new in the outputs first, then those every output uses."""
    new: dict[int, int] = {}
    common = set(range(10))
    for i, t in zip(inputs, targets):
        common &= set(np.unique(t).tolist())
        for c in set(np.unique(t).tolist()) - set(np.unique(i).tolist()):
            new[c] = new.get(c, 0) + 1
    order = sorted(new, key=lambda c: -new[c]) + sorted(common - set(new) - {0})
    return tuple(order[:limit])
