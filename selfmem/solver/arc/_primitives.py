"""Primitives, their typed arguments, and the DSL: an explicit, ordered collection of primitives.

Values have one of four types: ``G`` a grid, ``O`` a tuple of objects, ``P`` a pair of grids of one
shape, ``I`` a count. A primitive maps one type to another and takes at most one argument, of one of two
kinds:

- ``colour``: a colour 0-9; the search tries the colours the task's train outputs use (fitted per task);
- ``choice``: one of a fixed set of named options (a direction, an axis, a factor, an object predicate),
  each with its own prior weight, e.g. ``gravity(down)``, ``tile(2x2)``, ``select(largest)``.

A primitive carries a weight: its prior probability before any memory (normalised over the DSL; a
choice primitive's weight is the sum of its options' weights, so ``-log p(name) - log p(option | name)``
is the option's cost). A primitive that does not apply (no objects, a grid that would exceed 30 cells
a side) returns ``None`` and the search skips it.

The functions live in modules by concept and are marked where they are defined::

    @primitive("G", "O", weight=0.8)
    def objs_color(g): ...

Marking has no side effect: :class:`DSL` objects are built explicitly (``_registry.DEFAULT_DSL``, or
``DSL([...])`` in a test or benchmark), and their order is the search's tie-break order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..._errors import InvalidInputError
from ._grid import MAX_SIDE, Grid

__all__ = ["Primitive", "DSL", "TYPES", "primitive", "spec_of", "family", "fits"]

TYPES = ("G", "O", "P", "I")
"""Value types: grid, objects, pair of grids, integer count."""

Arg = int | str
"""A step's argument: a colour (int 0-9) or an option's name."""


@dataclass(frozen=True)
class Primitive:
    """One DSL primitive: ``fn(value[, arg]) -> value or None`` from type ``src`` to type ``dst``.

    Attributes
    ----------
    arg : {None, "colour", "choice"}
        The kind of argument it takes.
    choices, choice_weights : tuple
        A choice primitive's options, in the search's order, and their prior weights (same length).
    weight : float
        Prior weight of the name (for a choice primitive the sum of ``choice_weights``).
    """

    name: str
    fn: Callable[..., Any]
    src: str
    dst: str
    arg: str | None = None
    weight: float = 1.0
    choices: tuple[str, ...] = ()
    choice_weights: tuple[float, ...] = ()

    @property
    def colour_arg(self) -> bool:
        return self.arg == "colour"

    def options(self, colours: Sequence[int]) -> tuple[Arg | None, ...]:
        """The arguments the search tries: the task's candidate colours, every choice, or ``(None,)``."""
        if self.arg == "colour":
            return tuple(colours)
        if self.arg == "choice":
            return self.choices
        return (None,)

    def arg_cost(self, arg: Arg | None) -> float:
        """``-log p(option | name)`` for a choice (0 for other kinds; colours are costed by the search)."""
        if self.arg != "choice" or arg not in self.choices:
            return 0.0
        w = self.choice_weights[self.choices.index(str(arg))]
        return -math.log(w / self.weight)

    def signature(self) -> str:
        """How it is written: ``name``, ``name(colour)`` or ``name(a|b|c)``."""
        if self.arg == "colour":
            return f"{self.name}(colour)"
        if self.arg == "choice":
            return f"{self.name}({'|'.join(self.choices)})"
        return self.name


@dataclass(frozen=True)
class _Spec:
    src: str
    dst: str
    weight: float
    colour: bool


F = TypeVar("F", bound=Callable[..., Any])


def primitive(src: str = "G", dst: str = "G", *, weight: float = 1.0, colour: bool = False) -> Callable[[F], F]:
    """Mark the decorated function as a primitive named after it (no registration: see :class:`DSL`).

    Parameters
    ----------
    src, dst : {"G", "O", "P", "I"}
        The types it takes and returns.
    weight : float
        Its prior weight (> 0) before any memory.
    colour : bool
        Whether it takes a colour argument (0-9) after the value.
    """
    if src not in TYPES or dst not in TYPES or not weight > 0:
        raise ValueError(f"primitive types are {TYPES} and the weight is > 0, got {src!r}->{dst!r}, {weight}")

    def mark(fn: F) -> F:
        if hasattr(fn, "_primitive_spec"):
            raise ValueError(f"primitive {fn.__name__!r} is marked twice")
        fn._primitive_spec = _Spec(src, dst, weight, colour)  # type: ignore[attr-defined]
        return fn

    return mark


def spec_of(fn: Callable[..., Any]) -> Primitive:
    """The primitive a marked function defines."""
    spec = getattr(fn, "_primitive_spec", None)
    if spec is None:
        raise ValueError(f"{getattr(fn, '__name__', fn)!r} is not marked with @primitive")
    return Primitive(fn.__name__, fn, spec.src, spec.dst, "colour" if spec.colour else None, spec.weight)


@dataclass(frozen=True)
class _Dispatch:
    """A choice primitive's function: the option names the variant applied."""

    table: Mapping[str, Callable[..., Any]]

    def __call__(self, value: Any, arg: str) -> Any:
        return self.table[arg](value)


def family(name: str, variants: Sequence[tuple[str, Callable[..., Any]]]) -> Primitive:
    """One choice primitive from marked one-argument functions of one type: ``(option, function)`` pairs.

    >>> def up(g): return g
    >>> def down(g): return g
    >>> _ = primitive(weight=0.5)(up), primitive(weight=1.5)(down)
    >>> p = family("move", [("up", up), ("down", down)])
    >>> p.signature(), p.weight, round(p.arg_cost("down"), 3)
    ('move(up|down)', 2.0, 0.288)
    """
    specs = [spec_of(fn) for _, fn in variants]
    if not specs or len({(s.src, s.dst) for s in specs}) != 1 or any(s.arg is not None for s in specs):
        raise ValueError(f"family {name!r}: variants are argument-free functions of one type")
    options = tuple(o for o, _ in variants)
    if len(set(options)) != len(options):
        raise ValueError(f"family {name!r}: options repeat")
    weights = tuple(s.weight for s in specs)
    return Primitive(name, _Dispatch({o: fn for o, fn in variants}), specs[0].src, specs[0].dst, "choice",
                     sum(weights), options, weights)


@dataclass(frozen=True)
class DSL(Mapping[str, Primitive]):
    """An ordered collection of primitives by name, with the old names of options (``aliases``).

    Iteration order is the search's tie-break order. ``aliases`` maps a retired primitive name to the
    step that replaced it (``"gravity_down" -> ("gravity", "down")``), so that programs remembered in
    earlier sessions still parse.

    >>> from selfmem.solver.arc import PRIMITIVES
    >>> small = PRIMITIVES.only(["rot", "crop"])
    >>> list(small), len(PRIMITIVES.without(["rot"])) == len(PRIMITIVES) - 1
    (['rot', 'crop'], True)
    """

    primitives: tuple[Primitive, ...]
    aliases: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    _by_name: dict[str, Primitive] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Primitive] = {}
        for p in self.primitives:
            if not isinstance(p, Primitive):
                raise InvalidInputError(f"a DSL holds Primitive objects, got {type(p).__name__}")
            if p.name in by_name:
                raise InvalidInputError(f"primitive {p.name!r} appears twice in the DSL")
            if p.src not in TYPES or p.dst not in TYPES:
                raise InvalidInputError(f"primitive {p.name!r} has types {p.src!r}->{p.dst!r}; types are {TYPES}")
            by_name[p.name] = p
        object.__setattr__(self, "_by_name", by_name)

    def __getitem__(self, name: str) -> Primitive:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __hash__(self) -> int:
        return hash(tuple(self._by_name))

    def without(self, names: Sequence[str]) -> DSL:
        """This DSL less the named primitives (for leave-one-out studies)."""
        unknown = set(names) - set(self._by_name)
        if unknown:
            raise InvalidInputError(f"not in this DSL: {', '.join(sorted(unknown))}")
        drop = set(names)
        return DSL(tuple(p for p in self.primitives if p.name not in drop),
                   {k: v for k, v in self.aliases.items() if v[0] not in drop})

    def only(self, names: Sequence[str]) -> DSL:
        """The named primitives of this DSL, in this DSL's order."""
        unknown = set(names) - set(self._by_name)
        if unknown:
            raise InvalidInputError(f"not in this DSL: {', '.join(sorted(unknown))}")
        keep = set(names)
        return DSL(tuple(p for p in self.primitives if p.name in keep),
                   {k: v for k, v in self.aliases.items() if v[0] in keep})

    def signatures(self) -> str:
        """Every primitive as it is written, for a prompt or a report."""
        return ", ".join(p.signature() for p in self.primitives)


def fits(g: Grid) -> Grid | None:
    """``g`` when it is at most 30 cells a side, else ``None``."""
    return g if max(g.shape) <= MAX_SIDE else None
