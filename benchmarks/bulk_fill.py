"""Bulk embedding throughput on a GPU (general, own, dual, stage breakdown) against the per-call path.

Usage::

    python benchmarks/bulk_fill.py [--n 1000000] [--base-n 20000] [--models DIR] [--device auto]
                                   [--own-layer 9] [--json out.json]

Texts are LoCoMo turns, cycled with a running number (``gpu_models.bench_texts``). ``--models`` points at
the directories ``gpu_models.py unpack`` writes (a machine without the model packages); every token id of
the texts is then checked to be one of the shipped embedding rows. Measured:

- ``current``: today's path as ``Views.embed_raw`` ran it (``embed`` over chunks of 1,024 texts, batch 64 /
  32, one model after the other) on ``--base-n`` texts;
- ``tokenize``: both tokenizers plus batch packing alone, on the pipeline's worker threads;
- ``gpu``: the models alone on batches packed beforehand (no tokenization in the timed part);
- ``bulk``: the whole pipeline (:func:`selfmem.retrieval._bulk.bulk_embed`), general only, own only and
  dual, and the cosine of its vectors to the current path's on the same texts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_models import bench_texts, locomo_turns  # noqa: E402

from selfmem.retrieval import _bulk  # noqa: E402
from selfmem.retrieval._embedders import SentenceTransformerEmbedder, batches  # noqa: E402
from selfmem.retrieval._own import CausalLMEmbedder  # noqa: E402


def current_path(embs: dict, texts: list[str]) -> tuple[dict, dict]:
    """Today's per-call path (what ``Views.embed_raw`` did before the bulk path): vectors and seconds per role."""
    out, secs = {}, {}
    for role, emb in embs.items():
        t = time.perf_counter()
        out[role] = np.concatenate([emb.embed(texts[s]) for s in batches(len(texts), 1024, progress=False, desc="")])
        secs[role] = time.perf_counter() - t
    return out, secs


def check_vocab(embs: dict, texts: list[str], pack: Path) -> None:
    """Every token id of a sample (the LoCoMo turns, every 97th text: every running number) is a shipped row."""
    z = np.load(pack / "pack.npz")
    shipped = {"general": set(z["bert.used"].tolist()), "own": set(z["llama.used"].tolist())}
    sample = texts[:6000] + texts[::97]
    for role, emb in embs.items():
        r = _bulk._role(role, emb)
        assert r is not None and r.spec is not None
        seen: set[int] = set()
        for ids in _bulk._tokenize_spec(r.spec, sample)[0]:
            seen.update(ids)
        missing = seen - shipped[role]
        assert not missing, f"{role}: {len(missing)} token ids of the texts are not shipped rows"
        print(f"vocab check {role}: {len(seen)} distinct ids in {len(sample)} texts, all shipped")


def tokenize_only(roles: list, texts: list[str], workers: int, chunk: int) -> tuple[float, list]:
    """Seconds to tokenize and pack ``texts`` for every role in ``workers`` processes (pool start included)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    specs = [(r.spec, r.pad_id) for r in roles]
    t = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_bulk._init_worker,
                             initargs=(specs,)) as pool:
        prepared = list(pool.map(_bulk._prepare_in_worker, [texts[s:s + chunk] for s in range(0, len(texts), chunk)]))
    return time.perf_counter() - t, prepared


def gpu_only(roles: list, prepared: list, device: str) -> dict[str, float]:
    """Seconds of each model on batches packed beforehand (pinning and copies included, tokenization not)."""
    import torch

    secs = {}
    with torch.inference_mode():
        for k, role in enumerate(roles):
            run = role.model_on(device)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for per_role in prepared:
                for _rows, ids, mask in per_role[k][0]:
                    run(torch.from_numpy(ids).pin_memory().to(device, non_blocking=True),
                        torch.from_numpy(mask).pin_memory().to(device, non_blocking=True))
            torch.cuda.synchronize()
            secs[role.name] = time.perf_counter() - t
    return secs


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    c = (a * b).sum(1)
    return {"min": float(c.min()), "mean": float(c.mean()), "p001": float(np.quantile(c, 0.001))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--single-n", type=int, default=100_000, help="texts for the one-model bulk runs")
    ap.add_argument("--base-n", type=int, default=10_000)
    ap.add_argument("--tok-n", type=int, default=200_000, help="texts for the tokenize-only and gpu-only stages")
    ap.add_argument("--models", default=None, help="unpacked model directories (gpu_models.py unpack)")
    ap.add_argument("--pack", default=".gpu/models", help="the pack, for the vocabulary check")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--own-layer", type=int, default=9)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=_bulk.CHUNK)
    ap.add_argument("--json", default=None)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()

    import torch

    gen_model = str(Path(args.models) / "minilm") if args.models else "all-MiniLM-L6-v2"
    own_model = str(Path(args.models) / "smollm2") if args.models else "smollm2"
    gen = SentenceTransformerEmbedder(gen_model, device=args.device)
    own = CausalLMEmbedder(own_model, layer=args.own_layer, device=args.device, batch_size=32)
    embs = {"general": gen, "own": own}
    texts = bench_texts(locomo_turns(args.data), args.n)
    res: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
                 "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                 "gpus": torch.cuda.device_count(), "cpus": os.cpu_count(), "n": args.n, "own_layer": args.own_layer,
                 "torch": torch.__version__}
    print(json.dumps(res))
    if args.models:
        check_vocab(embs, texts, Path(args.pack))

    base = texts[: args.base_n]
    current_path(embs, base[:512])  # load and warm up
    cur, secs = current_path(embs, base)
    res["current"] = {r: args.base_n / s for r, s in secs.items()} | {"dual": args.base_n / sum(secs.values())}
    print("current path texts/s", res["current"], flush=True)

    _bulk.bulk_embed(embs, texts[:20_000])  # warm up (kernels, allocator)
    workers = args.workers or _bulk.default_workers(len(_bulk.bulk_devices(args.device)))
    res["workers"] = workers
    roles = [_bulk._role(r, e) for r, e in embs.items()]
    tok_n = min(args.tok_n, args.n)
    t_tok, prepared = tokenize_only(roles, texts[:tok_n], workers, args.chunk)
    res["tokenize_texts_per_s"] = tok_n / t_tok
    t_tok1, _ = tokenize_only(roles, texts[:tok_n // 10], 1, args.chunk)
    res["tokenize_one_worker_texts_per_s"] = (tok_n // 10) / t_tok1
    g = gpu_only(roles, prepared, "cuda")
    res["gpu_only_texts_per_s"] = {r: tok_n / s for r, s in g.items()} | {"dual": tok_n / sum(g.values())}
    tokens = {role.name: int(sum(int(m.sum()) for per in prepared for _, _, m in per[k][0]))
              for k, role in enumerate(roles)}
    padded = {role.name: int(sum(m.size for per in prepared for _, _, m in per[k][0])) for k, role in enumerate(roles)}
    res["tokens_per_text"] = {r: tokens[r] / tok_n for r in tokens}
    res["padding_share"] = {r: 1 - tokens[r] / padded[r] for r in tokens}
    del prepared
    print("stages", {k: res[k] for k in ("tokenize_texts_per_s", "tokenize_one_worker_texts_per_s",
                                         "gpu_only_texts_per_s", "tokens_per_text", "padding_share")}, flush=True)

    single = texts[: min(args.single_n, args.n)]
    res["bulk"] = {}
    for role in ("general", "own"):
        t = time.perf_counter()
        _bulk.bulk_embed({role: embs[role]}, single, workers=args.workers or None, chunk=args.chunk)
        res["bulk"][role] = len(single) / (time.perf_counter() - t)
    from selfmem.retrieval._views import Views

    views = Views(gen, own, mode="dual", alpha=0.5, own_dim=128, shrinkage=0.1, min_fit=256)
    t = time.perf_counter()
    raw = views.embed_raw(single)  # the library's entry (add_many, imports): must take the bulk path
    res["views_embed_raw_texts_per_s"] = len(single) / (time.perf_counter() - t)
    del raw
    t = time.perf_counter()
    vecs = _bulk.bulk_embed(embs, texts, workers=args.workers or None, chunk=args.chunk)
    dt = time.perf_counter() - t
    res["bulk"]["dual"] = args.n / dt
    res["bulk"]["dual_seconds"] = dt
    res["speedup_dual"] = res["bulk"]["dual"] / res["current"]["dual"]
    res["cosine_bulk_vs_current"] = {r: cosines(vecs[r][: args.base_n], cur[r]) for r in cur}
    print("bulk texts/s", res["bulk"], "speedup", res["speedup_dual"], "embed_raw", res["views_embed_raw_texts_per_s"])
    print("cosine", res["cosine_bulk_vs_current"])
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
