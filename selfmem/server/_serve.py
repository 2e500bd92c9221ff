"""``memctl serve``: bind, check the address against the tokens, run uvicorn until SIGTERM/SIGINT."""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .._config import MemoryConfig
from .._errors import ConfigError, DependencyError
from ._auth import Tokens
from ._hub import Committer, Hub

__all__ = ["serve", "ServeOptions", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeOptions:
    """How ``memctl serve`` runs (see its ``--help``)."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 8765
    tokens_file: str | None = None
    config_file: str | None = None
    window_ms: float = 2.0
    max_batch: int = 256
    max_queue: int = 4096
    max_body: int = 8 * 2**20
    max_inflight: int = 256
    max_open: int = 64
    idle_close: float = 600.0
    as_json: bool = False
    access_log: bool = False


def serve(opts: ServeOptions) -> None:
    """Serve the namespaces under ``opts.root`` until SIGTERM or SIGINT (in-flight requests finish, queued
    adds are committed and every memory is closed). Prints the URL (a JSON line with ``as_json``) once ready."""
    try:
        import uvicorn

        from ._app import Limits, create_app
    except ImportError as exc:
        raise DependencyError("memctl serve needs FastAPI and uvicorn: pip install 'selfmem[server]'") from exc
    tokens = Tokens.load(opts.tokens_file)
    if not is_loopback(opts.host) and not tokens.enabled:
        raise ConfigError(f"refusing to serve on {opts.host} without tokens: give --tokens FILE (or set "
                          "$SELFMEM_TOKENS), or bind 127.0.0.1")
    config = MemoryConfig.read(opts.config_file) if opts.config_file else None
    root = Path(opts.root)
    root.mkdir(parents=True, exist_ok=True)
    family = socket.AF_INET6 if ":" in opts.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it an
    # answer's body (written after its headers) waited for the client's delayed ACK: 40 ms per request on a
    # kept-alive connection
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((opts.host, opts.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot bind {opts.host}:{opts.port} ({exc.strerror}); pick another --port "
                          "(0 picks a free one)") from exc
    sock.listen(2048)
    port = sock.getsockname()[1]
    host = f"[{opts.host}]" if family == socket.AF_INET6 else opts.host
    url = f"http://{host}:{port}"

    def ready() -> None:
        line = json.dumps({"url": url, "root": str(root.resolve()), "auth": tokens.enabled}) if opts.as_json else \
            f"memctl serve: serving {root} at {url}" + ("" if tokens.enabled else " (no tokens: loopback only)")
        print(line, flush=True)

    hub = Hub(root, config, committer=lambda mem: Committer(mem, window=opts.window_ms / 1000,
                                                            max_batch=opts.max_batch, max_queue=opts.max_queue),
              max_open=opts.max_open, idle_close=opts.idle_close)
    app = create_app(hub, tokens, Limits(max_body=opts.max_body, max_inflight=opts.max_inflight), on_ready=ready)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"  # stdout carries only the URL line
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if opts.access_log else "warning",
                                           access_log=opts.access_log, log_config=log_config,
                                           timeout_graceful_shutdown=30, lifespan="on"))
    def hang_up(signum: int, frame: FrameType | None) -> None:  # a closed terminal: drain and stop, as SIGTERM does
        server.should_exit = True

    def reload_tokens(signum: int, frame: FrameType | None) -> None:
        try:
            tokens.reload(opts.tokens_file)
            logging.getLogger("selfmem.server").warning("tokens reloaded: %d token(s)", len(tokens.grants))
        except ConfigError as exc:  # the old tokens stay in force
            logging.getLogger("selfmem.server").error("tokens not reloaded (the old ones stay): %s", exc)

    previous = {}
    if threading.current_thread() is threading.main_thread():  # (a test may run the server in a thread)
        previous = {sig: signal.signal(sig, handler) for sig, handler in
                    ((signal.SIGHUP, hang_up), (signal.SIGUSR1, reload_tokens))}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
