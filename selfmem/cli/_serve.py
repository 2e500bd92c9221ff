"""``memctl serve`` and the ``--url`` option of the read commands (search, inspect, topics, graph)."""

from __future__ import annotations


import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._common import SafePath, errors, json_opt

__all__ = ["serve", "url_opt", "open_memory"]


@click.command()
@click.argument("root", type=SafePath(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --tokens.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--tokens", "tokens_file", default=None, type=SafePath(dir_okay=False, exists=True),
              help='JSON list of {"token" or "sha256", "namespaces", "role"} (default: $SELFMEM_TOKENS).')
@click.option("--config", "config_file", default=None, type=SafePath(dir_okay=False, exists=True),
              help="config.toml for namespaces this server creates (default: MemoryConfig()).")
@click.option("--window-ms", default=2.0, show_default=True, type=click.FloatRange(0, 1000),
              help="Group commit: wait this long for concurrent adds to join a batch.")
@click.option("--max-batch", default=256, show_default=True, type=click.IntRange(1), help="Adds per commit at most.")
@click.option("--max-queue", default=4096, show_default=True, type=click.IntRange(1),
              help="Adds waiting per namespace at most; more are answered 429.")
@click.option("--max-body", default=8 * 2**20, show_default=True, type=click.IntRange(1024),
              help="Bytes per request body; more are answered 413.")
@click.option("--max-inflight", default=256, show_default=True, type=click.IntRange(1),
              help="Requests handled at once; more are answered 429.")
@click.option("--max-open", default=64, show_default=True, type=click.IntRange(1),
              help="Namespaces open at once; the least recently used idle one is closed beyond it.")
@click.option("--idle-close", default=600.0, show_default=True, type=click.FloatRange(0),
              help="Close a namespace this many seconds after its last request (0: never).")
@click.option("--access-log", is_flag=True, help="Log every request (never its token).")
@json_opt
@errors
def serve(root: str, host: str, port: int, tokens_file: str | None, config_file: str | None, window_ms: float,
          max_batch: int, max_queue: int, max_body: int, max_inflight: int, max_open: int, idle_close: float,
          access_log: bool, as_json: bool) -> None:
    """Serve the memories under ROOT over HTTP (one namespace = one memory directory ROOT/NAME).

    Prints its URL once ready (--json: a JSON line). SIGTERM, SIGINT (Ctrl-C) or SIGHUP (a closed terminal)
    finishes in-flight requests, commits queued adds and closes every memory; SIGUSR1 reloads the tokens
    file. Clients: selfmem.server.RemoteMemory(URL, NAME, token).
    """
    from ..server._serve import ServeOptions
    from ..server._serve import serve as run

    run(ServeOptions(Path(root), host=host, port=port, tokens_file=tokens_file, config_file=config_file,
                     window_ms=window_ms, max_batch=max_batch, max_queue=max_queue, max_body=max_body,
                     max_inflight=max_inflight, max_open=max_open, idle_close=idle_close, as_json=as_json,
                     access_log=access_log))


def url_opt(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--url URL``: PATH names a namespace of the server at URL (token from $SELFMEM_TOKEN)."""
    return click.option("--url", default=None, help="Query the memory server at URL instead; PATH is then the "
                        "namespace (token from $SELFMEM_TOKEN).")(fn)


def open_memory(path: str, url: str | None) -> Any:
    """The memory a read command uses: the namespace ``path`` at ``url``, else the directory read-only."""
    if url:  # the standard library's HTTP client: no httpx, numpy, DuckDB or FAISS in this process (issue 26)
        from ..server._client import ShortLivedRemoteMemory

        return ShortLivedRemoteMemory(url, path, os.environ.get("SELFMEM_TOKEN"), create=False)
    from ..memory import Memory

    return Memory(path, read_only=True)



