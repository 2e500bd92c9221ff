"""A real ``memctl serve`` process for tests: random port on 127.0.0.1, hash embedder, ready signal."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from helpers import hash_cfg

from selfmem import MemoryConfig

__all__ = ["Served"]


class Served:
    """``with Served(root) as s:`` runs ``memctl serve root --port 0 --json`` (new namespaces use
    ``hash_cfg(**config)``, or ``memory_config``) and returns once it printed its URL (``s.url``); killed at the end."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
                 memory_config: MemoryConfig | None = None, **config: Any) -> None:
        self.root, self.args, self.timeout = Path(root), list(args), timeout
        self.env = {**os.environ, **(env or {})}
        self.config = memory_config if memory_config is not None else hash_cfg(**config)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> Served:
        cfg = self.root.parent / f"{self.root.name}-config.toml"
        self.config.write(cfg)
        self.err = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "selfmem.cli", "serve", str(self.root), "--port", "0",
                                      "--json", "--config", str(cfg), *self.args], stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, env=self.env)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(self.timeout):
            self.kill()
            raise AssertionError(f"the server did not start within {self.timeout} s: {self.stderr()}")
        line = self.proc.stdout.readline()
        try:
            self.url = json.loads(line)["url"]
        except (ValueError, KeyError):
            self.kill()
            raise AssertionError(f"the server did not start: {line!r} {self.stderr()}") from None
        return self

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
