"""The guard in front of every route of ``memctl serve``: tokens, body size and requests in flight.

A pure ASGI middleware, so it sees a request before routing and before its body is read: a request to a
namespace without a token that covers it gets 401/403 without the body being read, a body over
``max_body`` bytes 413 (also a chunked one, while it is read), and more than ``max_inflight`` requests
at once 429 with ``Retry-After``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import InvalidInputError, SelfmemError
from ._auth import Tokens
from ._errors import AccessDeniedError, ServerBusyError
from ._responses import error_response

__all__ = ["Limits", "Guard"]


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


def _too_large(limit: int) -> InvalidInputError:
    return InvalidInputError(f"the request body is over the server's limit of {limit} bytes; send less (e.g. "
                             "split add_many into smaller batches)")


class _TooLarge(StarletteHTTPException):
    """A chunked body grew past the limit while read: an HTTP exception, so FastAPI passes it through as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, str(_too_large(limit)))


_NAMESPACED = re.compile(r"^/v1/namespaces/([^/]+)(/|$)")


class Guard:
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
            await _refuse(send, refused)
            return
        limit = self.limits.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(send, _too_large(limit), 413)
            return
        if self.inflight >= self.limits.max_inflight:
            await _refuse(send, ServerBusyError(f"{self.inflight} requests are in flight; retry in a second"))
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
                await _refuse(send, _too_large(limit), 413)
        finally:
            self.inflight -= 1


async def _refuse(send: Send, exc: SelfmemError, status: int | None = None) -> None:
    """Answer before the app has seen the request (the response is sent on the raw ASGI channel)."""
    resp = error_response(exc, status)
    await send({"type": "http.response.start", "status": resp.status_code, "headers": resp.raw_headers})
    await send({"type": "http.response.body", "body": resp.body})
