"""Input validation for the public API: every check runs before anything is written."""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast

import numpy as np

from .._errors import InvalidInputError, RecordNotFoundError
from .._text import unicode_text
from .._types import NewRecord

if TYPE_CHECKING:
    from .._config import SearchConfig, SearchMode

__all__ = [
    "check_text",
    "check_kind",
    "metadata_json",
    "check_importance",
    "check_ids",
    "check_id",
    "check_session",
    "check_k",
    "check_name_list",
    "check_vectors",
    "check_batch",
    "check_flag",
    "check_created_at",
    "unicode_text",
]


_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2060-\u2064\ufeff\U000E0000-\U000E007F]")
"""A character that shows: text made only of whitespace, control, zero-width or tag characters is empty."""


def check_flag(value: object, what: str, optional: bool = False) -> bool | None:
    """``value`` if it is True or False (or None when ``optional``), else InvalidInputError."""
    if isinstance(value, bool) or (optional and value is None):
        return value
    raise InvalidInputError(f"{what} must be True or False{', or None' if optional else ''}, got {value!r}")


def check_text(text: object, max_chars: int, what: str = "text") -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a str, got {type(text).__name__}")
    if not text.strip() or not _VISIBLE.search(text):
        raise InvalidInputError(f"{what} is empty, whitespace or only invisible characters; pass the text to remember")
    if len(text) > max_chars:
        raise InvalidInputError(
            f"{what} has {len(text):,} characters, over the limit of {max_chars:,} (MemoryConfig.max_text_chars); "
            "split it or raise the limit"
        )
    return unicode_text(text, what)


def check_kind(kind: object, kinds: Sequence[str]) -> str:
    if not isinstance(kind, str) or kind not in kinds:
        raise InvalidInputError(f"unknown kind {kind!r}; use one of {list(kinds)} (MemoryConfig.kinds)")
    return kind


MAX_NESTING = 64
"""The deepest metadata (objects and lists inside each other) a record may hold: one limit, applied at add, so
every reader (JSON responses, exports, the read view) can serialise what is stored."""


def nesting(value: object) -> int:
    """How deeply objects and lists nest in ``value`` (0 for a scalar); iterative, so any depth is measured
    without recursion (it stops counting past ``MAX_NESTING + 1``)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[object] = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((c, depth + 1) for c in children)
    return deepest


def metadata_json(metadata: object) -> str:
    """Metadata as a JSON object string; raises for non-dicts, non-str keys, NaN or unserialisable values."""
    if metadata is None:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    if not all(isinstance(k, str) for k in metadata):
        raise InvalidInputError("metadata keys must be strings")
    if nesting(metadata) > MAX_NESTING:
        raise InvalidInputError(f"metadata is nested more than {MAX_NESTING} levels deep; flatten it")
    try:
        text = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False, sort_keys=True)
    except RecursionError as exc:
        raise InvalidInputError("metadata is nested too deeply to store; flatten it") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata must be JSON-serialisable (no NaN, sets or objects): {exc}") from exc
    return unicode_text(text, "metadata")


def _checked_dict(metadata: object) -> dict[str, object]:
    """Metadata that :func:`metadata_json` accepted, as a dict (None: empty)."""
    return dict(metadata) if isinstance(metadata, Mapping) else {}


def check_importance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"importance must be a finite number >= 0, got {value!r}")
    return float(value)


def check_ids(ids: object, what: str = "id") -> list[int]:
    """One id or an iterable of ids, as a list of Python ints."""
    if isinstance(ids, (numbers.Integral, np.integer)) and not isinstance(ids, bool):
        return [_in_range(int(ids), what)]
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidInputError(f"{what} must be an int or a list of ints, got {type(ids).__name__}")
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (numbers.Integral, np.integer)):
            raise InvalidInputError(f"{what} must be ints, got {i!r}")
        out.append(_in_range(int(i), what))
    return out


def _in_range(i: int, what: str) -> int:
    if not 0 <= i < 2**63:
        raise InvalidInputError(f"{what} {i} is out of range: record ids are integers from 1 to 2**63 - 1")
    return i


def check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise InvalidInputError(f"id must be an int, got {value!r}")
    return _in_range(int(value), "id")


def check_session(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"session name must be a non-empty str, got {name!r}")
    return unicode_text(name, "session name")


def check_k(k: object, what: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidInputError(f"{what} must be an integer >= 1, got {k!r}")
    return int(k)


def check_number(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or not low <= float(value) <= high:
        raise InvalidInputError(f"{what} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def check_mode(mode: object, cfg: SearchConfig) -> SearchConfig:
    """``cfg`` (a SearchConfig) with ``mode`` replaced, or InvalidInputError."""
    import dataclasses

    from .._config import SEARCH_MODES

    if mode not in SEARCH_MODES:
        raise InvalidInputError(f"mode must be one of {SEARCH_MODES}, got {mode!r}")
    return dataclasses.replace(cfg, mode=cast("SearchMode", mode))  # one of SEARCH_MODES, checked above


def check_name_list(values: object, what: str) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return [unicode_text(values, what)]
    if not isinstance(values, Iterable) or not all(isinstance(v, str) for v in values):
        raise InvalidInputError(f"{what} must be a str or a list of str")
    return [unicode_text(v, what) for v in values]


def check_vectors(vectors: object, n: int, dim: int, what: str) -> np.ndarray:
    """A finite float array of shape (n, dim) (a 1-D vector is accepted when n == 1)."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be a numeric array: {exc}") from exc
    if arr.ndim == 1 and n == 1:
        arr = arr[None, :]
    if arr.shape != (n, dim):
        raise InvalidInputError(f"{what} must have shape ({n}, {dim}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{what} contains NaN or inf (or values too large for float32)")
    norms = np.linalg.norm(arr.astype(np.float64), axis=1)
    if (norms < 1e-12).any():  # below what float32 normalises faithfully (l2_normalize divides by >= 1e-12)
        raise InvalidInputError(f"{what} contains an all-zero row or one of norm {norms.min():.3g}, too small to "
                                "normalise; pass the hidden states unscaled")
    if (norms > 1e15).any():
        raise InvalidInputError(f"{what} has a row of norm {norms.max():.3g}: too large to normalise in float32")
    return arr


def check_created_at(value: object, what: str = "created_at") -> datetime | None:
    """A timezone-aware datetime (returned in UTC) or None; InvalidInputError otherwise."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{what} must be a timezone-aware datetime, e.g. datetime(2023, 5, 8, tzinfo=timezone.utc)"
                                f", got {value!r}")
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise InvalidInputError(f"{what} {value!r} cannot be expressed in UTC ({exc})") from exc


def check_batch(texts: object, kind: object, metadata: object, session: str | None, importance: object,
                parents: object, *,
                kinds: Sequence[str], max_chars: int, existing: Callable[[list[int]], set[int]],
                created_at: object = None, keys: object = None) -> list[NewRecord]:
    """Validated records of an ``add_many`` call (nothing is written unless every item is valid).

    ``kind``, ``metadata``, ``importance``, ``parents`` and ``created_at`` are one value or one per text;
    ``existing(ids)`` returns which parent ids exist.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInputError("texts must be a list of str (use add() for one text)")
    n = len(texts)

    def per_item(value: object, what: str, scalar: type | tuple[type, ...]) -> list[object]:
        if isinstance(value, scalar) or value is None or (isinstance(value, np.generic) and value.ndim == 0):
            return [value] * n
        if isinstance(value, Sequence) and len(value) == n:
            return list(value)
        raise InvalidInputError(f"{what} must be one value or a list of {n} values")

    kind_list = per_item(kind, "kind", str)
    metas = per_item(metadata, "metadata", dict)
    imps = per_item(importance, "importance", numbers.Real)
    if isinstance(parents, np.ndarray) and parents.ndim == 2:  # one row of ids per text
        parents = list(parents)
    if parents is not None and (isinstance(parents, (str, bytes, numbers.Number)) or not isinstance(parents, Sequence)):
        raise InvalidInputError(f"parents must be a list with one list of ids per text, got {parents!r}")
    pars = [()] * n if parents is None else per_item(parents, "parents", ())
    for i, p in enumerate(pars):
        if p is not None and (isinstance(p, (str, bytes, numbers.Number)) or not isinstance(p, Iterable)):
            raise InvalidInputError(f"parents[{i}] must be a list of record ids, got {p!r}")
    whens = [check_created_at(w, f"created_at[{i}]" if n > 1 else "created_at")
             for i, w in enumerate(per_item(created_at, "created_at", datetime))]
    if keys is not None and (isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence) or len(keys) != n):
        raise InvalidInputError(f"keys must be a list of {n} idempotency keys (str or None), one per text")
    key_list = [None] * n if keys is None else list(keys)
    for k in key_list:
        if k is not None and (not isinstance(k, str) or not k.strip() or len(k) > 1000):
            raise InvalidInputError(f"an idempotency key must be a non-empty str of at most 1000 characters, got {k!r}")
        if k is not None:
            unicode_text(k, "key")
    given = [k for k in key_list if k is not None]
    if len(given) != len(set(given)):
        raise InvalidInputError("the same idempotency key appears twice in one add_many call")
    if session is not None:
        check_session(session)
    wanted = sorted({p for ps in pars for p in check_ids(() if ps is None else ps, "parents")})
    missing = set(wanted) - existing(wanted) if wanted else set()
    if missing:
        raise RecordNotFoundError(f"parent ids {sorted(missing)} do not exist in this memory")
    return [
        NewRecord(
            kind=check_kind(kind_list[i], kinds),
            text=check_text(texts[i], max_chars, f"texts[{i}]" if n > 1 else "text"),
            metadata_json=metadata_json(metas[i]),
            metadata=_checked_dict(metas[i]),
            session=session,
            importance=check_importance(1.0 if imps[i] is None else imps[i]),
            parents=tuple(check_ids(() if pars[i] is None else pars[i], "parents")),
            created_at=whens[i],
            key=key_list[i],
        )
        for i in range(n)
    ]
