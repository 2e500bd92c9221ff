"""Metadata filters (``where=``) with JSON semantics, compiled to DuckDB SQL.

Semantics (the property test checks them against :func:`evaluate`, a plain-Python reference):

- numbers compare as numbers: ``1`` equals ``1.0``; integers compare exactly (also above 2**53);
- strings compare as Unicode strings (order: by code point); booleans equal only booleans (``True`` is
  not ``1``); ``None`` matches a stored ``null``; arrays and objects compare by value;
- ``$gt $gte $lt $lte`` compare a number with numbers and a string with strings (other stored types
  never match); ``$ne`` and ``$nin`` also match records that lack the key;
- a key is a name or a dotted path (``"a.b"``): segments of letters, digits, ``_`` and ``-``.

Invalid filters (an unknown operator, NaN, an empty operator dict, a malformed key, a value that is
not JSON) raise :class:`InvalidInputError` before anything runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._errors import InvalidInputError
from .._text import unicode_text
from .._types import JSON

__all__ = ["Pred", "check_where", "to_sql", "evaluate", "lookup", "MISSING"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_NUM_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')"
_INT_LIMIT = 2**127
MISSING = object()
"""What :func:`evaluate` gets for a key the record lacks."""


@dataclass(frozen=True)
class Pred:
    """One checked predicate: ``path`` (JSON path), ``keys`` (the segments), ``op`` and ``value``."""

    path: str
    keys: tuple[str, ...]
    op: str
    value: JSON


def _plain(value: object, depth: int = 0) -> object:
    """``value`` with numpy scalars and arrays turned into the Python values they hold (``np.int64(3)`` is 3,
    ``np.array([1, 2])`` is ``[1, 2]``), inside lists, tuples and dicts too."""
    if depth > 40:
        return value  # _check_value reports the depth
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    return value


def _check_value(value: object, where: str, depth: int = 0) -> None:
    if depth > 32:
        raise InvalidInputError(f"where {where}: value nested deeper than 32 levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) >= _INT_LIMIT:
            raise InvalidInputError(f"where {where}: integer {value} is too large (limit 2**127)")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"where {where}: {value!r} is not a JSON number; use a finite number")
        return
    if isinstance(value, str):
        unicode_text(value, f"where {where}")
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            if not isinstance(k, str):
                raise InvalidInputError(f"where {where}: object keys must be strings")
            _check_value(item, where, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(item, where, depth + 1)
        return
    raise InvalidInputError(f"where {where}: {type(value).__name__} is not a JSON value")


def check_where(where: object) -> list[Pred]:
    """The predicates of a ``where`` dict, validated (InvalidInputError names the bad part)."""
    if where is None:
        return []
    if not isinstance(where, Mapping):
        raise InvalidInputError("where must be a dict of metadata key -> value or -> {operator: value}")
    preds = []
    for key, cond in where.items():
        cond = _plain(cond)
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInputError(f"where key {key!r} must look like 'task' or 'a.b' (letters, digits, _ and -)")
        keys = tuple(key.split("."))
        path = "$" + "".join(f'."{k}"' for k in keys)
        if isinstance(cond, Mapping) and any(isinstance(op, str) and op.startswith("$") for op in cond):
            ops: Mapping[str, object] = dict(cond)
        elif isinstance(cond, Mapping) and not cond:
            raise InvalidInputError(f"where {key!r}: an empty dict is neither a value nor operators; "
                                    "use {'$eq': {}} to match an empty object")
        else:
            ops = {"$eq": cond}
        for op, value in ops.items():
            if op not in _OPS:
                raise InvalidInputError(f"unknown where operator {op!r}; use $eq $ne $gt $gte $lt $lte $in $nin $exists")
            if op in _CMP and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
                raise InvalidInputError(f"where {key!r} {op} needs a number or a string, got {value!r}")
            if op in ("$in", "$nin") and (isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence)):
                raise InvalidInputError(f"where {key!r} {op} needs a list of values, got {value!r}")
            if op == "$exists" and not isinstance(value, bool):
                raise InvalidInputError(f"where {key!r} $exists needs True or False, got {value!r}")
            _check_value(value, f"{key!r} {op}")
            preds.append(Pred(path, keys, op, value))
    return preds


# -- SQL ------------------------------------------------------------------------------------------
def _eq_sql(path: str, value: JSON) -> tuple[str, list[object], bool]:
    """SQL for "stored value equals ``value``" and whether the rows it keeps still need :func:`evaluate`."""
    t = "json_type(metadata, ?)"
    if value is None:
        return f"{t} = 'NULL'", [path], False
    if isinstance(value, bool):
        return f"({t} = 'BOOLEAN' AND json_extract_string(metadata, ?) = ?)", [path, path, "true" if value else "false"], False
    if isinstance(value, (int, float)):
        sql, params = _number(path, "=", value)
        return sql, params, False
    if isinstance(value, str):
        return f"({t} = 'VARCHAR' AND json_extract_string(metadata, ?) = ?)", [path, path, value], False
    kind = "OBJECT" if isinstance(value, Mapping) else "ARRAY"
    return f"{t} = '{kind}'", [path], True  # compared by value afterwards


def to_sql(pred: Pred) -> tuple[str, list[object], bool]:
    """``(clause, params, exact)``: rows failing ``clause`` never match; when not ``exact``, rows passing it
    are checked again with :func:`evaluate` (array and object values)."""
    p, op, v = pred.path, pred.op, pred.value
    exists = "json_exists(metadata, ?)"
    if op == "$exists":
        return (exists if v else f"NOT {exists}"), [p], True
    if op == "$eq":
        sql, params, post = _eq_sql(p, v)
        return sql, params, not post
    if op == "$ne":
        sql, params, post = _eq_sql(p, v)
        return ("TRUE", [], False) if post else (f"NOT coalesce({sql}, FALSE)", params, True)
    if op in ("$in", "$nin"):
        parts = [_eq_sql(p, x) for x in v]
        if not parts:
            return ("FALSE" if op == "$in" else "TRUE"), [], True
        post = any(x[2] for x in parts)
        sql = "(" + " OR ".join(x[0] for x in parts) + ")"
        params = [a for x in parts for a in x[1]]
        if op == "$in":
            return sql, params, not post
        return ("TRUE", [], False) if post else (f"NOT coalesce({sql}, FALSE)", params, True)
    if isinstance(v, str):
        return (f"(json_type(metadata, ?) = 'VARCHAR' AND json_extract_string(metadata, ?) {_CMP[op]} ?)",
                [p, p, v], True)
    sql, params = _number(p, _CMP[op], v)
    return sql, params, True


def _number(path: str, cmp: str, value: int | float) -> tuple[str, list[object]]:
    """A stored JSON number compared with ``value``: exactly as integers when both are integers (also
    beyond 2**53, which DOUBLE cannot hold), else as doubles."""
    text = "json_extract_string(metadata, ?)"
    number = f"json_type(metadata, ?) IN {_NUM_TYPES}"
    if isinstance(value, int):
        return (f"({number} AND CASE WHEN regexp_full_match({text}, '-?[0-9]+') THEN TRY_CAST({text} AS HUGEINT) "
                f"{cmp} ?::HUGEINT ELSE TRY_CAST({text} AS DOUBLE) {cmp} ?::DOUBLE END)",
                [path, path, path, str(value), path, float(value)])
    return f"({number} AND TRY_CAST({text} AS DOUBLE) {cmp} ?)", [path, path, value]


# -- the reference --------------------------------------------------------------------------------
def lookup(metadata: Mapping[str, object], keys: Sequence[str]) -> object:
    """The value at a dotted path, or :data:`MISSING`."""
    cur: object = metadata
    for k in keys:
        if not isinstance(cur, Mapping) or k not in cur:
            return MISSING
        cur = cur[k]
    return cur


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return float(a) == float(b)
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return False


def _order(a: object, b: object) -> int | None:
    """-1, 0, 1 for comparable a, b (numbers with numbers, strings with strings), else None."""
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, int) and isinstance(b, int):
            return (a > b) - (a < b)
        fa, fb = float(a), float(b)
        return (fa > fb) - (fa < fb)
    return None


def evaluate(stored: object, pred: Pred) -> bool:
    """Whether a stored value (or :data:`MISSING`) satisfies one predicate: the semantics, in plain Python."""
    op, v = pred.op, pred.value
    if op == "$exists":
        return bool((stored is not MISSING) == v)
    if op == "$eq":
        return stored is not MISSING and _same(stored, v)
    if op == "$ne":
        return stored is MISSING or not _same(stored, v)
    if op == "$in":
        return stored is not MISSING and any(_same(stored, x) for x in v)
    if op == "$nin":
        return stored is MISSING or not any(_same(stored, x) for x in v)
    if stored is MISSING:
        return False
    o = _order(stored, v)
    return o is not None and bool({"$gt": o > 0, "$gte": o >= 0, "$lt": o < 0, "$lte": o <= 0}[op])
