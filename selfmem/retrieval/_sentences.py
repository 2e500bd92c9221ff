"""Sentence units of a memory's text and the best match of a query among them.

A memory's vector stands for its whole text: a turn that says three things matches a question about one of
them less well than a turn that says only that. The general model also embeds each memory's sentences
(:func:`sentence_units`), and :func:`best_match` scores a memory by its best sentence, which
:func:`rerank` uses to move the search's hits (``SearchConfig.sentence_weight``).

A chat line's speaker stays with each of its sentences: ``"Caroline: I ran a race. It was for charity."``
gives ``"Caroline: I ran a race."`` and ``"Caroline: It was for charity."``, so a question that names a
speaker finds what that speaker said (docs/benchmarks-history.md, "Sentences").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ._search import zscore

__all__ = ["sentence_units", "best_match", "rerank", "MAX_UNITS"]

MAX_UNITS = 16
"""Sentence units per memory at most: the rest of a longer text is joined into the last one."""

_LABEL = re.compile(r"\s*([^\s:][^:\n]{0,39}):[ \t]+(?=\S)")
"""A leading ``Name:`` label (a speaker, a role), at most 40 characters and 4 words."""
_SPLIT = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


def sentence_units(text: str) -> list[str]:
    """The sentences of ``text`` (split after ``.``, ``!`` or ``?`` and at line breaks), each carrying the
    text's leading ``Name:`` label if it has one; at most :data:`MAX_UNITS`, never empty.

    >>> sentence_units("Caroline: I ran a race. It was for charity!")
    ['Caroline: I ran a race.', 'Caroline: It was for charity!']
    >>> sentence_units("no label here")
    ['no label here']
    """
    m = _LABEL.match(text)
    label = m.group(1) if m is not None and len(m.group(1).split()) <= 4 else None
    body = text[m.end():] if label is not None and m is not None else text
    parts = [p for p in (s.strip() for s in _SPLIT.split(body)) if p]
    if not parts:
        return [text]
    if len(parts) > MAX_UNITS:
        parts = parts[:MAX_UNITS - 1] + [" ".join(parts[MAX_UNITS - 1:])]
    return [f"{label}: {p}" for p in parts] if label is not None else parts


def best_match(units: Sequence[np.ndarray | None], query: np.ndarray) -> np.ndarray:
    """Each memory's best cosine between the query and its sentence vectors.

    Parameters
    ----------
    units : sequence of ndarray, shape (m_i, dim), or None
        Unit vectors of each memory's sentences (None: not known).
    query : ndarray, shape (dim,)
        The query's unit vector under the same model.

    Returns
    -------
    ndarray, shape (n,) float64; NaN where a memory's sentences are not known.
    """
    out = np.full(len(units), np.nan)
    held = [i for i, u in enumerate(units) if u is not None and len(u)]
    if not held:
        return out
    parts = [np.asarray(units[i]) for i in held]
    cos = np.concatenate(parts).astype(np.float32) @ np.asarray(query, dtype=np.float32)  # one product for all
    starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
    out[held] = np.maximum.reduceat(cos, starts)
    return out


def rerank(best: np.ndarray, weight: float) -> np.ndarray:
    """The new order of a ranked list: each place ``i`` scores ``-i + weight * z``, where ``z`` is the
    memory's best sentence match standardised over the list (0 where not known), ties kept in order.

    Parameters
    ----------
    best : ndarray, shape (n,)
        :func:`best_match` of the list's memories, in rank order.
    weight : float
        Places a memory moves up per standard deviation of its best match.

    Returns
    -------
    ndarray, shape (n,) int64: positions into the list, best first.
    """
    best = np.asarray(best, dtype=np.float64)
    known = ~np.isnan(best)
    z = np.zeros(len(best))
    if known.any():
        z[known] = zscore(best[known])
    score = -np.arange(len(best), dtype=np.float64) + weight * z
    return np.argsort(-score, kind="stable")
