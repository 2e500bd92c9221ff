"""Prometheus metrics of ``memctl serve`` (``GET /metrics``): requests, queues, open namespaces, refits.

What is exported, all in the app's own registry (never the process-wide default, so several apps in one
process do not collide):

- ``selfmem_requests_total{method, route, namespace, status}`` and
  ``selfmem_request_seconds{method, route, namespace}`` (a histogram) per route template, never the URL:
  no record ids, texts or tokens ever become labels;
- ``selfmem_add_queue_depth{namespace}``: adds waiting to be committed, read when scraped;
- ``selfmem_open_namespaces``;
- ``selfmem_refit_seconds{part}``: how long background refits (whitening, index, topics) took.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..memory._parts import REFIT_OBSERVERS

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from ._hub import Hub

__all__ = ["Metrics", "MetricsMiddleware", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _HubCollector:
    """Reads the hub's state when scraped (queue depths, open namespaces): nothing to keep in step."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        opened = dict(self.hub._open)
        depth = GaugeMetricFamily("selfmem_add_queue_depth", "Adds waiting to be committed", labels=["namespace"])
        for name, (_, committer) in sorted(opened.items()):
            depth.add_metric([name], committer.queued)
        yield depth
        yield GaugeMetricFamily("selfmem_open_namespaces", "Namespaces open now", value=len(opened))


class Metrics:
    """The server's metrics (``prometheus-client``, part of ``selfmem[server]``).

    Parameters
    ----------
    hub : Hub
        The namespaces whose queues and count are exported.
    """

    def __init__(self, hub: Hub) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("selfmem_requests", "Requests answered", ["method", "route", "namespace", "status"],
                                registry=self.registry)
        self.latency = Histogram("selfmem_request_seconds", "Time to answer a request", ["method", "route",
                                 "namespace"], buckets=_BUCKETS, registry=self.registry)
        self.refits = Histogram("selfmem_refit_seconds", "Duration of background refits", ["part"],
                                buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900), registry=self.registry)
        self.registry.register(_HubCollector(hub))
        REFIT_OBSERVERS.append(self._refit)

    def _refit(self, part: str, seconds: float) -> None:
        self.refits.labels(part).observe(seconds)

    def close(self) -> None:
        """Stop observing refits (the app shut down)."""
        if self._refit in REFIT_OBSERVERS:
            REFIT_OBSERVERS.remove(self._refit)

    def observe(self, method: str, route: str, namespace: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, namespace, str(status)).inc()
        self.latency.labels(method, route, namespace).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))


class MetricsMiddleware:
    """Times every HTTP request and counts it under its route template (``/v1/namespaces/{namespace}/add``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def sent(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            namespace = (scope.get("path_params") or {}).get("namespace", "")
            if route == "(unmatched)":
                namespace = ""  # an unrouted path's text never becomes a label
            self.metrics.observe(scope["method"], route, str(namespace)[:64], status, time.perf_counter() - start)
