"""Any OpenAI-compatible HTTP server as an :class:`~selfmem.solver.LLM`.

vLLM, llama.cpp's server, Ollama and ``transformers serve`` all answer ``POST /v1/chat/completions``
(and most ``/v1/completions``). Requests have separate connect and read timeouts; 429 and 5xx
answers and dropped connections are retried with exponential backoff (``retries`` times); then a
:class:`~selfmem.LLMUnavailableError` (could not reach it) or :class:`~selfmem.LLMResponseError` (it
answered with an error status, quoted, or with something that is not the API's reply) is raised.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import DependencyError, InvalidInputError, LLMResponseError, LLMUnavailableError
from ._llm import Generation, as_messages, check_generate_args, cut_at_stop

__all__ = ["OpenAICompatibleLLM"]

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatibleLLM:
    """Generate through an OpenAI-compatible server.

    Parameters
    ----------
    base_url : str
        The server's API root, e.g. ``"http://127.0.0.1:8000/v1"``.
    model : str
        The model name the server knows.
    api_key : str, optional
        Sent as a bearer token (default: ``$OPENAI_API_KEY`` when set); never logged.
    endpoint : {"chat", "completions"}
        ``/chat/completions`` (messages, the server applies the chat template) or ``/completions``
        (a raw prompt; chat messages are joined as ``role: content`` lines).
    connect_timeout, read_timeout : float
        Seconds to establish the connection / to wait for the reply.
    retries : int
        Extra attempts after a 429/5xx answer or a dropped connection.
    backoff : float
        First wait between attempts in seconds; doubled each time.

    Examples
    --------
    >>> llm = OpenAICompatibleLLM("http://127.0.0.1:8000/v1", "SmolLM2-135M-Instruct")   # no request yet
    >>> llm.name
    'SmolLM2-135M-Instruct'
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, endpoint: str = "chat",
                 connect_timeout: float = 5.0, read_timeout: float = 120.0, retries: int = 3,
                 backoff: float = 0.5) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidInputError(f"base_url must be an http(s) URL like 'http://127.0.0.1:8000/v1', got {base_url!r}")
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"model must be the server's model name, got {model!r}")
        if endpoint not in ("chat", "completions"):
            raise InvalidInputError(f"endpoint must be 'chat' or 'completions', got {endpoint!r}")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout),
                            ("backoff", backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
                raise InvalidInputError(f"{name} must be a number of seconds >= 0, got {value!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
            raise InvalidInputError(f"retries must be an integer in [0, 20], got {retries!r}")
        try:
            import httpx
        except ImportError as exc:
            raise DependencyError("OpenAICompatibleLLM needs httpx: pip install 'selfmem[solver]'") from exc
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.endpoint = endpoint
        self.retries, self.backoff = retries, float(backoff)
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(read_timeout, connect=connect_timeout))

    def __repr__(self) -> str:  # no credentials
        return f"OpenAICompatibleLLM({self.base_url!r}, {self.name!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAICompatibleLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(self, prompt: str | Sequence[Mapping[str, str]], *, max_tokens: int = 256,
                 temperature: float = 0.0, stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """One completion of ``prompt`` (a str or chat messages); see :class:`~selfmem.solver.LLM`."""
        max_tokens, temperature, stops, seed = check_generate_args(max_tokens, temperature, stop, seed)
        messages = as_messages(prompt)
        body: dict[str, Any] = {"model": self.name, "max_tokens": max_tokens, "temperature": temperature}
        if stops:
            body["stop"] = stops
        if seed is not None:
            body["seed"] = seed
        if self.endpoint == "chat":
            body["messages"] = messages
        else:
            body["prompt"] = messages[0]["content"] if len(messages) == 1 else \
                "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        t0 = time.perf_counter()
        reply = self._post(f"/{'chat/completions' if self.endpoint == 'chat' else 'completions'}", body)
        return self._parse(reply, stops, time.perf_counter() - t0)

    def generate_many(self, prompts: Sequence[str | Sequence[Mapping[str, str]]], *, max_tokens: int = 256,
                      temperature: float = 0.0, stop: Sequence[str] | None = None,
                      seed: int | None = None) -> list[Generation]:
        """One request per prompt, in order (servers batch concurrent requests themselves)."""
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise InvalidInputError("prompts must be a list of prompts (use generate() for one)")
        return [self.generate(p, max_tokens=max_tokens, temperature=temperature, stop=stop, seed=seed)
                for p in prompts]

    # -- HTTP ---------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> Any:
        import httpx

        url = self.base_url + path
        wait = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self._client.post(url, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                    httpx.ReadTimeout, httpx.WriteError, httpx.PoolTimeout) as exc:
                if last:
                    raise LLMUnavailableError(
                        f"cannot reach the LLM server at {url} ({type(exc).__name__}: {exc or 'no detail'}) after "
                        f"{self.retries + 1} attempts; is it running?") from exc
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except json.JSONDecodeError as exc:
                        raise LLMResponseError(f"{url} answered {resp.status_code} with non-JSON: "
                                               f"{resp.text[:200]!r}") from exc
                if resp.status_code not in _RETRY_STATUS or last:
                    raise LLMResponseError(f"{url} answered HTTP {resp.status_code}: {_server_message(resp)}")
            time.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(self, reply: Any, stops: list[str], latency: float) -> Generation:
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] if self.endpoint == "chat" else choice["text"]
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
            usage = reply.get("usage") or {}
            finish = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMResponseError(f"the server's reply is not an OpenAI completion ({exc}): "
                                   f"{json.dumps(reply)[:300]}") from exc
        text, stopped = cut_at_stop(text, stops)
        return Generation(text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0),
                          finish_reason="stop" if stopped else str(finish), latency_s=latency,
                          model=str(reply.get("model") or self.name))


def _server_message(resp: Any) -> str:
    """The error message a server put in its body (OpenAI's {"error": {"message"}} or plain text)."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300] or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            return str(err.get("message", err))[:300]
        return str(err)[:300]
    return str(data)[:300]
