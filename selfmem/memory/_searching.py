"""Retrieval: ``Memory.search`` and ``Memory.enrich`` over the handle's index, keywords, topics and graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from .._errors import InvalidInputError
from .._types import Enriched, Hit
from ..retrieval._enrich import build_prompt
from ..retrieval._search import single_blas_thread
from . import _retrieve
from . import _validate as v
from ._rank_columns import RankColumns
from ._state import MemoryState

__all__ = ["Searcher", "FILTERS"]

FILTERS = ("kinds", "sessions", "where", "since", "until", "max_distance", "mode", "expand")
"""The search arguments ``enrich`` passes on."""


class Searcher:
    """Search and prompt enrichment of one handle (the caller holds the handle's guard)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.columns = RankColumns()

    def search(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sessions: Sequence[str] | None = None, where: Mapping[str, object] | None = None,
               since: datetime | None = None, until: datetime | None = None,
               max_distance: float | None = None, mode: str | None = None,
               expand: bool | Sequence[str] | None = None) -> list[Hit]:
        """``Memory.search``: the request validated once, then the pipeline of :mod:`._retrieve`."""
        return self._run(_retrieve.make_request(self.state.config, query, k, kinds=kinds, sessions=sessions,
                                                where=where, since=since, until=until, max_distance=max_distance,
                                                mode=mode, expand=expand))

    def _run(self, req: _retrieve.SearchRequest) -> list[Hit]:
        s = self.state
        with single_blas_thread():
            return _retrieve.search(req, s.live(), s.views, s.vectors.index, s.keywords.index, s.topics,
                                    s.graph.graph if s.graph.available else None, self.columns, s.sentences)

    def enrich(self, prompt: str, k: int = 5, *, budget_tokens: int | None = None, mark_used: bool = True,
               order: str = "time", **search: object) -> Enriched:
        """``Memory.enrich``: search with the prompt, place whole memories within the budget, mark them used."""
        v.check_text(prompt, self.state.config.max_text_chars, "prompt")
        if budget_tokens is not None:
            budget_tokens = v.check_k(budget_tokens, "budget_tokens")
        v.check_flag(mark_used, "mark_used")
        if order not in ("time", "relevance"):
            raise InvalidInputError(f"order must be 'time' or 'relevance', got {order!r}")
        unknown = set(search) - set(FILTERS)
        if unknown:
            raise InvalidInputError(f"enrich() got unknown arguments {sorted(unknown)}")
        hits = self._run(_retrieve.make_request(self.state.config, prompt, k, **{n: search.get(n) for n in FILTERS}))
        out = build_prompt(prompt, hits, budget_tokens, self.state.views.count_tokens, order)
        if mark_used and out.hits:
            self.state.writable().mark_used([h.record.id for h in out.hits])
        return out
