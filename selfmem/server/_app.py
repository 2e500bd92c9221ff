"""The HTTP API of ``memctl serve`` (FastAPI): one route per memory method, JSON in and out.

Every memory route lives under ``/v1/namespaces/{namespace}``; requests carry ``Authorization: Bearer
<token>`` when the server has tokens. The app is assembled here from its parts:

- :mod:`._guard`: tokens, body size and requests in flight, before routing (401/403, 413, 429);
- :mod:`._routes`: the routers (records, search, graph, admin);
- :mod:`._deps`: the role and namespace dependencies every route takes;
- :mod:`._bodies`: request and error bodies (the OpenAPI schema);
- :mod:`._responses`: the one error mapping (``{"error": <SelfmemError subclass>, "message": ...}`` with
  the status of :data:`selfmem.server._wire.STATUS_OF`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ._auth import Tokens
from ._deps import Served
from ._guard import Guard, Limits
from ._hub import Hub
from ._metrics import Metrics, MetricsMiddleware
from ._responses import install_error_handlers
from ._routes import admin, graph, records, searching

__all__ = ["create_app", "Limits"]


def create_app(hub: Hub, tokens: Tokens | None = None, limits: Limits | None = None,
               on_ready: Callable[[], None] | None = None) -> FastAPI:
    """The FastAPI application serving the namespaces of ``hub``.

    Parameters
    ----------
    hub : Hub
        The namespaces (closed when the app shuts down: queued adds are committed first).
    tokens : Tokens, optional
        Bearer tokens; none means every request may do everything (keep such a server on loopback).
    limits : Limits, optional
    on_ready : callable, optional
        Called once the app has started (``memctl serve`` prints its URL there).
    """
    tokens = tokens if tokens is not None else Tokens()
    limits = limits if limits is not None else Limits()
    metrics = Metrics(hub)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            metrics.close()
            await asyncio.to_thread(hub.close)

    app = FastAPI(title="selfmem memory server", version="1", lifespan=lifespan,
                  description="A selfmem memory per namespace; the same calls as selfmem.Memory.")
    app.state.served = Served(hub=hub, tokens=tokens, metrics=metrics)
    app.add_middleware(Guard, limits=limits, tokens=tokens)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: it also counts what Guard refuses
    install_error_handlers(app)
    for router in (admin, records, searching, graph):
        app.include_router(router)
    return app
