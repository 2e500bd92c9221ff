"""memctl: the command-line interface to a memory directory."""

from ._app import cli, main

__all__ = ["cli", "main"]
