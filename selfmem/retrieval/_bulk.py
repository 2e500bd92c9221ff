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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from .._progress import bar
from ._bert import BertEncoder
from ._bert import fits as bert_fits
from ._embedders import Embedder, SentenceTransformerEmbedder, resolve_device, resolve_dtype, shared_model

__all__ = ["bulk_embed", "bulk_devices", "BULK_MIN"]

BULK_MIN = 2048  # texts; below this the ordinary path (no threads, no chunks) is as fast
CHUNK = 16384  # texts per pipeline step
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


@dataclass
class _Role:
    """One embedder as the pipeline runs it."""

    name: str
    dim: int
    pad_id: int
    tokenize: Callable[[list[str]], list[list[int]]]
    model_on: Callable[[str], Callable[[Any, Any], Any]]  # device -> run(ids, mask) -> pooled (b, dim) float


def _general_role(name: str, emb: SentenceTransformerEmbedder) -> _Role | None:
    if not bert_fits(emb.path):
        return None
    runner = emb._load()
    tok = emb._tokenizer(runner)
    counter = emb._counter(runner)
    limit = emb._limit(runner)
    dtype = resolve_dtype(emb.dtype, "cuda", cuda_default="float16")
    lock = threading.Lock()

    def tokenize(texts: list[str]) -> list[list[int]]:
        encs = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
        long = [t for t in texts if len(t) > limit - 2]
        if long:
            cut = sum(len(e.ids) > limit for e in counter.encode_batch(long, add_special_tokens=True))
            with lock:
                emb.truncated += cut
        return encs

    def model_on(device: str) -> Callable[[Any, Any], Any]:
        enc = runner.encode if device == "cuda" else shared_model(
            ("general-model", str(emb.path), device, str(dtype)), lambda: BertEncoder(emb.path, device, dtype))

        def run(ids: Any, mask: Any) -> Any:
            return enc(ids, mask).float()

        return run

    return _Role(name, emb.dim, runner.pad_id, tokenize, model_on)


def _own_role(name: str, emb: Any) -> _Role | None:
    from ._causal import load_prefix, loaded_causal_lm

    if loaded_causal_lm(emb.weights, emb.device, emb.dtype) is not None:
        return None  # the solver's full model serves the embedder: its own path keeps one copy of the weights
    first = load_prefix(emb.weights, emb.layer, emb.device, emb.dtype)
    if first is None:
        return None
    tok = emb._private_tokenizer()
    layer, cap, eos = emb.layer, emb.max_tokens, first.eos_token_id
    lock = threading.Lock()

    def tokenize(texts: list[str]) -> list[list[int]]:
        encs = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        cut = sum(len(ids) > cap for ids in encs)
        if cut:
            with lock:
                emb.truncated += cut
        return [ids[:cap] or [eos] for ids in encs]

    def model_on(device: str) -> Callable[[Any, Any], Any]:
        prefix = first if device == "cuda" else load_prefix(emb.weights, layer, device, emb.dtype)

        def run(ids: Any, mask: Any) -> Any:
            h = prefix(ids, mask, [layer])[layer].float()
            m = mask.unsqueeze(-1).float()
            return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

        return run

    return _Role(name, emb.dim, first.pad_token_id, tokenize, model_on)


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


def _prepare(roles: list[_Role], texts: list[str], pin: bool) -> list[list[tuple[np.ndarray, Any, Any]]]:
    """One chunk tokenized and packed for every role (runs in a worker thread)."""
    import torch

    per_role = []
    for role in roles:
        batches = []
        for rows, ids, mask in pack_batches(role.tokenize(texts), role.pad_id):
            t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)
            if pin:
                t_ids, t_mask = t_ids.pin_memory(), t_mask.pin_memory()
            batches.append((rows, t_ids, t_mask))
        per_role.append(batches)
    return per_role


def _gpu_worker(device: str, roles: list[_Role], jobs: queue.Queue, out: dict[str, np.ndarray],
                done: Callable[[int], None]) -> None:
    import torch

    runs = [role.model_on(device) for role in roles]
    on_gpu = torch.device(device).type == "cuda"
    with torch.inference_mode(), torch.cuda.device(torch.device(device)) if on_gpu else contextlib.nullcontext():
        while True:
            job = jobs.get()
            if job is None:
                return
            sl, fut = job
            prepared = fut.result()
            n = sl.stop - sl.start
            for role, run, batches in zip(roles, runs, prepared):
                buf = torch.empty((n, role.dim), dtype=torch.float32, device=device)
                for rows, ids, mask in batches:
                    pooled = run(ids.to(device, non_blocking=True), mask.to(device, non_blocking=True))
                    buf[torch.from_numpy(rows).to(device, non_blocking=True)] = pooled
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
        Tokenizing threads (default: 2 per GPU, at most the CPU count).
    """
    texts = list(texts)
    if len(texts) < min_texts:
        return {}
    roles = [r for r in (_role(name, emb) for name, emb in embedders.items()) if r is not None]
    if not roles:
        return {}
    devices = sorted({d for name in (r.name for r in roles) for d in bulk_devices(embedders[name].device)})
    devices = [d for d in devices if d == "cuda"] + [d for d in devices if d != "cuda"]
    return run_pipeline(roles, texts, devices, progress=progress, chunk=chunk, workers=workers)


def run_pipeline(roles: list[_Role], texts: list[str], devices: list[str], *, progress: bool = False,
                 chunk: int = CHUNK, workers: int | None = None) -> dict[str, np.ndarray]:
    """The pipeline itself: ``texts`` through every role on ``devices`` (CUDA devices; "cpu" in tests)."""
    workers = workers or max(1, min(2 * len(devices), os.cpu_count() or 1))
    out = {r.name: np.zeros((len(texts), r.dim), dtype=np.float32) for r in roles}
    jobs: queue.Queue = queue.Queue(maxsize=2 * len(devices))
    slices = [slice(s, min(s + chunk, len(texts))) for s in range(0, len(texts), chunk)]
    errors: list[BaseException] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="selfmem-tokenize") as pool, \
            bar(total=len(texts), enabled=progress, desc="bulk embedding", unit="text") as b:
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
                fut: Future = pool.submit(_prepare, roles, texts[sl], devices[0] != "cpu")
                jobs.put((sl, fut))
        finally:
            for _ in threads:
                jobs.put(None)
            for t in threads:
                t.join()
    if errors:
        raise errors[0]
    return out
