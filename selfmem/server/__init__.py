"""Serving memories over HTTP: ``memctl serve`` (FastAPI + uvicorn) and :class:`RemoteMemory` (httpx).

The server owns one :class:`~selfmem.Memory` per namespace (a directory under its root); many
processes share it through ``RemoteMemory``, which has the same API. Needs ``pip install 'selfmem[server]'``.
"""

from ._client import RemoteMemory
from ._errors import AccessDeniedError, NamespaceNotFoundError, NotAuthenticatedError, ServerBusyError, ServerError

__all__ = ["RemoteMemory", "ServerError", "NotAuthenticatedError", "AccessDeniedError", "ServerBusyError",
           "NamespaceNotFoundError"]
