"""Bearer tokens of ``memctl serve``: loaded from a file or the environment, kept only as SHA-256 hashes.

A tokens file is JSON: a list of ``{"token": "...", "namespaces": ["a", "b"], "role": "write"}`` (or
``"sha256": "<hex>"`` instead of ``"token"``, so the file need not hold a secret), optionally with
``"expires": "2027-01-31T00:00:00Z"``. ``namespaces`` is required and may be ``["*"]`` for every
namespace; an unknown key is refused when the file is loaded (``memctl serve`` reloads it on SIGHUP). Roles, each including the ones before: ``read`` (get, search, enrich
without ``mark_used``, topics, graph, stats), ``write`` (add, enrich marking use, wait, creating the
namespace on first write), ``admin`` (delete, rebuild). The plain token is hashed on load and dropped;
a presented token is hashed and compared with every stored hash in constant time.

>>> tokens = Tokens.from_entries([{"token": "s3cret", "namespaces": ["team"], "role": "read"}])
>>> tokens.check("s3cret", "team", "read").role
'read'
>>> tokens.check("s3cret", "team", "write")
Traceback (most recent call last):
...
selfmem.server._errors.AccessDeniedError: this token has the role 'read'; 'write' is needed for this call
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .._errors import ConfigError
from ._errors import AccessDeniedError, NotAuthenticatedError

__all__ = ["Tokens", "Grant", "ROLES", "TOKENS_ENV", "hash_token", "KEYS"]

ROLES = ("read", "write", "admin")
KEYS = ("token", "sha256", "namespaces", "role", "expires")
"""The keys of a tokens-file entry; any other is refused when the file is loaded."""
TOKENS_ENV = "SELFMEM_TOKENS"
"""Environment variable holding the tokens JSON (used when no tokens file is given)."""


def _expiry(value: object, i: int) -> float | None:
    """``expires`` of entry ``i`` (an ISO 8601 time with a time zone, e.g. ``2027-01-31T00:00:00Z``) as epoch
    seconds; None when absent."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConfigError(f"token entry {i}: \"expires\" must be an ISO 8601 time with a time zone, e.g. "
                          "\"2027-01-31T00:00:00Z\"")
    return when.timestamp()


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is kept."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What one token may do: its namespaces (``("*",)`` for all), its role, and until when (epoch seconds;
    None: no expiry)."""

    digest: str
    namespaces: tuple[str, ...]
    role: str
    expires: float | None = None

    def covers(self, namespace: str) -> bool:
        return "*" in self.namespaces or namespace in self.namespaces


class Tokens:
    """The server's tokens (hashes only). Empty: no authentication (loopback only)."""

    def __init__(self, grants: Sequence[Grant] = ()) -> None:
        self.grants = tuple(grants)

    @property
    def enabled(self) -> bool:
        return bool(self.grants)

    @classmethod
    def from_entries(cls, entries: object) -> Tokens:
        if not isinstance(entries, list):
            raise ConfigError('tokens must be a JSON list of {"token" or "sha256", "namespaces", "role"} objects')
        grants = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise ConfigError(f"token entry {i} is not an object")
            unknown = sorted(set(e) - set(KEYS))
            if unknown:  # a misspelt "namespaces" must never fall back to every namespace
                raise ConfigError(f"token entry {i}: unknown key(s) {unknown}; the keys are {list(KEYS)}")
            if "namespaces" not in e:
                raise ConfigError(f"token entry {i} needs \"namespaces\": a list of names, or [\"*\"] for all")
            if "token" in e and "sha256" in e:
                raise ConfigError(f"token entry {i} has both \"token\" and \"sha256\"; keep one")
            if isinstance(e.get("token"), str) and e["token"]:
                digest = hash_token(e["token"])
            elif isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64:
                digest = e["sha256"].lower()
            else:
                raise ConfigError(f"token entry {i} needs a non-empty \"token\" or a 64-hex-digit \"sha256\"")
            ns = e.get("namespaces", ["*"])
            if not isinstance(ns, list) or not ns or not all(isinstance(n, str) and n for n in ns):
                raise ConfigError(f"token entry {i}: \"namespaces\" must be a non-empty list of names (or [\"*\"])")
            role = e.get("role", "read")
            if role not in ROLES:
                raise ConfigError(f"token entry {i}: \"role\" must be one of {ROLES}, got {role!r}")
            grants.append(Grant(digest, tuple(ns), role, _expiry(e.get("expires"), i)))
        return cls(grants)

    def reload(self, path: str | os.PathLike[str] | None) -> None:
        """Replace the grants with those of ``path`` (or ``$SELFMEM_TOKENS``) in one step: a request sees the
        old set or the new one. A file that fails to load raises ConfigError and changes nothing."""
        self.grants = Tokens.load(path).grants

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> Tokens:
        """Tokens from ``path`` (JSON), else from ``$SELFMEM_TOKENS``, else none."""
        if path is not None:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"cannot read the tokens file {path}: {exc.strerror}") from exc
            where = str(path)
        elif os.environ.get(TOKENS_ENV):
            text, where = os.environ[TOKENS_ENV], f"${TOKENS_ENV}"
        else:
            return cls()
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:  # the message names a position, never the text (it holds tokens)
            raise ConfigError(f"{where} is not JSON (line {exc.lineno}, column {exc.colno})") from None
        return cls.from_entries(entries)

    def identify(self, token: str | None) -> Grant:
        """The grant of ``token``; raises NotAuthenticatedError. Every stored hash is compared (constant time)."""
        if not token:
            raise NotAuthenticatedError("this server needs a token: send 'Authorization: Bearer <token>' "
                                        "(RemoteMemory(token=...) or $SELFMEM_TOKEN)")
        digest = hash_token(token)
        found: Grant | None = None
        for g in self.grants:
            if hmac.compare_digest(g.digest, digest) and found is None:
                found = g
        if found is None:
            raise NotAuthenticatedError("the token is not valid for this server")
        if found.expires is not None and time.time() >= found.expires:
            raise NotAuthenticatedError("the token has expired; ask for a new one")
        return found

    def check(self, token: str | None, namespace: str, role: str) -> Grant:
        """The grant of ``token`` if it covers ``namespace`` with at least ``role``; else 401/403 errors."""
        g = self.identify(token)
        if not g.covers(namespace):
            raise AccessDeniedError(f"this token does not cover the namespace {namespace!r}")
        if ROLES.index(g.role) < ROLES.index(role):
            raise AccessDeniedError(f"this token has the role {g.role!r}; {role!r} is needed for this call")
        return g
