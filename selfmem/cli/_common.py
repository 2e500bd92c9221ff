"""What every memctl command shares: exit codes, one-line errors, ``--json`` output, path arguments."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from .._types import to_json
from .._errors import (ConfigError, CorruptMemoryError, DependencyError, EmbedderMismatchError, InvalidInputError,
                       MemoryLockedError, ModelLoadError, RecordNotFoundError, SelfmemError, StorageError)

__all__ = ["EXIT_CODES", "EXIT_HELP", "EXIT_INTERRUPTED", "one_line", "emit", "errors", "path_arg", "json_opt", "SafePath", "human_bytes"]

EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (CorruptMemoryError, 3), (MemoryLockedError, 4), (RecordNotFoundError, 5), (InvalidInputError, 6),
    (ConfigError, 6), (StorageError, 7), (DependencyError, 8), (ModelLoadError, 8), (EmbedderMismatchError, 9),
    (SelfmemError, 1))
EXIT_HELP = ("Exit codes: 0 success; 1 other selfmem error; 2 bad usage; 3 damaged memory (or doctor found "
             "problems); 4 memory locked by a writer; 5 record or topic not found; 6 invalid input or config "
             "(an --out inside a memory directory included); 7 the file system refused a write; 8 a dependency or model is missing; 9 embedder mismatch "
             "(memctl rebuild --reembed); 70 internal error; 130 interrupted.")
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def one_line(message: str) -> str:
    """A message on one line (a driver's error may span several: libpq's does)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def emit(obj: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print ``obj`` as JSON (``--json``) or as ``human(obj)``."""
    click.echo(json.dumps(to_json(obj), indent=2, ensure_ascii=False) if as_json else human(obj))


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and (root.obj or {}).get("debug"))


def errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One-line message on stderr and a distinct exit code per error class (``EXIT_HELP``); the traceback
    only with ``memctl --debug``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SelfmemError as exc:
            if _debug():
                raise
            click.echo(f"memctl: error: {one_line(str(exc))}", err=True)
            sys.exit(next(code for cls, code in EXIT_CODES if isinstance(exc, cls)))
        except KeyboardInterrupt:
            if _debug():
                raise
            click.echo("memctl: interrupted (the memory is unchanged or was committed up to the last batch)",
                       err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug: say so in one line, the traceback is one flag away
            if _debug():
                raise
            click.echo(f"memctl: internal error: {type(exc).__name__}: {one_line(str(exc))} (run memctl --debug ... for the "
                       "traceback, and please report it)", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


class SafePath(click.Path):
    """click.Path that refuses a NUL character with a usage error (os.stat raises ValueError on it)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail("a path cannot contain a NUL character", param, ctx)
        return super().convert(value, param, ctx)


path_arg = click.argument("path", type=SafePath(file_okay=False))
json_opt = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover
