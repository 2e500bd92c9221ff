"""The routes of ``memctl serve``, one router per resource: records, search, graph, admin.

Every namespaced route lives under ``/v1/namespaces/{namespace}``, declares its role
(:func:`~selfmem.server._deps.role`) and reaches its memory through the :class:`~selfmem.server._deps.Space`
dependency; errors are raised as ``SelfmemError`` and answered by :mod:`selfmem.server._responses`.
Each route calls the :class:`~selfmem.Memory` method of the same name.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from .._types import JSON
from ._bodies import (ERRORS, EXPORT_TYPES, AddBody, AddManyBody, Creds, DeleteBody, EnrichBody, NeighboursBody,
                      PathBody, RebuildBody, RecordId, SearchBody, SubgraphBody)
from ._deps import Served, SpaceDep, role, served
from ._hub import PendingAdd
from ._metrics import CONTENT_TYPE
from ._responses import reply
from ._wire import to_json

__all__ = ["records", "searching", "graph", "admin"]

NS = "/v1/namespaces/{namespace}"
READ, WRITE, ADMIN = role("read"), role("write"), role("admin")
ServedDep = Annotated[Served, Depends(served)]

records = APIRouter(prefix=NS, responses=ERRORS, tags=["memory"])
searching = APIRouter(prefix=NS, responses=ERRORS, tags=["memory"])
graph = APIRouter(prefix=NS, responses=ERRORS, tags=["graph"])
admin = APIRouter(tags=["server"])


# -- records: add, add_many, get, delete, export, sessions --------------------------------------------------------
@records.post("/add", dependencies=WRITE)
async def add(ns: SpaceDep, body: AddBody) -> dict[str, int]:
    """Memory.add: queued, committed together with concurrent adds, answered once committed."""
    committer = await ns.writer()
    return {"id": await asyncio.wrap_future(committer.submit(PendingAdd(**body.model_dump())))}


@records.post("/add_many", dependencies=WRITE)
def add_many(ns: SpaceDep, body: AddManyBody) -> dict[str, list[int]]:
    """Memory.add_many (one transaction)."""
    args = body.model_dump()
    return {"ids": ns.memory(create=True).add_many(args.pop("texts"), progress=False, **args)}


@records.get("/records/{id}", dependencies=READ)
def get(ns: SpaceDep, id: RecordId) -> JSONResponse:
    """Memory.get."""
    return reply(to_json(ns.memory().get(id)))


@records.post("/delete", dependencies=ADMIN)
def delete(ns: SpaceDep, body: DeleteBody) -> dict[str, int]:
    """Memory.delete (admin role)."""
    ns.memory().delete(body.ids)
    return {"deleted": 1 if isinstance(body.ids, int) else len(body.ids)}


@records.get("/export", dependencies=READ, response_class=Response,
             responses={200: {"description": "every record as one file",
                              "content": {EXPORT_TYPES["parquet"]: {}, EXPORT_TYPES["jsonl"]: {}}}})
def export(ns: SpaceDep, format: Literal["parquet", "jsonl"] = "parquet") -> Response:
    """Memory.export: every record, with its vectors in Parquet, as one file (read role)."""
    mem = ns.memory()
    with tempfile.TemporaryDirectory(prefix="selfmem-export-") as tmp:
        out = FilePath(tmp) / f"records.{format}"
        mem.export(out, format, progress=False)
        data = out.read_bytes()
    return Response(data, media_type=EXPORT_TYPES[format])


@records.get("/sessions", dependencies=READ)
def sessions(ns: SpaceDep) -> dict[str, JSON]:
    """Memory.sessions."""
    return {"sessions": to_json(ns.memory().sessions())}


# -- search: search, enrich, topics ------------------------------------------------------------------------------
@searching.post("/search", dependencies=READ)
async def search(ns: SpaceDep, body: SearchBody) -> JSONResponse:
    """Memory.search (the query is embedded together with concurrent ones)."""
    args = body.model_dump()
    mem = await ns.embedded(body.query, create=False)
    return reply({"hits": to_json(await asyncio.to_thread(mem.search, args.pop("query"), **args))})


@searching.post("/enrich", dependencies=READ)
async def enrich(ns: SpaceDep, body: EnrichBody) -> JSONResponse:
    """Memory.enrich; ``mark_used`` (the default) needs the write role."""
    args = body.model_dump()
    if body.mark_used:
        ns.allow("write")
    mem = await ns.embedded(body.prompt, create=body.mark_used)
    return reply(to_json(await asyncio.to_thread(mem.enrich, args.pop("prompt"), **args)))


@searching.get("/topics", dependencies=READ)
def topics(ns: SpaceDep) -> dict[str, JSON]:
    """Memory.topics."""
    return {"topics": to_json(ns.memory().topics())}


@searching.get("/topics/{id}", dependencies=READ)
def topic(ns: SpaceDep, id: RecordId) -> JSONResponse:
    """Memory.topic (with members)."""
    return reply(to_json(ns.memory().topic(id)))


# -- graph: neighbours, path, subgraph ---------------------------------------------------------------------------
@graph.post("/neighbours", dependencies=READ)
def neighbours(ns: SpaceDep, body: NeighboursBody) -> JSONResponse:
    """Memory.neighbours."""
    args = body.model_dump()
    return reply(to_json(ns.memory().neighbours(args.pop("node"), args.pop("rel"), **args)))


@graph.post("/path", dependencies=READ)
def path(ns: SpaceDep, body: PathBody) -> JSONResponse:
    """Memory.path: ``{"subgraph": null}`` when no path exists."""
    found = ns.memory().path(body.a, body.b, max_depth=body.max_depth, rel=body.rel)
    return reply({"subgraph": None if found is None else to_json(found)})


@graph.post("/subgraph", dependencies=READ)
def subgraph(ns: SpaceDep, body: SubgraphBody) -> JSONResponse:
    """Memory.subgraph."""
    args = body.model_dump()
    return reply(to_json(ns.memory().subgraph(args.pop("nodes"), **args)))


# -- admin: health, metrics, config, stats, commits, wait, rebuild -----------------------------------------------
@admin.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}, 401: ERRORS[401]})
def metrics(state: ServedDep, creds: Creds) -> Response:
    """Prometheus metrics: requests and latency per route and namespace, add queues, open namespaces, refit
    durations (no tokens, texts or ids). With tokens, any valid token may read them."""
    if state.tokens.enabled:
        state.tokens.identify(None if creds is None else creds.credentials)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


@admin.get("/v1/health")
def health() -> dict[str, JSON]:
    """Liveness (no token needed)."""
    return {"ok": True}


@admin.get(NS + "/config", responses=ERRORS, tags=["memory"], dependencies=READ)
def config(ns: SpaceDep, create: bool = False) -> dict[str, JSON]:
    """The namespace's configuration; ``create=true`` (write role) creates the namespace first."""
    if create:
        ns.allow("write")
    if create or ns.hub.exists(ns.name):
        return ns.memory(create=create).config.to_dict()
    return ns.hub.default_config().to_dict()


@admin.get(NS + "/stats", responses=ERRORS, tags=["memory"], dependencies=READ)
def stats(ns: SpaceDep) -> dict[str, JSON]:
    """Memory.stats."""
    out: dict[str, JSON] = to_json(ns.memory().stats())
    return out


@admin.get(NS + "/commits", responses=ERRORS, dependencies=READ)
def commits(ns: SpaceDep) -> dict[str, int]:
    """Group commit so far: ``committed`` single adds in ``batches`` commits; ``queries_embedded`` search
    and enrich texts in ``query_batches`` model calls."""
    committer, queries = ns.hub.get(ns.name)[1], ns.hub.queries(ns.name)
    return {"batches": committer.batches, "committed": committer.committed,
            "query_batches": 0 if queries is None else queries.batches,
            "queries_embedded": 0 if queries is None else queries.embedded}


@admin.post(NS + "/wait", responses=ERRORS, tags=["memory"], dependencies=WRITE)
def wait(ns: SpaceDep) -> dict[str, bool]:
    """Memory.wait: background refits finished."""
    ns.memory(create=True).wait()
    return {"ok": True}


@admin.post(NS + "/rebuild", responses=ERRORS, tags=["memory"], dependencies=ADMIN)
def rebuild(ns: SpaceDep, body: RebuildBody) -> dict[str, bool]:
    """Memory.rebuild (admin role)."""
    ns.memory().rebuild(reembed=body.reembed)
    return {"ok": True}
