"""The two dependencies every namespaced route of ``memctl serve`` takes: its role and its namespace.

:func:`role` checks the bearer token against the namespace and a role (``read``, ``write``, ``admin``)
before anything else, the body's validation included. :func:`space` resolves the namespace of the path
to a :class:`Space`: the routes reach the namespace's memory only through it, so that opening, creating
and embedding the query follow one rule. The server's state lives in ``app.state.served``
(:class:`Served`), set by :func:`~selfmem.server._app.create_app`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, params

from ..memory import Memory
from ._auth import Tokens
from ._bodies import Creds, Namespace
from ._hub import Committer, Hub
from ._metrics import Metrics

__all__ = ["Served", "Space", "SpaceDep", "role", "served"]


@dataclass(frozen=True)
class Served:
    """What the routes of one app share: the namespaces, the tokens and the metrics."""

    hub: Hub
    tokens: Tokens
    metrics: Metrics

    def allow(self, creds: Creds, namespace: str, role: str) -> None:
        """Raise NotAuthenticatedError/AccessDeniedError unless the token may act as ``role`` on ``namespace``."""
        if self.tokens.enabled:
            self.tokens.check(None if creds is None else creds.credentials, namespace, role)


def served(request: Request) -> Served:
    """The app's :class:`Served` (a dependency)."""
    state: Served = request.app.state.served
    return state


def role(name: str) -> list[params.Depends]:
    """The route dependency that checks the token for role ``name`` on the path's namespace."""

    async def check(request: Request, namespace: Namespace, creds: Creds) -> None:  # async: no thread hop
        served(request).allow(creds, namespace, name)

    return [Depends(check)]


class Space:
    """One request's namespace: its (validated) name and lazy access to its memory.

    Nothing is opened until a route asks, so a request whose body fails validation creates no namespace.
    """

    def __init__(self, state: Served, name: str, creds: Creds) -> None:
        self.state, self.name, self._creds = state, name, creds

    @property
    def hub(self) -> Hub:
        return self.state.hub

    def allow(self, role: str) -> None:
        """Check a further role (a route whose options need more than its own role)."""
        self.state.allow(self._creds, self.name, role)

    def memory(self, create: bool = False) -> Memory:
        """The namespace's memory (opened on first use; created first with ``create``, else 404 if absent)."""
        return self.hub.get(self.name, create=create)[0]

    async def writer(self) -> Committer:
        """The namespace's group committer (created with the namespace if absent); no thread hop once open."""
        opened = self.hub.opened(self.name)
        if opened is None:
            opened = await asyncio.to_thread(self.hub.get, self.name, create=True)
        return opened[1]

    async def embedded(self, text: str, create: bool) -> Memory:
        """The namespace's memory once ``text`` is embedded (batched with concurrent queries, then cached)."""
        opened = self.hub.opened(self.name)
        mem = opened[0] if opened is not None else await asyncio.to_thread(self.memory, create)
        batcher = self.hub.queries(self.name)
        if batcher is not None:
            await asyncio.wrap_future(batcher.submit(text))
        return mem


async def space(request: Request, namespace: Namespace, creds: Creds) -> Space:
    """The path's namespace as a :class:`Space` (a dependency; async, so it costs no thread hop)."""
    return Space(served(request), namespace, creds)


SpaceDep = Annotated[Space, Depends(space)]
