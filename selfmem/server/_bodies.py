"""The request and error bodies of ``memctl serve`` (pydantic models: they validate and make the OpenAPI schema).

One model per memory call that takes a body, with the fields of the :class:`~selfmem.MemoryAPI` method it
serves (``tests/test_contract.py`` checks each model against the protocol, so the server and
:class:`~selfmem.server.RemoteMemory`, which sends these fields, cannot drift apart). Models are strict:
JSON is not coerced (``0`` is not a time, nor a bool).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .._types import Metadata
from ._wire import NAMESPACE_RE

__all__ = ["AddBody", "AddManyBody", "SearchBody", "EnrichBody", "DeleteBody", "NeighboursBody", "PathBody",
           "SubgraphBody", "RebuildBody", "ErrorBody", "ERRORS", "EXPORT_TYPES", "Namespace", "Creds", "RecordId",
           "MAX_ID"]

MAX_ID = 2**63 - 1


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no coercion: 0 is not a time, nor a bool


def _iso(value: object) -> object:
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
    metadata: Metadata | None = None
    session: str | None = None
    importance: float = 1.0
    parents: list[Id] = Field(default_factory=list, max_length=1024)
    own_embedding: list[float] | None = Field(default=None, max_length=65536)
    created_at: IsoTime | None = None
    key: str | None = None


class AddManyBody(_Body):
    texts: list[str] = Field(max_length=1024)
    kind: str | list[str] = "output"
    metadata: list[Metadata | None] | None = Field(default=None, max_length=1024)
    session: str | None = None
    importance: float | list[float] = 1.0
    parents: list[list[Id]] | None = Field(default=None, max_length=1024)
    own_embedding: list[list[float]] | None = Field(default=None, max_length=1024)
    created_at: IsoTime | list[IsoTime] | None = None
    keys: list[str | None] | None = Field(default=None, max_length=1024)


class _Filters(_Body):
    kinds: list[str] | None = None
    sessions: list[str] | None = None
    where: Metadata | None = None
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


EXPORT_TYPES = {"parquet": "application/vnd.apache.parquet", "jsonl": "application/x-ndjson"}
ERRORS: dict[int | str, dict[str, Any]] = {  # the type of FastAPI's ``responses``
    code: {"model": ErrorBody, "description": text} for code, text in (
        (401, "no valid token"), (403, "the token does not cover this namespace or role"),
        (404, "no such record, topic or namespace"), (409, "the memory is locked by another process"),
        (413, "the request body is too large"), (422, "invalid input"), (429, "busy: retry after Retry-After s"),
        (500, "an error of the memory"), (503, "the server is shutting down"), (507, "the disk refused a write"))}
