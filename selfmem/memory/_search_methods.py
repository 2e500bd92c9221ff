"""Retrieval from ``Memory``: ``search`` and ``enrich`` (a method group of ``Memory``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .._errors import InvalidInputError
from .._types import Enriched, Hit
from ..retrieval._enrich import build_prompt
from ..retrieval._search import single_blas_thread
from . import _retrieve
from . import _validate as v
from ._core import MemoryCore, guarded

__all__ = ["SearchMethods"]

_FILTERS = ("kinds", "sessions", "where", "since", "until", "max_distance", "mode", "expand")


class SearchMethods(MemoryCore):
    """Search and prompt enrichment (mixed into :class:`selfmem.Memory`)."""

    @guarded()
    def search(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sessions: Sequence[str] | None = None, where: Mapping[str, Any] | None = None,
               since: datetime | None = None, until: datetime | None = None,
               max_distance: float | None = None, mode: str | None = None,
               expand: bool | Sequence[str] | None = None) -> list[Hit]:
        """The k memories most relevant to ``query``, best first.

        Parameters
        ----------
        query : str
        k : int
        kinds, sessions : list of str, optional
            Keep only records of these kinds / sessions.
        where : dict, optional
            Metadata filters: ``{"task": "3c9b0459"}`` (equality; dotted keys reach nested values) or
            operators ``{"score": {"$gte": 0.5}}`` ($eq $ne $gt $gte $lt $lte $in $nin $exists).
        since, until : datetime, optional
            Keep records created in ``[since, until)`` (timezone-aware).
        max_distance : float, optional
            Drop hits whose cosine distance ``1 - cos`` exceeds it.
        mode : {"hybrid", "dense", "keyword", "topics"}, optional
            Override ``config.search.mode`` for this call (formulas in ``selfmem.retrieval._search``).
        expand : bool or list of str, optional
            Graph expansion: the neighbours of the best ``config.graph.expand_hits`` hits along these
            edge types (FOLLOWS, DERIVED_FROM, SOLVES, SIMILAR_TO) are placed right after the hit that
            brought them, marked by ``Hit.via`` and ``Hit.expanded_from``; the list stays at k. None
            (default) follows ``config.graph.expand`` (SOLVES and FOLLOWS), True all four, False none.

        Returns
        -------
        list of Hit
            ``score`` is the cosine, ``distance`` is ``1 - score``, ``relevance`` the ranking score.
        """
        return self._run(_retrieve.make_request(self.config, query, k, kinds=kinds, sessions=sessions, where=where,
                                                since=since, until=until, max_distance=max_distance, mode=mode,
                                                expand=expand))

    def _run(self, req: _retrieve.SearchRequest) -> list[Hit]:
        with single_blas_thread():
            return _retrieve.search(req, self._live(), self._views, self._vectors.index, self._keywords.index,
                                    self._topics, self._graph.graph if self._graph.available else None)

    @guarded()
    def enrich(self, /, prompt: str, k: int = 5, *, budget_tokens: int | None = None, mark_used: bool = True,
               order: str = "time", **search: Any) -> Enriched:
        """The prompt with the most relevant memories placed before it in a quoted "past context" block.

        Parameters
        ----------
        prompt : str
            The solver's new question (also the search query).
        k : int
            Memories retrieved (fewer are placed if the budget is tight).
        budget_tokens : int, optional
            Token budget of the whole final prompt; whole memories are cut, least useful first.
        mark_used : bool
            Increment ``use_count`` and set ``last_used_at`` of the memories placed.
        order : {"time", "relevance"}
            How the placed memories are shown: oldest first (the default) or most relevant first. They
            are chosen by relevance either way. Oldest first answered LoCoMo questions better with the
            same reader at every budget (leave-one-conversation-out, ``benchmarks/answers.py``).
        **search
            Passed to :meth:`search` (kinds, sessions, where, since, until, max_distance, mode, expand).

        Returns
        -------
        Enriched
            ``prompt`` (the final text), ``hits`` (placed memories; pass their ids as ``parents=``
            when adding the solver's answer), ``tokens``, ``dropped``.
        """
        v.check_text(prompt, self.config.max_text_chars, "prompt")
        if budget_tokens is not None:
            budget_tokens = v.check_k(budget_tokens, "budget_tokens")
        v.check_flag(mark_used, "mark_used")
        if order not in ("time", "relevance"):
            raise InvalidInputError(f"order must be 'time' or 'relevance', got {order!r}")
        unknown = set(search) - set(_FILTERS)
        if unknown:
            raise InvalidInputError(f"enrich() got unknown arguments {sorted(unknown)}")
        hits = self._run(_retrieve.make_request(self.config, prompt, k, **{n: search.get(n) for n in _FILTERS}))
        out = build_prompt(prompt, hits, budget_tokens, self._views.count_tokens, order)
        if mark_used and out.hits:
            self._writable().mark_used([h.record.id for h in out.hits])
        return out
