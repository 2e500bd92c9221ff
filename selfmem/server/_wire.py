"""The wire format of ``memctl serve``: result types to JSON and back, errors to JSON bodies and back.

Both ends use this module, so a :class:`~selfmem.Hit` that leaves the server as JSON comes back to a
:class:`~selfmem.server.RemoteMemory` as an equal ``Hit``, and a ``RecordNotFoundError`` raised by the
server's memory is raised again by the client, with the same message.
"""

from __future__ import annotations

import re
from datetime import datetime

from .. import _errors
from .._types import to_json
from .._types import (JSON, Edge, Enriched, Finding, Hit, Metadata, Node, Record, RebuildInfo, Stats, Subgraph, Topic,
                      ViewInfo)
from ._errors import AccessDeniedError, NamespaceNotFoundError, NotAuthenticatedError, ServerBusyError, ServerError

__all__ = ["NAMESPACE_RE", "check_namespace", "to_json", "record", "hit", "topic", "stats", "subgraph", "enriched", "error_body", "error_from",
           "STATUS_OF", "error_class"]


NAMESPACE_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""A namespace: 1-64 letters, digits, ``_`` or ``-``, not starting with ``_``/``-`` (no dots: no traversal)."""
_NAMESPACE = re.compile(NAMESPACE_RE)


def check_namespace(name: object) -> str:
    """``name`` if it is a valid namespace, else InvalidInputError (the server and ``RemoteMemory`` both check)."""
    if not isinstance(name, str) or not _NAMESPACE.fullmatch(name):
        raise _errors.InvalidInputError(f"invalid namespace {str(name)[:80]!r}: use 1-64 letters, digits, '_' or "
                                        "'-' (no '/', '.' or spaces)")
    return name


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def record(d: Metadata) -> Record:
    """A :class:`Record` from its JSON form."""
    return Record(id=d["id"], kind=d["kind"], text=d["text"], metadata=d.get("metadata") or {},
                  session=d.get("session"), created_at=_time(d.get("created_at")),
                  importance=d.get("importance", 1.0), use_count=d.get("use_count", 0),
                  last_used_at=_time(d.get("last_used_at")), parents=tuple(d.get("parents") or ()))


def hit(d: Metadata) -> Hit:
    """A :class:`Hit` from its JSON form."""
    return Hit(record=record(d["record"]), score=d["score"], distance=d["distance"], rank=d["rank"],
               relevance=d.get("relevance", 0.0), keyword=d.get("keyword", 0.0), topic=d.get("topic"),
               via=tuple(d.get("via") or ()), expanded_from=d.get("expanded_from"))


def topic(d: Metadata) -> Topic:
    """A :class:`Topic` from its JSON form."""
    return Topic(id=d["id"], level=d["level"], parent=d.get("parent"), children=tuple(d.get("children") or ()),
                 size=d["size"], label=d["label"], keywords=tuple(d.get("keywords") or ()),
                 provisional=d.get("provisional", False), members=tuple(d.get("members") or ()))


def _finding(d: Metadata) -> Finding:
    return Finding(part=d["part"], message=d["message"], fix=d["fix"], code=d.get("code", ""))


def _rebuild_info(d: JSON) -> RebuildInfo:
    if not d:
        return RebuildInfo()
    return RebuildInfo(at=d["at"], records=d["records"], added_since=d["added_since"], deleted_since=d["deleted_since"])


def _view_info(d: JSON) -> ViewInfo:
    if not d:
        return ViewInfo()
    return ViewInfo(published_at=d["published_at"], age_s=d["age_s"], records=d["records"], segments=d["segments"])


def stats(d: Metadata) -> Stats:
    """A :class:`Stats` from its JSON form (``topic_levels`` keys back to int)."""
    return Stats(path=d["path"], records=d["records"], kinds=d["kinds"], sessions=d["sessions"],
                 embedders=d["embedders"], index=d["index"], config=d["config"], notes=tuple(d.get("notes") or ()),
                 graph=d.get("graph") or {}, topic_levels={int(k): v for k, v in (d.get("topic_levels") or {}).items()},
                 provisional_topics=d.get("provisional_topics", 0), disk=d.get("disk") or {},
                 last_rebuild=_rebuild_info(d.get("last_rebuild")), view=_view_info(d.get("view")),
                 health=tuple(_finding(f) for f in d.get("health") or ()))


def subgraph(d: Metadata) -> Subgraph:
    """A :class:`Subgraph` from its JSON form."""
    nodes = tuple(Node(key=n["key"], label=n["label"], props=n.get("props") or {}) for n in d["nodes"])
    edges = tuple(Edge(src=e["src"], rel=e["rel"], dst=e["dst"], weight=e.get("weight", 1.0),
                       created_at=_time(e.get("created_at")), props=e.get("props") or {}) for e in d["edges"])
    return Subgraph(nodes=nodes, edges=edges)


def enriched(d: Metadata) -> Enriched:
    """An :class:`Enriched` from its JSON form."""
    return Enriched(prompt=d["prompt"], hits=tuple(hit(h) for h in d["hits"]), tokens=d["tokens"],
                    dropped=d.get("dropped", 0))


# -- errors ----------------------------------------------------------------------------------------------------
_KNOWN: dict[str, type[_errors.SelfmemError]] = {
    name: getattr(_errors, name) for name in _errors.__all__}
_KNOWN.update({cls.__name__: cls for cls in (ServerError, AccessDeniedError, NotAuthenticatedError,
                                               ServerBusyError, NamespaceNotFoundError)})

STATUS_OF: tuple[tuple[type[BaseException], int], ...] = (
    (NotAuthenticatedError, 401), (AccessDeniedError, 403), (_errors.ReadOnlyError, 403),
    (_errors.RecordNotFoundError, 404), (NamespaceNotFoundError, 404), (_errors.MemoryLockedError, 409), (_errors.InvalidInputError, 422),
    (_errors.ConfigError, 422), (ServerBusyError, 429), (_errors.MemoryClosedError, 503),
    (_errors.StorageError, 507), (_errors.SelfmemError, 500))
"""HTTP status per error class, most specific first."""


def error_class(name: str) -> type[_errors.SelfmemError]:
    """The ``SelfmemError`` subclass called ``name`` (:class:`ServerError` for a name this version lacks)."""
    return _KNOWN.get(name, ServerError)


def error_body(exc: BaseException) -> tuple[int, dict[str, str]]:
    """The status and JSON body ``{"error": class name, "message": str(exc)}`` of an error."""
    status = next((code for cls, code in STATUS_OF if isinstance(exc, cls)), 500)
    name = type(exc).__name__ if isinstance(exc, _errors.SelfmemError) else "ServerError"
    return status, {"error": name, "message": str(exc)}


def error_from(status: int, body: object) -> _errors.SelfmemError:
    """The error a client raises for an error response (the class named in the body, else by status)."""
    if isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str):
        named: _errors.SelfmemError = error_class(body["error"])(body["message"])
        return named
    by_status: dict[int, type[_errors.SelfmemError]] = {401: NotAuthenticatedError, 403: AccessDeniedError, 404: _errors.RecordNotFoundError,
                 413: _errors.InvalidInputError, 422: _errors.InvalidInputError, 429: ServerBusyError}
    return by_status.get(status, ServerError)(f"the server answered {status}: {str(body)[:300]}")
