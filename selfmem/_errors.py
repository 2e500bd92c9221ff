"""The one exception tree of selfmem.

Every error that selfmem raises on purpose is a :class:`SelfmemError`. The
subclasses also derive from the matching built-in (``ValueError``,
``KeyError``, ...) so that callers who catch those keep working.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "storage_errors",
    "RefitError",
    "SelfmemError",
    "GraphError",
    "InvalidInputError",
    "RecordNotFoundError",
    "MemoryClosedError",
    "MemoryForkedError",
    "MemoryLockedError",
    "ReadOnlyError",
    "EmbedderMismatchError",
    "ConfigError",
    "CorruptMemoryError",
    "StorageError",
    "DependencyError",
    "ModelLoadError",
    "LLMError",
    "LLMUnavailableError",
    "LLMResponseError",
    "TaskTypeError",
]


class SelfmemError(Exception):
    """Base class of every error raised by selfmem."""


class InvalidInputError(SelfmemError, ValueError):
    """An argument is malformed (empty text, unknown kind, non-JSON metadata, ...)."""


class RecordNotFoundError(SelfmemError, KeyError):
    """No record with the given id exists in this memory."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "record not found"


class MemoryClosedError(SelfmemError, RuntimeError):
    """The memory was used after ``close()``."""


class MemoryForkedError(SelfmemError, RuntimeError):
    """The memory was used in a process other than the one that opened it (after ``fork()``); open a new
    handle in that process instead."""


class MemoryLockedError(SelfmemError, RuntimeError):
    """Another process holds the memory directory open for writing."""


class ReadOnlyError(SelfmemError, RuntimeError):
    """A write was attempted on a Memory opened with ``read_only=True``."""


class EmbedderMismatchError(SelfmemError):
    """The configured embedders differ from the ones the stored vectors were made with."""


class ConfigError(SelfmemError, ValueError):
    """A configuration value (or ``config.toml``) is invalid."""


class StorageError(SelfmemError, OSError):
    """The store could not be written (disk full, read-only file system); the failed call wrote nothing."""


@contextlib.contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn a refused file-system call (no such directory, read-only file system, full disk, no
    permission) inside the block into a :class:`StorageError` that says what could not be done."""
    try:
        yield
    except SelfmemError:
        raise
    except OSError as exc:
        raise StorageError(f"could not {what}: {exc.strerror or exc} (errno {exc.errno}); free space, fix the "
                           "permissions or choose another path, then retry (nothing was changed)") from exc


class RefitError(SelfmemError, RuntimeError):
    """A background refit failed unexpectedly; the previous state stays in use (``Memory.rebuild()`` refits)."""


class CorruptMemoryError(SelfmemError):
    """A file in the memory directory is unreadable or belongs to something else."""


class DependencyError(SelfmemError, ImportError):
    """An optional dependency is missing; the message names the pip extra to install."""


class ModelLoadError(SelfmemError):
    """A model could not be found or loaded from local files."""


class GraphError(SelfmemError):
    """The graph backend (Neo4j) failed or is unreachable; the local memory is unaffected."""


class LLMError(SelfmemError):
    """An LLM backend failed (the subclasses say how)."""


class LLMUnavailableError(LLMError, ConnectionError):
    """The LLM server could not be reached (refused, timed out, or gone mid-request) after the retries."""


class LLMResponseError(LLMError):
    """The LLM server answered with an error status (its message is quoted) or a reply that is not the API's."""


class TaskTypeError(SelfmemError):
    """A task type failed on a task: it could not be rendered, or its verifier raised (nothing was recorded)."""
