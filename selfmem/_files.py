"""Atomic file writes: every derived file is written through :func:`atomic_write`.

The data go to a temporary file in the same directory, are flushed and fsync'ed, and
replace the target with ``os.replace`` (atomic on POSIX); the directory is fsync'ed after
the rename, so a crash leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["NPZ_ERRORS", "damaged", "atomic_write", "fsync_dir"]


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object] | bytes | str) -> None:
    """Replace ``path`` atomically with what ``write`` produces.

    Parameters
    ----------
    path : path-like
        The target file.
    write : callable, bytes or str
        A function given the open binary temp file (e.g. ``lambda fh: np.savez(fh, ...)``), or
        the content itself (``str`` is written as UTF-8).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, "hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            if isinstance(write, str):
                fh.write(write.encode("utf-8"))
            elif isinstance(write, (bytes, bytearray)):
                fh.write(write)
            else:
                write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


NPZ_ERRORS: tuple[type[BaseException], ...] = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
"""What reading an empty, truncated, bit-flipped or foreign ``.npz`` raises (numpy and zipfile)."""


def damaged(path: str | os.PathLike[str], exc: BaseException) -> None:
    """Warn that a derived file could not be read and is rebuilt from the store."""
    warnings.warn(f"{path} is damaged ({type(exc).__name__}: {exc}); it is rebuilt from the store",
                  RuntimeWarning, stacklevel=3)
