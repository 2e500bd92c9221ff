"""Reading records to import from a file: JSON Lines or plain text, strictly UTF-8."""

from __future__ import annotations

import json
import os
from pathlib import Path
from datetime import datetime, timezone

from .._errors import InvalidInputError
from .._types import Metadata

__all__ = ["read_records", "session_groups"]


_FIELDS = {"text", "kind", "metadata", "session", "created_at", "importance", "parents", "key", "id", "topic_ids",
           "topic_path"}


def _line_record(obj: object, where: str, default_kind: str) -> Metadata:
    if not isinstance(obj, dict) or "text" not in obj:
        raise InvalidInputError(f"{where}: expected an object with a 'text' field; nothing was imported")
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise InvalidInputError(f"{where}: unknown fields {unknown} (known: {sorted(_FIELDS)}); nothing was imported")
    rec = {"text": obj["text"], "kind": obj.get("kind", default_kind), "metadata": obj.get("metadata"),
           "session": obj.get("session"), "importance": obj.get("importance", 1.0), "key": obj.get("key"),
           "id": obj.get("id"), "parents": obj.get("parents") or [], "created_at": None}
    if obj.get("created_at") is not None:
        try:
            ts = datetime.fromisoformat(str(obj["created_at"]))
        except ValueError as exc:
            raise InvalidInputError(f"{where}: created_at {obj['created_at']!r} is not an ISO time; nothing was "
                                    "imported") from exc
        rec["created_at"] = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    if rec["id"] is not None and (isinstance(rec["id"], bool) or not isinstance(rec["id"], int)):
        raise InvalidInputError(f"{where}: id must be an integer; nothing was imported")
    if not isinstance(rec["parents"], list) or not all(isinstance(p, int) and not isinstance(p, bool)
                                                       for p in rec["parents"]):
        raise InvalidInputError(f"{where}: parents must be a list of ids; nothing was imported")
    return rec


def read_records(path: str | os.PathLike[str], default_kind: str) -> list[Metadata]:
    """The records of ``path``; nothing is returned unless every line is valid.

    A ``.jsonl`` file holds one object per line: ``{"text": ..., "kind": ..., "metadata": {...}}`` plus,
    optionally, the fields ``memctl export`` writes (``session``, ``created_at``, ``importance``,
    ``key``, ``id``, ``parents``; ``topic_ids`` and ``topic_path`` are ignored). Any other file is
    read as one text per non-empty line.

    Returns
    -------
    list of dict
        ``text, kind, metadata, session, created_at, importance, key, id, parents`` per record.

    Raises
    ------
    InvalidInputError
        Unreadable file, invalid UTF-8 or JSON, a bad field; the message names the line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
    out: list[Metadata] = []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        try:
            s = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{path}:{n}: invalid UTF-8 at byte {exc.start}; re-encode the file as UTF-8 (nothing was imported)"
            ) from exc
        if not s.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                obj = json.loads(s)
                out.append(_line_record(obj, f"{path}:{n}", default_kind))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{n}: not JSON ({exc.msg}); nothing was imported") from exc
            except RecursionError as exc:
                raise InvalidInputError(f"{path}:{n}: nested too deeply to store; flatten its metadata (nothing "
                                        "was imported)") from exc
        else:
            out.append({"text": s, "kind": default_kind, "metadata": None, "session": None, "created_at": None,
                        "importance": 1.0, "key": None, "id": None, "parents": []})
    return out


def session_groups(rows: list[Metadata], session: str | None) -> list[tuple[str | None, list[Metadata]]]:
    """Consecutive runs of rows with one session (``session`` overrides every row's)."""
    groups: list[tuple[str | None, list[Metadata]]] = []
    for row in rows:
        s = session if session is not None else row["session"]
        if groups and groups[-1][0] == s:
            groups[-1][1].append(row)
        else:
            groups.append((s, [row]))
    return groups
