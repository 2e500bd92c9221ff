"""Text checks shared by validation (memory) and metadata filters (store)."""

from __future__ import annotations

from ._errors import InvalidInputError

__all__ = ["unicode_text"]


def unicode_text(text: str, what: str) -> str:
    """``text`` unchanged if it encodes as UTF-8; else InvalidInputError naming ``what``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} is not valid Unicode (lone surrogate at {exc.start}); fix the encoding") from exc
    return text
