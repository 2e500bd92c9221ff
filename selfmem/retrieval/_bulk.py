"""Bulk embedding on GPUs: a tokenize/compute pipeline over every visible GPU.

:meth:`Views.embed_raw` hands large batches (``add_many``, imports, ``rebuild(reembed=True)``) to
:func:`bulk_embed` when the embedders run on CUDA. The texts are cut into chunks; CPU worker threads
tokenize a chunk with both models' Rust tokenizers (which release the GIL and run in parallel) and
pack it into length-bucketed, padded batches of a token budget in pinned memory, while one thread per
GPU runs the chunks before it: non-blocking copies, both models in their CUDA dtype (MiniLM in
float16, the own model in bfloat16), pooling and normalisation on the GPU, one copy back per chunk.
With several GPUs each holds its own copy of the models and takes the next chunk when it is free.

The models, tokenizers, truncation and pooling are the embedders' own (the per-text results equal
``embed``'s up to batch composition: padding never reaches pooled rows). CPU runs never come here.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .._progress import bar
from ._bert import BertEncoder
from ._bert import fits as bert_fits
from ._embedders import Embedder, SentenceTransformerEmbedder, resolve_device, resolve_dtype, shared_model
from ._tensors import Tensor

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from ._own import CausalLMEmbedder

__all__ = ["bulk_embed", "bulk_devices", "BULK_MIN"]

BULK_MIN = 8192  # texts; below it the ordinary path (no process pool to start); a chosen value, not measured
CHUNK = 8192  # texts per pipeline step (small: the first chunks are on the GPU sooner)
TOKEN_BUDGET = 1 << 17  # padded tokens per forward pass
MAX_ROWS = 8192


def bulk_devices(device: str) -> list[str]:
    """The CUDA devices a bulk run uses for an embedder configured with ``device`` ([] off CUDA).

    ``"auto"``/``"cuda"``: every visible GPU (``SELFMEM_BULK_GPUS=n`` caps it); ``"cuda:i"``: that one.
    """
    dev = resolve_device(device)
    if not dev.startswith("cuda"):
        return []
    if dev != "cuda":
        return [dev]
    import torch

    n = torch.cuda.device_count()
    cap = os.environ.get("SELFMEM_BULK_GPUS", "")
    if cap.isdigit() and int(cap) > 0:
        n = min(n, int(cap))
    return ["cuda"] + [f"cuda:{i}" for i in range(1, n)]


TokenizerSpec = tuple[str, bool, int, int, int]
"""(tokenizer JSON, add special tokens, truncate at, EOS id or -1, count texts longer than this many characters)."""


class _Counts(Protocol):
    truncated: int


@dataclass
class _Role:
    """One embedder as the pipeline runs it."""

    name: str
    dim: int
    pad_id: int
    tokenize: Callable[[list[str]], list[list[int]]]
    model_on: Callable[[str], Callable[[Tensor, Tensor], Tensor]]  # device -> run(ids, mask) -> pooled (b, dim) float
    spec: TokenizerSpec | None = None  # (tokenizer json, special tokens, truncate at, eos or -1, count cut over)
    on_cut: Callable[[int], None] | None = None  # adds truncated texts to the embedder's count


_TOKENIZERS: dict[TokenizerSpec, tuple[Tokenizer, Tokenizer]] = {}


def _tokenize_spec(spec: TokenizerSpec, texts: list[str]) -> tuple[list[list[int]], int]:
    """Token ids of ``texts`` under ``spec`` and how many were truncated (in a worker process, once per spec)."""
    from tokenizers import Tokenizer

    tok_json, special, cap, eos, count_over = spec
    if spec not in _TOKENIZERS:
        tok = Tokenizer.from_str(tok_json)
        tok.no_padding()
        full = Tokenizer.from_str(tok_json)
        full.no_padding()
        full.no_truncation()
        if eos < 0:
            tok.enable_truncation(cap)
        else:
            tok.no_truncation()
        _TOKENIZERS[spec] = (tok, full)
    tok, full = _TOKENIZERS[spec]
    encs = [e.ids for e in tok.encode_batch(texts, add_special_tokens=special)]
    if eos < 0:  # truncated by the tokenizer (the general model): count the long texts' full lengths
        long = [t for t in texts if len(t) > count_over]
        cut = sum(len(e.ids) > cap for e in full.encode_batch(long, add_special_tokens=special)) if long else 0
        return encs, cut
    cut = sum(len(ids) > cap for ids in encs)
    return [ids[:cap] or [eos] for ids in encs], cut


def _prepare_specs(specs: list[tuple[TokenizerSpec, int]], texts: list[str]
                   ) -> list[tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int]]:
    """One chunk tokenized and packed for every (spec, pad id): [(batches, truncated)] (a worker process)."""
    out = []
    for spec, pad in specs:
        encs, cut = _tokenize_spec(spec, texts)
        out.append((pack_batches(encs, pad), cut))
    return out


def _counting(emb: _Counts, spec: TokenizerSpec) -> tuple[Callable[[list[str]], list[list[int]]], Callable[[int], None]]:
    """A tokenizer for ``spec`` that adds the texts it cuts to ``emb.truncated`` (thread-safe), and that adder."""
    lock = threading.Lock()

    def on_cut(n: int) -> None:
        with lock:
            emb.truncated += n

    def tokenize(texts: list[str]) -> list[list[int]]:
        encs, cut = _tokenize_spec(spec, texts)
        on_cut(cut)
        return encs

    return tokenize, on_cut


def _general_role(name: str, emb: SentenceTransformerEmbedder) -> _Role | None:
    if not bert_fits(emb.path):
        return None
    runner = emb._load()
    limit = emb._limit(runner)
    dtype = resolve_dtype(emb.dtype, "cuda", cuda_default="float16")
    spec = (runner.tokenizer_json, True, limit, -1, limit - 2)
    tokenize, on_cut = _counting(emb, spec)

    def model_on(device: str) -> Callable[[Tensor, Tensor], Tensor]:
        enc = runner.encode if device == "cuda" else shared_model(
            ("general-model", str(emb.path), device, str(dtype)), lambda: BertEncoder(emb.path, device, dtype))

        def run(ids: Tensor, mask: Tensor) -> Tensor:
            return enc(ids, mask).float()

        return run

    return _Role(name, emb.dim, runner.pad_id, tokenize, model_on, spec, on_cut)


def _own_role(name: str, emb: CausalLMEmbedder) -> _Role | None:
    from ._causal import load_prefix, loaded_causal_lm

    if loaded_causal_lm(emb.weights, emb.device, emb.dtype) is not None:
        return None  # the solver's full model serves the embedder: its own path keeps one copy of the weights
    first = load_prefix(emb.weights, emb.layer, emb.device, emb.dtype)
    if first is None:
        return None
    layer, cap, eos = emb.layer, emb.max_tokens, first.eos_token_id
    spec = (emb._tokenizer_json(), False, cap, eos, 0)
    tokenize, on_cut = _counting(emb, spec)

    def model_on(device: str) -> Callable[[Tensor, Tensor], Tensor]:
        prefix = first if device == "cuda" else load_prefix(emb.weights, layer, device, emb.dtype)
        assert prefix is not None  # the same weights as ``first``: a Llama on every device

        def run(ids: Tensor, mask: Tensor) -> Tensor:
            h = prefix(ids, mask, [layer])[layer].float()
            m = mask.unsqueeze(-1).float()
            return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

        return run

    return _Role(name, emb.dim, first.pad_token_id, tokenize, model_on, spec, on_cut)


def _role(name: str, emb: Embedder) -> _Role | None:
    from ._own import CausalLMEmbedder

    if isinstance(emb, SentenceTransformerEmbedder) and bulk_devices(emb.device):
        return _general_role(name, emb)
    if isinstance(emb, CausalLMEmbedder) and bulk_devices(emb.device):
        return _own_role(name, emb)
    return None


def pack_batches(encs: Sequence[Sequence[int]], pad_id: int, token_budget: int = TOKEN_BUDGET,
                 max_rows: int = MAX_ROWS) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Length-bucketed padded batches of ``encs`` under a padded-token budget (longest first).

    Returns a list of (rows, ids (b, w) int64, mask (b, w) int64), rows indexing ``encs``.
    """
    lens = np.fromiter((len(e) for e in encs), dtype=np.int64, count=len(encs))
    if not len(lens):
        return []
    flat = np.fromiter(chain.from_iterable(encs), dtype=np.int64, count=int(lens.sum()))
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    order = np.argsort(-lens, kind="stable")
    out = []
    i = 0
    while i < len(order):
        width = int(lens[order[i]])  # the longest of the batch: sorted, so its first row
        rows = order[i: i + max(1, min(max_rows, token_budget // max(width, 1)))]
        i += len(rows)
        cols = np.arange(width)
        mask = cols[None, :] < lens[rows][:, None]
        pos = np.minimum(starts[rows][:, None] + cols[None, :], len(flat) - 1)
        ids = np.where(mask, flat[pos], pad_id)
        out.append((rows, ids, mask.astype(np.int64)))
    return out


_SPECS: list[tuple[TokenizerSpec, int]] = []


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """While spawned workers start, ``__main__`` is an empty module: a worker never re-runs the caller's
    script (one without an ``if __name__ == "__main__":`` guard would otherwise run again in every worker)."""
    import sys
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _init_worker(specs: list[tuple[TokenizerSpec, int]]) -> None:
    """A tokenizing process: its specs, and the Rust tokenizer on one thread (the processes are the parallelism)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _SPECS[:] = specs


def _prepare_in_worker(texts: list[str]) -> list[tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int]]:
    return _prepare_specs(_SPECS, texts)


def _prepare(roles: list[_Role], texts: list[str]) -> list[tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int]]:
    """One chunk tokenized and packed for every role, in a thread (roles without a spec: tests)."""
    return [(pack_batches(role.tokenize(texts), role.pad_id), 0) for role in roles]


def _gpu_worker(device: str, roles: list[_Role], jobs: queue.Queue, out: dict[str, np.ndarray],
                done: Callable[[int], None]) -> None:
    import torch

    runs = [role.model_on(device) for role in roles]
    on_gpu = torch.device(device).type == "cuda"

    def put(a: np.ndarray) -> Tensor:
        t = torch.from_numpy(a)
        return t.pin_memory().to(device, non_blocking=True) if on_gpu else t

    with torch.inference_mode(), torch.cuda.device(torch.device(device)) if on_gpu else contextlib.nullcontext():
        while True:
            job = jobs.get()
            if job is None:
                return
            sl, fut = job
            prepared = fut.result()
            n = sl.stop - sl.start
            for role, run, (batches, cut) in zip(roles, runs, prepared):
                if cut and role.on_cut is not None:
                    role.on_cut(cut)
                buf = torch.empty((n, role.dim), dtype=torch.float32, device=device)
                for rows, ids, mask in batches:
                    buf[put(rows)] = run(put(ids), put(mask))
                buf = torch.nn.functional.normalize(buf, dim=-1, eps=1e-12)
                out[role.name][sl] = buf.cpu().numpy()
            done(n)


def bulk_embed(embedders: Mapping[str, Embedder], texts: Sequence[str], *, progress: bool = False,
               chunk: int = CHUNK, workers: int | None = None, min_texts: int = BULK_MIN) -> dict[str, np.ndarray]:
    """Unit vectors of ``texts`` for every role whose embedder runs on CUDA through the pipeline.

    Roles that cannot (a CPU device, the hash embedder, a model of another shape, an own model served by a
    loaded full LM) are left out of the result; the caller embeds them as before. Nothing is done below
    ``min_texts`` texts.

    Parameters
    ----------
    embedders : mapping role -> Embedder
    texts : sequence of str
    progress : bool
    chunk : int
        Texts per pipeline step.
    workers : int, optional
        Tokenizing processes (default: every CPU but one per GPU, at least one).
    """
    texts = list(texts)
    if len(texts) < min_texts:
        return {}
    roles = [r for r in (_role(name, emb) for name, emb in embedders.items()) if r is not None]
    if not roles:
        return {}
    devices = sorted({d for r in roles for d in bulk_devices(getattr(embedders[r.name], "device", "cpu"))})
    devices = [d for d in devices if d == "cuda"] + [d for d in devices if d != "cuda"]
    try:
        return run_pipeline(roles, texts, devices, progress=progress, chunk=chunk, workers=workers)
    except BrokenProcessPool:  # no process could start (e.g. a __main__ read from stdin): tokenize in threads
        return run_pipeline(roles, texts, devices, progress=progress, chunk=chunk, workers=workers, processes=False)


def default_workers(n_devices: int) -> int:
    """Tokenizing processes: every CPU but one per GPU thread (``SELFMEM_BULK_WORKERS`` overrides)."""
    env = os.environ.get("SELFMEM_BULK_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) - n_devices)


def run_pipeline(roles: list[_Role], texts: list[str], devices: list[str], *, progress: bool = False,
                 chunk: int = CHUNK, workers: int | None = None, processes: bool = True) -> dict[str, np.ndarray]:
    """The pipeline itself: ``texts`` through every role on ``devices`` (CUDA devices; "cpu" in tests).

    Roles with a tokenizer spec are tokenized in worker processes (spawned: the Rust tokenizer and the
    packing hold the GIL for part of their time, and threads measured 6.4k texts/s on 16 cores); roles
    without one (tests' toy roles) in threads.
    """
    workers = workers or default_workers(len(devices))
    out = {r.name: np.zeros((len(texts), r.dim), dtype=np.float32) for r in roles}
    jobs: queue.Queue = queue.Queue(maxsize=max(2 * len(devices), workers))
    slices = [slice(s, min(s + chunk, len(texts))) for s in range(0, len(texts), chunk)]
    errors: list[BaseException] = []
    specs = [(r.spec, r.pad_id) for r in roles if r.spec is not None]
    use_processes = processes and len(specs) == len(roles)
    if use_processes:
        import multiprocessing as mp

        pool: Executor = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                        initargs=(specs,))
        with _without_main():  # each submit starts one worker while none is idle: all start here
            for _ in range(workers):
                pool.submit(os.getpid)
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="selfmem-tokenize")
    with pool, bar(total=len(texts), enabled=progress, desc="bulk embedding", unit="text") as b:
        lock = threading.Lock()

        def done(n: int) -> None:
            with lock:
                b.update(n)

        def guarded(device: str) -> None:
            try:
                _gpu_worker(device, roles, jobs, out, done)
            except BaseException as exc:  # re-raised in the caller below
                errors.append(exc)
                while True:  # drain so the feeder never blocks on a dead worker
                    if jobs.get() is None:
                        return

        threads = [threading.Thread(target=guarded, args=(d,), name=f"selfmem-gpu-{d}", daemon=True)
                   for d in devices]
        for t in threads:
            t.start()
        try:
            for sl in slices:
                fut: Future = (pool.submit(_prepare_in_worker, texts[sl]) if use_processes
                               else pool.submit(_prepare, roles, texts[sl]))
                jobs.put((sl, fut))
        finally:
            for _ in threads:
                jobs.put(None)
            for t in threads:
                t.join()
    if errors:
        raise errors[0]
    return out
