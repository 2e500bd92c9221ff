"""The LLM protocol every backend implements, and the small types it speaks.

A prompt is a string (sent as one user message to chat models) or a list of chat messages
``{"role": "system" | "user" | "assistant", "content": str}``. ``generate`` returns a
:class:`Generation`; ``temperature=0`` is greedy and deterministic, a ``seed`` makes sampling
repeatable.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._errors import InvalidInputError

__all__ = ["LLM", "Generation", "Messages", "as_messages", "check_generate_args", "cut_at_stop"]

Messages = list[dict[str, str]]
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Generation:
    """One completion.

    Attributes
    ----------
    text : str
        The generated text (stop sequence excluded).
    prompt_tokens, completion_tokens : int
        Token counts (as the backend reports them).
    finish_reason : str
        ``"stop"`` (end of text or a stop sequence) or ``"length"`` (``max_tokens`` reached).
    latency_s : float
        Wall time of the call that produced it (shared by a batch).
    model : str
        The backend's model name.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_s: float
    model: str


@runtime_checkable
class LLM(Protocol):
    """What the solver loop needs from a language model."""

    name: str

    def generate(self, prompt: str | Sequence[Mapping[str, str]], *, max_tokens: int = 256,
                 temperature: float = 0.0, stop: Sequence[str] | None = None, seed: int | None = None) -> Generation: ...

    def generate_many(self, prompts: Sequence[str | Sequence[Mapping[str, str]]], *, max_tokens: int = 256,
                      temperature: float = 0.0, stop: Sequence[str] | None = None,
                      seed: int | None = None) -> list[Generation]: ...


def as_messages(prompt: Any) -> Messages:
    """A prompt as chat messages (a string becomes one user message); InvalidInputError if malformed.

    >>> as_messages("hi")
    [{'role': 'user', 'content': 'hi'}]
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidInputError("prompt is empty; pass the text to send to the model")
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, Sequence) or not prompt:
        raise InvalidInputError("prompt must be a str or a non-empty list of {'role', 'content'} messages")
    out = []
    for i, m in enumerate(prompt):
        if not isinstance(m, Mapping) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise InvalidInputError(f"message {i} must be {{'role': one of {_ROLES}, 'content': str}}, got {m!r}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def check_generate_args(max_tokens: Any, temperature: Any, stop: Any, seed: Any) -> tuple[int, float, list[str], int | None]:
    """Validated ``generate`` arguments (InvalidInputError naming the bad one)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral) or max_tokens < 1:
        raise InvalidInputError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not math.isfinite(temperature) \
            or not 0 <= float(temperature) <= 5:
        raise InvalidInputError(f"temperature must be a number in [0, 5], got {temperature!r}")
    stops = [] if stop is None else ([stop] if isinstance(stop, str) else list(stop))
    if not all(isinstance(s, str) and s for s in stops):
        raise InvalidInputError(f"stop must be a str or a list of non-empty str, got {stop!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise InvalidInputError(f"seed must be an integer >= 0 or None, got {seed!r}")
    return int(max_tokens), float(temperature), stops, None if seed is None else int(seed)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop sequence, and whether one was found.

    >>> cut_at_stop("answer: 4\\nnext", ["\\n"])
    ('answer: 4', True)
    """
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
