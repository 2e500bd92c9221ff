"""Reading records to import from a file: JSON Lines or plain text, strictly UTF-8."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._errors import InvalidInputError

__all__ = ["read_records"]


def read_records(path: str | Path, default_kind: str) -> tuple[list[str], list[str], list[dict[str, Any] | None]]:
    """Texts, kinds and metadata from ``path``; nothing is returned unless every line is valid.

    A ``.jsonl`` file holds one object per line: ``{"text": ..., "kind": ..., "metadata": {...}}``
    (kind and metadata optional). Any other file is read as one text per non-empty line.

    Raises
    ------
    InvalidInputError
        Unreadable file, invalid UTF-8 or JSON; the message names the line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
    texts: list[str] = []
    kinds: list[str] = []
    metas: list[dict[str, Any] | None] = []
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
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{n}: not JSON ({exc.msg}); nothing was imported") from exc
            if not isinstance(obj, dict) or "text" not in obj:
                raise InvalidInputError(f"{path}:{n}: expected an object with a 'text' field; nothing was imported")
            texts.append(obj["text"])
            kinds.append(obj.get("kind", default_kind))
            metas.append(obj.get("metadata"))
        else:
            texts.append(s)
            kinds.append(default_kind)
            metas.append(None)
    return texts, kinds, metas
