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

from ._errors import InvalidInputError

__all__ = ["NPZ_ERRORS", "damaged", "atomic_write", "fsync_dir", "check_output", "is_memory_dir"]


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


def is_memory_dir(directory: Path) -> bool:
    """True when ``directory`` is a selfmem memory: it holds ``memory.duckdb``, or the ``config.toml`` that a
    memory writes (a PostgreSQL memory's directory holds its caches and that file only)."""
    if (directory / "memory.duckdb").exists():
        return True
    try:
        with open(directory / "config.toml", "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b"# selfmem memory configuration" in head or b"config_version" in head


def _files_of(directory: Path) -> set[tuple[int, int]]:
    """(device, inode) of every file in a memory directory (its ``view/`` included)."""
    out = set()
    for root, _dirs, names in os.walk(directory):
        for name in names:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            out.add((st.st_dev, st.st_ino))
    return out


def check_output(out: object, *, protect: tuple[Path, ...] = ()) -> Path:
    """Validate a file a command will write: a path to a file in an existing directory that is neither inside
    a memory directory nor, through a symlink, ``..`` or a hard link, one of a memory's files.

    Parameters
    ----------
    out : str or path-like
        The target file.
    protect : tuple of Path
        Memory directories to guard besides any found above the target (the memory being exported).

    Returns
    -------
    Path
        The target, with ``~`` expanded.

    Raises
    ------
    InvalidInputError
        (``memctl`` exit code 6) with the reason and what to do.
    """
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip() or "\x00" in str(out):
        raise InvalidInputError(f"out must be a file path, got {out!r}")
    path = Path(out).expanduser()
    if path.is_dir():
        raise InvalidInputError(f"{path} is a directory; give a file name such as {path / 'memory.jsonl'}")
    if not path.parent.is_dir():
        raise InvalidInputError(f"{path.parent} does not exist; create it first")
    real = path.resolve()  # symlinks and .. resolved
    guarded = [d.resolve() for d in protect]
    for directory in real.parents:
        if directory in guarded or is_memory_dir(directory):
            raise InvalidInputError(
                f"{path} lies inside the memory directory {directory}; writing there would replace the memory's "
                "own files. Choose a path outside every memory directory")
    if real.exists():
        st = os.stat(real)
        if st.st_nlink > 1 and any((st.st_dev, st.st_ino) in _files_of(d) for d in guarded):
            raise InvalidInputError(f"{path} is a hard link to a file of the memory at {guarded[0]}; writing "
                                    "it would replace the memory's own file. Choose a new file name")
    return path
