"""The errors a served memory adds to selfmem's tree (raised by :class:`~selfmem.server.RemoteMemory`)."""

from __future__ import annotations

from .._errors import RecordNotFoundError, SelfmemError

__all__ = ["ServerError", "NotAuthenticatedError", "AccessDeniedError", "ServerBusyError", "NamespaceNotFoundError"]


class ServerError(SelfmemError, ConnectionError):
    """The memory server could not be reached, failed, or answered something that is not its API."""


class NotAuthenticatedError(SelfmemError, PermissionError):
    """No valid token was given (HTTP 401): pass ``token=`` (or set ``SELFMEM_TOKEN``)."""


class AccessDeniedError(SelfmemError, PermissionError):
    """The token does not cover this namespace or this operation's role (HTTP 403)."""


class ServerBusyError(SelfmemError, RuntimeError):
    """The server's queue is full (HTTP 429); retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NamespaceNotFoundError(RecordNotFoundError):
    """The namespace does not exist on the server (a token with the write role creates it); memctl exit code 5."""
