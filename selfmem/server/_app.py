"""The HTTP API of ``memctl serve`` (FastAPI): one route per memory method, JSON in and out.

Every route lives under ``/v1/namespaces/{namespace}``; requests carry ``Authorization: Bearer
<token>`` when the server has tokens. Errors are JSON bodies ``{"error": <SelfmemError subclass>,
"message": ...}`` with the status of :data:`selfmem.server._wire.STATUS_OF`; bodies over
``max_body`` bytes get 413, a full queue or too many requests in flight 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import re
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import SelfmemError
from ._auth import Tokens
from ._errors import AccessDeniedError
from ._hub import NAMESPACE_RE, Hub, PendingAdd
from ._metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from ._wire import error_body, to_json

__all__ = ["create_app", "Limits"]

log = logging.getLogger("selfmem.server")

MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """Request limits of a server (each violation answers 413, 422 or 429).

    Attributes
    ----------
    max_body : int
        Bytes of a request body.
    max_batch : int
        Texts of one ``add_many``; ids of one ``delete``; nodes of one ``subgraph``.
    max_k : int
        ``k`` of search and enrich; ``limit`` of graph calls is capped at ``100 * max_k``.
    max_inflight : int
        Requests handled at once; more are answered 429.
    """

    max_body: int = 8 * 2**20
    max_batch: int = 1024
    max_k: int = 1000
    max_inflight: int = 256


# -- request bodies ---------------------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no coercion: 0 is not a time, nor a bool


def _iso(value: Any) -> Any:
    """An ISO 8601 string as the datetime it names (JSON has no time type); anything else as given, so the
    strict model still refuses a number, and the memory refuses a time without a zone."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value  # the model's own error names the field
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso)]
Id = Annotated[int, Field(ge=0, le=MAX_ID)]
NodeRef = Id | str
Rel = str | list[str] | None


class AddBody(_Body):
    text: str
    kind: str = "output"
    metadata: dict[str, Any] | None = None
    session: str | None = None
    importance: float = 1.0
    parents: list[Id] = Field(default_factory=list, max_length=1024)
    own_embedding: list[float] | None = Field(default=None, max_length=65536)
    created_at: IsoTime | None = None
    key: str | None = None


class AddManyBody(_Body):
    texts: list[str] = Field(max_length=1024)
    kind: str | list[str] = "output"
    metadata: list[dict[str, Any] | None] | None = Field(default=None, max_length=1024)
    session: str | None = None
    importance: float | list[float] = 1.0
    parents: list[list[Id]] | None = Field(default=None, max_length=1024)
    own_embedding: list[list[float]] | None = Field(default=None, max_length=1024)
    created_at: IsoTime | list[IsoTime] | None = None
    keys: list[str | None] | None = Field(default=None, max_length=1024)


class _Filters(_Body):
    kinds: list[str] | None = None
    sessions: list[str] | None = None
    where: dict[str, Any] | None = None
    since: IsoTime | None = None
    until: IsoTime | None = None
    max_distance: float | None = None
    mode: str | None = None
    expand: bool | list[str] | None = None


class SearchBody(_Filters):
    query: str
    k: int = Field(5, ge=1, le=1000)


class EnrichBody(_Filters):
    prompt: str
    k: int = Field(5, ge=1, le=1000)
    budget_tokens: int | None = Field(default=None, ge=1, le=10**7)
    mark_used: bool = True
    order: Literal["time", "relevance"] = "time"


class DeleteBody(_Body):
    ids: Id | Annotated[list[Id], Field(max_length=1024)]


class NeighboursBody(_Body):
    node: NodeRef
    rel: Rel = None
    direction: str = "both"
    depth: int = Field(1, ge=1, le=10)
    limit: int = Field(100, ge=1, le=100_000)


class PathBody(_Body):
    a: NodeRef
    b: NodeRef
    max_depth: int = Field(4, ge=1, le=10)
    rel: Rel = None


class SubgraphBody(_Body):
    nodes: list[NodeRef] = Field(max_length=1024)
    depth: int = Field(1, ge=0, le=10)
    rel: Rel = None
    limit: int = Field(1000, ge=1, le=100_000)


class RebuildBody(_Body):
    reembed: bool = False


Namespace = Annotated[str, Path(pattern=NAMESPACE_RE, max_length=64, description="a memory under the server's root")]
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]
RecordId = Annotated[int, Path(ge=0, le=MAX_ID)]


class ErrorBody(BaseModel):
    """Every error response: the SelfmemError subclass and its message."""

    error: str
    message: str


_EXPORT_TYPES = {"parquet": "application/vnd.apache.parquet", "jsonl": "application/x-ndjson"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (401, "no valid token"), (403, "the token does not cover this namespace or role"),
        (404, "no such record, topic or namespace"), (409, "the memory is locked by another process"),
        (413, "the request body is too large"), (422, "invalid input"), (429, "busy: retry after Retry-After s"),
        (500, "an error of the memory"), (503, "the server is shutting down"), (507, "the disk refused a write"))}


def reply(content: Any) -> JSONResponse:
    """A JSON answer written by the standard library's encoder, not FastAPI's: a record's metadata stored
    before adds refused nesting over ``MAX_NESTING`` levels may nest deeper than pydantic's serialiser
    allows (255 levels), and must not make its namespace unreadable."""
    return JSONResponse(content)


def _error_response(exc: BaseException) -> JSONResponse:
    status, body = error_body(exc)
    headers = {"Retry-After": str(max(1, round(getattr(exc, "retry_after", 1))))} if status == 429 else None
    return JSONResponse(body, status_code=status, headers=headers)


# -- middleware (pure ASGI: they see every request before routing) ----------------------------------------------
class _TooLarge(StarletteHTTPException):
    """A chunked body grew past the limit while read: an HTTP exception, so FastAPI passes it through as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the server's limit of {limit} bytes; send less (e.g. "
                              "split add_many into smaller batches)")


_NAMESPACED = re.compile(r"^/v1/namespaces/([^/]+)(/|$)")


class _Guard:
    """Answers 401/403 for a request to a namespace without a token that covers it (before the body is read),
    413 for a body over ``max_body`` bytes and 429 beyond ``max_inflight`` requests."""

    def __init__(self, app: ASGIApp, limits: Limits, tokens: Tokens | None = None) -> None:
        self.app, self.limits, self.inflight, self.tokens = app, limits, 0, tokens

    def _refused(self, scope: Scope) -> SelfmemError | None:
        """The authentication error of a namespaced request, if any (the role is checked by the route)."""
        found = _NAMESPACED.match(scope.get("path", ""))
        if self.tokens is None or not self.tokens.enabled or found is None:
            return None
        auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        try:
            grant = self.tokens.identify(token.strip() if scheme.lower() == "bearer" else None)
        except SelfmemError as exc:
            return exc
        if not grant.covers(found.group(1)):
            return AccessDeniedError(f"this token does not cover the namespace {found.group(1)!r}")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._refused(scope)
        if refused is not None:
            await _error_response(refused)(scope, receive, send)
            return
        limit = self.limits.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _reply(send, 413, f"the request body is over the server's limit of {limit} bytes; send less "
                                    "(e.g. split add_many into smaller batches)")
            return
        if self.inflight >= self.limits.max_inflight:
            await _reply(send, 429, f"{self.inflight} requests are in flight; retry in a second", retry=True)
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise _TooLarge(limit)
            return msg

        async def tracked(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        self.inflight += 1
        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _reply(send, 413, f"the request body is over the server's limit of {limit} bytes")
        finally:
            self.inflight -= 1


async def _reply(send: Send, status: int, message: str, retry: bool = False) -> None:
    resp = JSONResponse({"error": "InvalidInputError" if status == 413 else "ServerBusyError", "message": message},
                        status_code=status, headers={"Retry-After": "1"} if retry else None)
    await send({"type": "http.response.start", "status": status, "headers": resp.raw_headers})
    await send({"type": "http.response.body", "body": resp.body})


# -- the app ----------------------------------------------------------------------------------------------------
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
    app.add_middleware(_Guard, limits=limits, tokens=tokens)
    metrics = Metrics(hub)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: it also counts what _Guard refuses

    @app.exception_handler(SelfmemError)
    async def _selfmem_error(request: Request, exc: SelfmemError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"error": "InvalidInputError", "message": "; ".join(parts) or "invalid request"},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON: invalid input, like any other
            return JSONResponse({"error": "InvalidInputError", "message": f"{exc.detail}: send a JSON object"},
                                status_code=422)
        if exc.status_code == 413:  # a chunked body over the limit
            return JSONResponse({"error": "InvalidInputError", "message": str(exc.detail)}, status_code=413)
        return JSONResponse({"error": "ServerError", "message": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "ServerError", "message": f"internal error ({type(exc).__name__}); the "
                             "server's log has the traceback"}, status_code=500)

    def allow(creds: HTTPAuthorizationCredentials | None, namespace: str, role: str) -> None:
        if tokens.enabled:
            tokens.check(None if creds is None else creds.credentials, namespace, role)

    def need(role: str) -> Any:
        """A dependency checking the token before anything else (also before the body is validated)."""

        def check(namespace: Namespace, creds: Creds) -> None:
            allow(creds, namespace, role)

        return [Depends(check)]

    read, write, admin = need("read"), need("write"), need("admin")

    def memory(namespace: str, create: bool = False) -> Any:
        return hub.get(namespace, create=create)[0]

    async def embedded(namespace: str, text: str, create: bool) -> Any:
        """The namespace's memory, once ``text`` is embedded (batched with concurrent queries, cached)."""
        opened = hub.opened(namespace)
        mem = opened[0] if opened is not None else await asyncio.to_thread(memory, namespace, create)
        batcher = hub.queries(namespace)
        if batcher is not None:
            await asyncio.wrap_future(batcher.submit(text))
        return mem

    ns = "/v1/namespaces/{namespace}"

    @app.get("/metrics", tags=["server"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {}}}, 401: _ERRORS[401]})
    def metrics_route(creds: Creds) -> Response:
        """Prometheus metrics: requests and latency per route and namespace, add queues, open namespaces, refit
        durations (no tokens, texts or ids). With tokens, any valid token may read them."""
        if tokens.enabled:
            tokens.identify(None if creds is None else creds.credentials)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/health", tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness (no token needed)."""
        return {"ok": True}

    @app.get(ns + "/config", responses=_ERRORS, tags=["memory"], dependencies=read)
    def config(namespace: Namespace, creds: Creds, create: bool = False) -> dict[str, Any]:
        """The namespace's configuration; ``create=true`` (write role) creates the namespace first."""
        if create:
            allow(creds, namespace, "write")
        if create or hub.exists(namespace):
            return hub.get(namespace, create=create)[0].config.to_dict()
        return hub.default_config().to_dict()

    @app.post(ns + "/add", responses=_ERRORS, tags=["memory"], dependencies=write)
    async def add(namespace: Namespace, body: AddBody) -> dict[str, int]:
        """Memory.add: queued, committed together with concurrent adds, answered once committed."""
        opened = hub.opened(namespace)  # the common case: no thread hop
        _, committer = opened if opened is not None else await asyncio.to_thread(hub.get, namespace, create=True)
        fut = committer.submit(PendingAdd(**body.model_dump()))
        return {"id": await asyncio.wrap_future(fut)}

    @app.post(ns + "/add_many", responses=_ERRORS, tags=["memory"], dependencies=write)
    def add_many(namespace: Namespace, body: AddManyBody) -> dict[str, list[int]]:
        """Memory.add_many (one transaction)."""
        mem = memory(namespace, create=True)
        args = body.model_dump()
        return {"ids": mem.add_many(args.pop("texts"), progress=False, **args)}

    @app.get(ns + "/records/{id}", responses=_ERRORS, tags=["memory"], dependencies=read)
    def get(namespace: Namespace, id: RecordId) -> JSONResponse:
        """Memory.get."""
        return reply(to_json(memory(namespace).get(id)))

    @app.post(ns + "/delete", responses=_ERRORS, tags=["memory"], dependencies=admin)
    def delete(namespace: Namespace, body: DeleteBody) -> dict[str, int]:
        """Memory.delete (admin role)."""
        memory(namespace).delete(body.ids)
        return {"deleted": 1 if isinstance(body.ids, int) else len(body.ids)}

    @app.post(ns + "/search", responses=_ERRORS, tags=["memory"], dependencies=read)
    async def search(namespace: Namespace, body: SearchBody) -> JSONResponse:
        """Memory.search (the query is embedded together with concurrent ones)."""
        args = body.model_dump()
        mem = await embedded(namespace, body.query, create=False)
        hits = await asyncio.to_thread(mem.search, args.pop("query"), **args)
        return reply({"hits": to_json(hits)})

    @app.post(ns + "/enrich", responses=_ERRORS, tags=["memory"], dependencies=read)
    async def enrich(namespace: Namespace, body: EnrichBody, creds: Creds) -> JSONResponse:
        """Memory.enrich; ``mark_used`` (the default) needs the write role."""
        args = body.model_dump()
        if body.mark_used:
            allow(creds, namespace, "write")
        mem = await embedded(namespace, body.prompt, create=body.mark_used)
        return reply(to_json(await asyncio.to_thread(mem.enrich, args.pop("prompt"), **args)))

    @app.get(ns + "/topics", responses=_ERRORS, tags=["memory"], dependencies=read)
    def topics(namespace: Namespace) -> dict[str, Any]:
        """Memory.topics."""
        return {"topics": to_json(memory(namespace).topics())}

    @app.get(ns + "/topics/{id}", responses=_ERRORS, tags=["memory"], dependencies=read)
    def topic(namespace: Namespace, id: RecordId) -> JSONResponse:
        """Memory.topic (with members)."""
        return reply(to_json(memory(namespace).topic(id)))

    @app.post(ns + "/neighbours", responses=_ERRORS, tags=["graph"], dependencies=read)
    def neighbours(namespace: Namespace, body: NeighboursBody) -> JSONResponse:
        """Memory.neighbours."""
        args = body.model_dump()
        return reply(to_json(memory(namespace).neighbours(args.pop("node"), args.pop("rel"), **args)))

    @app.post(ns + "/path", responses=_ERRORS, tags=["graph"], dependencies=read)
    def path(namespace: Namespace, body: PathBody) -> JSONResponse:
        """Memory.path: ``{"subgraph": null}`` when no path exists."""
        found = memory(namespace).path(body.a, body.b, max_depth=body.max_depth, rel=body.rel)
        return reply({"subgraph": None if found is None else to_json(found)})

    @app.post(ns + "/subgraph", responses=_ERRORS, tags=["graph"], dependencies=read)
    def subgraph(namespace: Namespace, body: SubgraphBody) -> JSONResponse:
        """Memory.subgraph."""
        args = body.model_dump()
        return reply(to_json(memory(namespace).subgraph(args.pop("nodes"), **args)))

    @app.get(ns + "/stats", responses=_ERRORS, tags=["memory"], dependencies=read)
    def stats(namespace: Namespace) -> dict[str, Any]:
        """Memory.stats."""
        return to_json(memory(namespace).stats())

    @app.get(ns + "/export", tags=["memory"], dependencies=read, response_class=Response,
             responses={**_ERRORS, 200: {"description": "every record as one file",
                                         "content": {_EXPORT_TYPES["parquet"]: {}, _EXPORT_TYPES["jsonl"]: {}}}})
    def export(namespace: Namespace, format: Literal["parquet", "jsonl"] = "parquet") -> Response:
        """Memory.export: every record, with its vectors in Parquet, as one file (read role)."""
        mem = memory(namespace)
        with tempfile.TemporaryDirectory(prefix="selfmem-export-") as tmp:
            out = FilePath(tmp) / f"records.{format}"
            mem.export(out, format, progress=False)
            data = out.read_bytes()
        return Response(data, media_type=_EXPORT_TYPES[format])

    @app.get(ns + "/sessions", responses=_ERRORS, tags=["memory"], dependencies=read)
    def sessions(namespace: Namespace) -> dict[str, Any]:
        """Memory.sessions."""
        return {"sessions": to_json(memory(namespace).sessions())}

    @app.get(ns + "/commits", responses=_ERRORS, tags=["server"], dependencies=read)
    def commits(namespace: Namespace) -> dict[str, int]:
        """Group commit so far: ``committed`` single adds in ``batches`` commits; ``queries_embedded`` search
        and enrich texts in ``query_batches`` model calls."""
        committer, queries = hub.get(namespace)[1], hub.queries(namespace)
        return {"batches": committer.batches, "committed": committer.committed,
                "query_batches": 0 if queries is None else queries.batches,
                "queries_embedded": 0 if queries is None else queries.embedded}

    @app.post(ns + "/wait", responses=_ERRORS, tags=["memory"], dependencies=write)
    def wait(namespace: Namespace) -> dict[str, bool]:
        """Memory.wait: background refits finished."""
        memory(namespace, create=True).wait()
        return {"ok": True}

    @app.post(ns + "/rebuild", responses=_ERRORS, tags=["memory"], dependencies=admin)
    def rebuild(namespace: Namespace, body: RebuildBody) -> dict[str, bool]:
        """Memory.rebuild (admin role)."""
        hub.get(namespace)[0].rebuild(reembed=body.reembed)
        return {"ok": True}

    return app
