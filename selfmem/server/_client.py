"""``RemoteMemory``: the memory protocol over HTTP, for many processes sharing one served memory."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, overload
from urllib.parse import quote, urlencode, urlsplit

from .._config import MemoryConfig
from .._errors import DependencyError, InvalidInputError, MemoryClosedError
from .._types import JSON, Enriched, Hit, Record, SessionRow, Stats, Subgraph, Topic
from . import _wire as w
from ._errors import ServerBusyError, ServerError

if TYPE_CHECKING:  # numpy is imported by whoever passes an array: memctl --url never does
    import http.client

    import numpy as np

__all__ = ["RemoteMemory", "TOKEN_ENV"]

TOKEN_ENV = "SELFMEM_TOKEN"
"""Environment variable with the client's token (used when ``token`` is not given)."""


def _is_array(x: object) -> TypeGuard[np.ndarray]:
    numpy = sys.modules.get("numpy")  # an object can be an array only once numpy is imported
    return numpy is not None and isinstance(x, numpy.ndarray)


def _vec(x: Any) -> Any:
    if x is None:
        return None
    if _is_array(x):
        return x.astype(float).tolist()
    return [_vec(v) if _is_array(v) or isinstance(v, (list, tuple)) else float(v) for v in x]


# -- transports: one request in, (status, Retry-After, body) out ----------------------------------------------------
class _Unsent(Exception):
    """Nothing reached the server (connection refused, DNS, connect timeout); ``str`` says why."""


class _Lost(Exception):
    """The request may have reached the server but no answer came back; ``str`` is the failure's class name."""


class _Answer:
    __slots__ = ("status", "retry_after", "content")

    def __init__(self, status: int, retry_after: str | None, content: bytes) -> None:
        self.status, self.retry_after, self.content = status, retry_after, content

    def json(self) -> JSON:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def _plain(value: object) -> JSON:
    """numpy scalars and arrays as the JSON values they hold (a Memory takes them: so does its client)."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _json_body(body: object) -> bytes:
    """The request body as both transports send it (numpy values as numbers and lists; NaN refused)."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=_plain).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the call's arguments cannot be sent as JSON ({exc}); pass numbers, strings, "
                                "lists and dicts") from None


def _quote_path(path: str) -> str:
    """The path as httpx sends it: quoted with its PATH_SAFE ('%' stays, so an existing %xx is kept) and
    with "." and ".." segments removed as its ``normalize_path`` does."""
    path = quote(path, safe="!$%&'()*+,;=:@/[\\]^|~")
    parts = path.split("/")
    if "." not in parts and ".." not in parts:
        return path
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out and out != [""]:
                out.pop()
        elif part != ".":
            out.append(part)
    return "/".join(out)


class _HttpxTransport:
    """httpx: a pooled, thread-safe client (the default; any URL, https included)."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise DependencyError("RemoteMemory needs httpx: pip install 'selfmem[server]'") from exc
        self._httpx = httpx
        # TCP_NODELAY: a request goes out as headers then body; Nagle's algorithm would hold the body back
        # until the server's delayed ACK (40 ms on Linux) arrived
        transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._client = httpx.Client(base_url=base, headers=headers, timeout=timeout, transport=transport)

    def request(self, method: str, path: str, body: object, params: Mapping[str, str] | None) -> _Answer:
        httpx = self._httpx
        try:
            if body is None:
                resp = self._client.request(method, path, params=params)
            else:
                resp = self._client.request(method, path, params=params, content=_json_body(body),
                                            headers={"Content-Type": "application/json"})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Unsent(str(exc)) from None
        except httpx.TransportError as exc:
            raise _Lost(type(exc).__name__) from None
        return _Answer(resp.status_code, resp.headers.get("Retry-After"), resp.content)

    def close(self) -> None:
        self._client.close()


class _StdlibTransport:
    """The standard library's ``http.client``, one kept-alive connection (plain ``http://`` only).

    For a short-lived process that sends a few requests (``memctl ... --url``): it needs neither httpx (an
    import of ~80 ms, rich and pygments included) nor an SSL context with the CA bundle (~70 ms per client),
    which together took longer than the command's requests. Requests are serialised by a lock.
    """

    def __init__(self, base: str, headers: dict[str, str], timeout: float) -> None:
        import http.client

        self._http = http.client
        parts = urlsplit(base)
        self._host, self._port = parts.hostname or "", parts.port or 80
        self._prefix = parts.path.rstrip("/")  # with the namespace
        self._headers = {"Accept": "*/*", "User-Agent": "selfmem", **headers}
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None and select.select([conn.sock], [], [], 0)[0]:
            conn.close()  # readable while idle: the server closed it (keep-alive timeout)
        if conn is None or conn.sock is None:
            conn = self._http.HTTPConnection(self._host, self._port, timeout=self._timeout)
            try:
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                conn.close()
                raise _Unsent(str(exc)) from None
            self._conn = conn
        return conn

    def request(self, method: str, path: str, body: object, params: Mapping[str, str] | None) -> _Answer:
        target = _quote_path(self._prefix + path)
        if params:
            target += "?" + urlencode(params)
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = _json_body(body)
            headers["Content-Type"] = "application/json"
        with self._lock:
            conn = self._connection()
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                content = resp.read()
            except (OSError, self._http.HTTPException) as exc:
                conn.close()
                raise _Lost(type(exc).__name__) from None
            if resp.will_close:
                conn.close()
            return _Answer(resp.status, resp.getheader("Retry-After"), content)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


def _time(x: object) -> object:
    if isinstance(x, datetime):
        return x.isoformat()
    if isinstance(x, (list, tuple)):
        return [_time(v) for v in x]
    return x


class RemoteMemory:
    """A memory served by ``memctl serve``, with the API of :class:`selfmem.Memory` (implements :class:`selfmem.MemoryAPI`).

    Same arguments, same result types, and the same ``SelfmemError`` subclasses, raised from the
    server's error body; plus :class:`~selfmem.server.NotAuthenticatedError` (401),
    :class:`~selfmem.server.AccessDeniedError` (403), :class:`~selfmem.server.ServerBusyError` (429 after
    the retries) and :class:`~selfmem.server.ServerError` (unreachable).

    Parameters
    ----------
    url : str
        The server, e.g. ``"http://127.0.0.1:8765"``.
    namespace : str
        The memory on the server (1-64 letters, digits, ``_``, ``-``).
    token : str, optional
        Bearer token; default ``$SELFMEM_TOKEN``.
    create : bool
        Create the namespace now if missing (needs the write role); else a missing one raises
        :class:`~selfmem.server.NamespaceNotFoundError` on first use.
    timeout : float
        Seconds per request.
    retries : int
        Retries of a request that did not reach the server, was answered 429 or 503, or (for reads
        and adds with a ``key``) whose answer was lost; with back-off.

    Examples
    --------
    With ``memctl serve ROOT`` running (it prints its URL)::

        with RemoteMemory("http://127.0.0.1:8765", "team") as mem:
            rid = mem.add("The grid is rotated.", key="run-1/step-3")  # safe to retry
            hits = mem.search("rotation")
    """

    def __init__(self, url: str, namespace: str = "default", token: str | None = None, *, create: bool = True,
                 timeout: float = 60.0, retries: int = 5) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or \
                any(ord(c) < 33 or c == "\x7f" for c in url):
            raise InvalidInputError(f"url must be an http:// or https:// URL without spaces or control characters, "
                                    f"got {str(url)[:80]!r}")
        self.url, self.namespace, self.retries = url.rstrip("/"), w.check_namespace(namespace), retries
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client: _HttpxTransport | _StdlibTransport | None = self._transport(
            f"{self.url}/v1/namespaces/{namespace}", headers, timeout)
        self._session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"selfmem-remote-session-{id(self)}", default=None)
        try:
            self.config: MemoryConfig = MemoryConfig.from_dict(
                self._call("GET", "/config", params={"create": "true" if create else "false"}))
        except BaseException:
            self._client.close()
            raise

    # -- transport ----------------------------------------------------------------------------------------------
    def _transport(self, base: str, headers: dict[str, str], timeout: float) -> _HttpxTransport | _StdlibTransport:
        return _HttpxTransport(base, headers, timeout)

    @overload
    def _call(self, method: str, path: str, body: object = None, *, params: Mapping[str, str] | None = None,
              safe: bool = True, raw: Literal[False] = False) -> JSON: ...

    @overload
    def _call(self, method: str, path: str, body: object = None, *, params: Mapping[str, str] | None = None,
              safe: bool = True, raw: Literal[True]) -> bytes: ...

    def _call(self, method: str, path: str, body: object = None, *, params: Mapping[str, str] | None = None,
              safe: bool = True, raw: bool = False) -> JSON | bytes:
        """One request with retries; ``safe``: repeating it cannot duplicate a write; ``raw``: the body's bytes."""
        if self._client is None:
            raise MemoryClosedError("this RemoteMemory is closed; make a new one")
        delay = 0.1
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self._client.request(method, path, body, params)
            except _Unsent as exc:  # nothing reached the server
                if last:
                    raise ServerError(f"cannot reach the memory server at {self.url} ({exc})") from None
            except _Lost as exc:  # the request may have been processed
                if last or not safe:
                    raise ServerError(f"the memory server at {self.url} did not answer ({exc}); "
                                      + ("" if safe else "pass key= to make the add safe to retry")) from None
            else:
                if resp.status < 400:
                    return resp.content if raw else resp.json()
                try:
                    payload = resp.json()
                except ValueError:
                    payload = resp.text
                err = w.error_from(resp.status, payload)
                if resp.status not in (429, 503) or last:
                    if isinstance(err, ServerBusyError):
                        err.retry_after = float(resp.retry_after or 1)
                    raise err
                delay = max(delay, float(resp.retry_after or delay))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise ServerError("unreachable")  # pragma: no cover

    # -- the memory protocol ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, name: str) -> Iterator[str]:
        """Context manager: records added inside carry the session ``name`` (nests; per thread / task)."""
        token = self._session.set(name)
        try:
            yield name
        finally:
            self._session.reset(token)

    @property
    def current_session(self) -> str | None:
        """The session that ``add`` would use now (None outside ``session()``)."""
        return self._session.get()

    def add(self, text: str, kind: str = "output", metadata: Mapping[str, object] | None = None, *,
            session: str | None = None, importance: float = 1.0, parents: Sequence[int] = (),
            own_embedding: np.ndarray | None = None, created_at: datetime | None = None,
            key: str | None = None) -> int:
        """Memory.add: answered once the server has committed it (with other clients' adds)."""
        body = {"text": text, "kind": kind, "metadata": None if metadata is None else dict(metadata),
                "session": session if session is not None else self._session.get(), "importance": importance,
                "parents": list(parents), "own_embedding": _vec(own_embedding), "created_at": _time(created_at),
                "key": key}
        return int(self._call("POST", "/add", body, safe=key is not None)["id"])

    def add_many(self, texts: Sequence[str], kind: str | Sequence[str] = "output",
                 metadata: Sequence[Mapping[str, object] | None] | None = None, *,
                 session: str | None = None, importance: float | Sequence[float] = 1.0,
                 parents: Sequence[Sequence[int]] | None = None,
                 own_embedding: np.ndarray | Sequence[np.ndarray] | None = None,
                 progress: bool | None = None,
                 created_at: datetime | Sequence[datetime] | None = None,
                 keys: Sequence[str | None] | None = None) -> list[int]:
        """Memory.add_many (one transaction on the server; ``progress`` is ignored)."""
        body = {"texts": list(texts), "kind": kind if isinstance(kind, str) else list(kind),
                "metadata": None if metadata is None else [None if m is None else dict(m) for m in metadata],
                "session": session if session is not None else self._session.get(),
                "importance": importance if isinstance(importance, (int, float)) else list(importance),
                "parents": None if parents is None else [list(p) for p in parents],
                "own_embedding": _vec(own_embedding), "created_at": _time(created_at),
                "keys": None if keys is None else list(keys)}
        safe = keys is not None and all(k is not None for k in keys)
        return [int(i) for i in self._call("POST", "/add_many", body, safe=safe)["ids"]]

    def get(self, id: int) -> Record:
        """Memory.get."""
        return w.record(self._call("GET", f"/records/{int(id)}"))

    def delete(self, ids: int | Sequence[int]) -> None:
        """Memory.delete (admin role)."""
        self._call("POST", "/delete", {"ids": ids if isinstance(ids, int) else list(ids)})

    def search(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sessions: Sequence[str] | None = None, where: Mapping[str, object] | None = None,
               since: datetime | None = None, until: datetime | None = None,
               max_distance: float | None = None, mode: str | None = None,
               expand: bool | Sequence[str] | None = None) -> list[Hit]:
        """Memory.search."""
        body = {"query": query, "k": k, **self._filters(kinds=kinds, sessions=sessions, where=where, since=since,
                                                        until=until, max_distance=max_distance, mode=mode,
                                                        expand=expand)}
        return [w.hit(h) for h in self._call("POST", "/search", body)["hits"]]

    @staticmethod
    def _filters(**f: Any) -> dict[str, Any]:
        out = {}
        for name, value in f.items():
            if value is None:
                continue
            if name in ("kinds", "sessions") or (name == "expand" and not isinstance(value, bool)):
                value = list(value)
            out[name] = dict(value) if name == "where" else _time(value)
        return out

    def enrich(self, prompt: str, k: int = 5, *, budget_tokens: int | None = None, mark_used: bool = True,
               order: str = "time", **search: object) -> Enriched:
        """Memory.enrich (``mark_used`` needs the write role)."""
        body = {"prompt": prompt, "k": k, "budget_tokens": budget_tokens, "mark_used": mark_used, "order": order,
                **self._filters(**search)}
        return w.enriched(self._call("POST", "/enrich", body, safe=not mark_used))

    def topics(self) -> list[Topic]:
        """Memory.topics."""
        return [w.topic(t) for t in self._call("GET", "/topics")["topics"]]

    def topic(self, id: int) -> Topic:
        """Memory.topic."""
        return w.topic(self._call("GET", f"/topics/{int(id)}"))

    @staticmethod
    def _rel(rel: str | Sequence[str] | None) -> str | list[str] | None:
        return rel if rel is None or isinstance(rel, str) else list(rel)

    def neighbours(self, node: int | str, rel: str | Sequence[str] | None = None, *, direction: str = "both",
                   depth: int = 1, limit: int = 100) -> Subgraph:
        """Memory.neighbours."""
        body = {"node": node, "rel": self._rel(rel), "direction": direction, "depth": depth, "limit": limit}
        return w.subgraph(self._call("POST", "/neighbours", body))

    def path(self, a: int | str, b: int | str, *, max_depth: int = 4,
             rel: str | Sequence[str] | None = None) -> Subgraph | None:
        """Memory.path (None when no path exists)."""
        found = self._call("POST", "/path", {"a": a, "b": b, "max_depth": max_depth, "rel": self._rel(rel)})
        return None if found["subgraph"] is None else w.subgraph(found["subgraph"])

    def subgraph(self, nodes: Sequence[int | str], *, depth: int = 1, rel: str | Sequence[str] | None = None,
                 limit: int = 1000) -> Subgraph:
        """Memory.subgraph."""
        body = {"nodes": list(nodes), "depth": depth, "rel": self._rel(rel), "limit": limit}
        return w.subgraph(self._call("POST", "/subgraph", body))

    def stats(self) -> Stats:
        """Memory.stats."""
        return w.stats(self._call("GET", "/stats"))

    def sessions(self) -> list[SessionRow]:
        """Memory.sessions."""
        return list(self._call("GET", "/sessions")["sessions"])

    def export(self, out: str | os.PathLike[str], format: str = "jsonl", *, progress: bool | None = None) -> int:
        """Memory.export: the server writes every record as one file, saved here at ``out``; the count.

        ``progress`` is accepted for the same call as :meth:`Memory.export` (the server shows none).
        """
        from .._errors import InvalidInputError
        from .._files import check_output

        if format not in ("jsonl", "parquet"):
            raise InvalidInputError(f"format must be 'jsonl' or 'parquet', got {format!r}")
        path = check_output(out)  # never into a memory directory on this machine
        data = self._call("GET", "/export", params={"format": format}, raw=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if format == "jsonl":
            lines: int = data.count(b"\n")
            return lines
        import pyarrow.parquet as pq

        rows: int = pq.read_metadata(path).num_rows
        return rows

    def wait(self) -> None:
        """Memory.wait: the server's background refits of this namespace are finished."""
        self._call("POST", "/wait")

    def rebuild(self, *, reembed: bool = False) -> None:
        """Memory.rebuild (admin role)."""
        self._call("POST", "/rebuild", {"reembed": reembed})

    def close(self) -> None:
        """Close the connection (the server keeps the memory open). Idempotent."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._client is None

    def __enter__(self) -> RemoteMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteMemory({self.url!r}, {self.namespace!r}{', closed' if self.closed else ''})"


class ShortLivedRemoteMemory(RemoteMemory):
    """A :class:`RemoteMemory` for a process that sends a few requests and exits (``memctl ... --url``).

    Same requests, answers and errors; a plain ``http://`` URL goes through the standard library's
    ``http.client`` (:class:`_StdlibTransport`), so the process imports neither httpx nor numpy and makes no
    SSL context. Any other URL (https, user info, a query) goes through httpx as before.
    """

    def _transport(self, base: str, headers: dict[str, str], timeout: float) -> _HttpxTransport | _StdlibTransport:
        parts = urlsplit(base)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if (parts.scheme == "http" and parts.hostname and port_ok and not parts.username and not parts.password
                and not parts.query and not parts.fragment):
            return _StdlibTransport(base, headers, timeout)
        return super()._transport(base, headers, timeout)
