"""Cell classifiers: a last guess for same-shape tasks the program search leaves unanswered.

Where the search finds fewer verified programs than the attempts allowed, each remaining attempt may be
filled by a decision tree that predicts every output cell from features of the input cell (its colour, its
neighbours, its four ray hits, its object, counts, its position), fitted on the train pairs' cells. A tree
that does not reproduce every train output exactly is no guess. The feature sets form a cascade from the
fewest features to the most, each fitted twice: on the output colours as given, and with "keep the input
colour" as one class (``_keep``), which a tree learns without naming every colour. The first trees whose
test answers differ fill the open attempts. A guess is never preferred to a verified program: it takes
only an attempt no program took.

The cascade and its feature sets were chosen on the ARC training tasks (memory-free search at 2,000
nodes, ``benchmarks/arc_dsl_probe.py``): 202 -> 216 tasks solved, none lost (a guess displaces no program);
on the evaluation tasks, in the first run of this design, 70 -> 79. As a step of a program the guess is written ``rule_<kind>``
(``rule_cells_local``, ...): :func:`~selfmem.solver.arc.run_program` refits it on the train pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..._errors import InvalidInputError
from ._grid import Grid, by_grid
from ._learned import _object_cells
from ._relational import _between, _enclosed, _hits

if TYPE_CHECKING:
    from sklearn.tree import DecisionTreeClassifier

__all__ = ["CELL_KINDS", "CASCADE", "fit_cells", "apply_cells", "cell_guesses"]

_KEEP = -1  # the class "the input colour" in the _keep variants


def _local(g: Grid) -> list[np.ndarray]:
    h, w = g.shape
    pad = np.pad(g.astype(np.int64), 1, constant_values=-1)
    out = [pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    left, right, up, down = _hits(g)
    return out + [left, right, up, down, _between(left, right), _between(up, down)]


def _object(g: Grid) -> list[np.ndarray]:
    size, rank, border, holes = _object_cells(g)
    return [size, rank, border, holes, _enclosed(g)]


def _counts(g: Grid) -> list[np.ndarray]:
    h, w = g.shape
    fg = g != 0
    per_colour = np.bincount(g.ravel().astype(np.int64), minlength=10)
    return [per_colour[g], np.repeat(fg.sum(1)[:, None], w, 1), np.repeat(fg.sum(0)[None, :], h, 0)]


def _position(g: Grid) -> list[np.ndarray]:
    h, w = g.shape
    r, c = np.indices(g.shape)
    return [r, c, h - 1 - r, w - 1 - c, r % 2, c % 2, r % 3, c % 3]


_PARTS = (_local, _object, _counts, _position)
_SETS = {"local": 1, "object": 2, "counts": 3, "all": 4}  # each set: the first so many parts
CELL_KINDS = tuple(f"cells_{name}{keep}" for name in _SETS for keep in ("", "_keep"))
# fewest features first; with objects the keep-class variant goes first (chosen on training)
CASCADE = ("cells_local", "cells_local_keep", "cells_object_keep", "cells_object", "cells_counts_keep",
           "cells_counts", "cells_all_keep", "cells_all")


@by_grid(64)
def _all_features(g: Grid) -> tuple[np.ndarray, tuple[int, ...]]:
    """Every part's cell features of grid ``g``, shape (h * w, n_features), read-only, and the column where
    each part ends (computed once per grid: the sets are prefixes of it)."""
    cols: list[np.ndarray] = []
    ends = []
    for part in _PARTS:
        cols += part(g)
        ends.append(len(cols))
    out = np.stack([np.asarray(a, np.float64).ravel() for a in cols], axis=1)
    out.setflags(write=False)
    return out, tuple(ends)


def _features(kind: str, g: Grid) -> np.ndarray:
    """The cell features of ``kind``'s set for grid ``g``, shape (h * w, n_features)."""
    x, ends = _all_features(g)
    return x[:, :ends[_SETS[kind[len("cells_"):].removesuffix("_keep")] - 1]]


def fit_cells(kind: str, preds: Sequence[Grid], targets: Sequence[Grid]) -> DecisionTreeClassifier | None:
    """A decision tree of ``kind`` reproducing every target from its grid, or ``None``.

    Parameters
    ----------
    kind : str
        One of :data:`CELL_KINDS`.
    preds, targets : sequence of Grid
        Grids and the outputs wanted, pairwise of one shape (h_i, w_i).
    """
    from sklearn.tree import DecisionTreeClassifier

    if kind not in CELL_KINDS:
        raise InvalidInputError(f"unknown cell classifier {kind!r}; known: {CELL_KINDS}")
    if not preds or any(p.shape != t.shape for p, t in zip(preds, targets)):
        return None
    keep = kind.endswith("_keep")
    x = np.concatenate([_features(kind, p) for p in preds])
    y = np.concatenate([np.where((t == p) & keep, _KEEP, t).ravel() for p, t in zip(preds, targets)])
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)
    if not np.array_equal(tree.predict(x), y):
        return None
    return tree


def apply_cells(kind: str, tree: DecisionTreeClassifier, g: Grid) -> Grid:
    """The fitted tree of ``kind`` on grid ``g``: the predicted grid, shape of ``g``."""
    y = tree.predict(_features(kind, g)).reshape(g.shape)
    return np.where(y == _KEEP, g, y).astype(g.dtype)


def cell_guesses(train: Sequence[tuple[Grid, Grid]], tests: Sequence[Grid], n: int,
                 exclude: Sequence[tuple[Grid, ...]] = ()) -> list[tuple[str, tuple[Grid, ...]]]:
    """Up to ``n`` guesses ``(kind, answers per test input)`` down the cascade, none equal to ``exclude``'s.

    Parameters
    ----------
    train : sequence of (Grid, Grid)
        The task's train pairs; no guess unless every pair keeps its shape.
    tests : sequence of Grid
        Test inputs.
    n : int
        Guesses wanted (the attempts no program took).
    exclude : sequence of tuple of Grid
        Answers already given (a guess equal to one is skipped).

    Examples
    --------
    >>> g = np.array([[1, 0], [0, 0]], np.int8)
    >>> [k for k, _ in cell_guesses([(g, np.where(g == 1, 2, g))], [g.T], 1)]
    ['cells_local']
    """
    if n <= 0 or not train or any(i.shape != o.shape for i, o in train):
        return []
    inputs, outputs = [i for i, _ in train], [o for _, o in train]
    seen = [tuple(a) for a in exclude]
    out: list[tuple[str, tuple[Grid, ...]]] = []
    for kind in CASCADE:
        tree = fit_cells(kind, inputs, outputs)
        if tree is None:
            continue
        answers = tuple(apply_cells(kind, tree, t) for t in tests)
        if any(all(np.array_equal(a, b) for a, b in zip(answers, prev)) for prev in seen):
            continue
        seen.append(answers)
        out.append((kind, answers))
        if len(out) == n:
            break
    return out
