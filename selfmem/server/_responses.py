"""Every answer of ``memctl serve`` that is not a route's own: JSON replies and the one error mapping.

An error answers ``{"error": <SelfmemError subclass>, "message": ...}`` with the status of
:data:`selfmem.server._wire.STATUS_OF` (``Retry-After`` on 429), whether a route raised it, the request
failed validation, the guard refused it before routing, or the server has a bug (500, traceback to the log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._errors import InvalidInputError, SelfmemError
from ._errors import ServerError
from ._wire import error_body

__all__ = ["reply", "error_response", "install_error_handlers"]

log = logging.getLogger("selfmem.server")


def reply(content: object) -> JSONResponse:
    """A JSON answer written by the standard library's encoder, not FastAPI's: a record's metadata stored
    before adds refused nesting over ``MAX_NESTING`` levels may nest deeper than pydantic's serialiser
    allows (255 levels), and must not make its namespace unreadable."""
    return JSONResponse(content)


def error_response(exc: BaseException, status: int | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The answer to an error: its class and message, the status :data:`STATUS_OF` gives it unless ``status``
    overrides (413 is an invalid input that is too large), ``Retry-After`` on 429."""
    mapped, body = error_body(exc)
    status = mapped if status is None else status
    if status == 429:
        headers = {**(headers or {}), "Retry-After": str(max(1, round(getattr(exc, "retry_after", 1))))}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception a request can end in to :func:`error_response`."""

    @app.exception_handler(SelfmemError)
    async def _selfmem_error(request: Request, exc: SelfmemError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(InvalidInputError(_validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON: invalid input, like any other
            return error_response(InvalidInputError(f"{exc.detail}: send a JSON object"))
        if exc.status_code == 413:  # a chunked body over the limit
            return error_response(InvalidInputError(str(exc.detail)), status=413)
        return error_response(ServerError(str(exc.detail)), status=exc.status_code,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(ServerError(f"internal error ({type(exc).__name__}); the server's log has the "
                                          "traceback"))
