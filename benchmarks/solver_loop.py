"""Solver-loop benchmark: throughput of MemorySolver with the real SmolLM2, where the time goes, what
recording costs on disk, the RSS of one shared model, and all of it beside a busy neighbour process.

Usage::

    python benchmarks/solver_loop.py [--data ../shared/data] [--out runs/bench] [--tasks 60] [--max-tokens 32]

Tasks are LoCoMo questions (real data; answers checked by exact match: SmolLM2-135M rarely gets them,
which does not matter for timing). The memory is the default one (MiniLM + SmolLM2 dual embeddings),
first filled with conversation 0's turns so that every prompt is enriched with k = 5 memories. The
loop runs twice on the same tasks in fresh memories: on a quiet machine and beside a neighbour
process that keeps one core busy (a pure-Python loop). RSS is read from /proc in fresh processes:
the LLM alone, the own-model embedder alone, and both (one copy of the weights, shared).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from _data import DEFAULT_DATA, load_locomo

from selfmem import Memory
from selfmem.retrieval import _views
from selfmem.solver import MemorySolver, QATask, QATaskType, TransformersLLM

RSS_CODE = """
import gc, re
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
what = {what!r}
base = rss()
if "llm" in what:
    from selfmem.solver import TransformersLLM
    TransformersLLM(device="cpu").generate("Hello", max_tokens=4)
if "embedder" in what:
    from selfmem.retrieval._own import CausalLMEmbedder
    CausalLMEmbedder("smollm2", layer=9, device="cpu").embed(["Hello"])
gc.collect()
print(rss() - base)
"""


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def loop(args: argparse.Namespace, label: str) -> dict:
    conv = load_locomo(args.data)[0]
    tasks = [QATask(f"locomo-{i}", q.question, answer=q.answer or "?") for i, q in enumerate(conv.questions)]
    tasks = tasks[: args.tasks]
    path = Path(args.out) / f"solver-loop-{label}"
    shutil.rmtree(path, ignore_errors=True)
    llm = TransformersLLM(device="cpu")
    with Memory(path, progress=False) as mem:
        mem.add_many([t.record_text() for t in conv.turns], kind="message")
    records_before, bytes_before = None, dir_bytes(path)  # closed: checkpointed, derived files saved
    _views._QUERY_CACHE.clear()  # every loop embeds its queries (the cache is per process)
    with Memory(path, progress=False) as mem:
        llm.generate("warm up", max_tokens=4)
        solver = MemorySolver(llm, mem, QATaskType(), k=5, max_tokens=args.max_tokens)
        records_before = len(mem)
        t = time.perf_counter()
        results = solver.solve_all(tasks, session=label)
        wall = time.perf_counter() - t
        records = len(mem) - records_before
    bytes_per = (dir_bytes(path) - bytes_before) / max(records, 1)  # closed again
    ret = np.array([r.retrieve_s for r in results]) * 1e3
    gen = np.array([r.generate_s for r in results]) * 1e3
    rec = np.array([r.record_s for r in results]) * 1e3
    return {"label": label, "tasks": len(results), "solved": sum(r.solved for r in results),
            "tasks_per_s": len(results) / wall, "retrieve_ms_p50": float(np.median(ret)),
            "retrieve_ms_p99": float(np.percentile(ret, 99)), "generate_ms_p50": float(np.median(gen)),
            "record_ms_p50": float(np.median(rec)), "record_ms_p99": float(np.percentile(rec, 99)),
            "share_retrieve": float(ret.sum() / (ret.sum() + gen.sum() + rec.sum())),
            "share_record": float(rec.sum() / (ret.sum() + gen.sum() + rec.sum())),
            "overhead_vs_generation": float(np.median((ret + rec) / gen)),
            "records": records, "bytes_per_record": bytes_per}


def rss(what: str) -> float:
    out = subprocess.run([sys.executable, "-c", RSS_CODE.format(what=what)], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--tasks", type=int, default=60)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-quiet", action="store_true")
    args = ap.parse_args()
    rows = [loop(args, "quiet")]
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        rows.append(loop(args, "neighbour"))
    finally:
        neighbour.kill()
    rss_rows = {} if args.skip_rss else {w: rss(w) for w in ("llm", "embedder", "llm+embedder")}
    res = {"date": str(date.today()), "machine": f"{platform.node()} {platform.machine()}", "loops": rows,
           "rss_mb": rss_rows}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "solver_loop.json").write_text(json.dumps(res, indent=2))
    print(f"# solver loop {res['date']} on {res['machine']}")
    print("| machine state | tasks | tasks/s | retrieve p50 / p99 ms | generate p50 ms | record p50 / p99 ms | "
          "share retrieve | share record | (retrieve + record) / generate, median | bytes per record |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['tasks']} | {r['tasks_per_s']:.2f} | {r['retrieve_ms_p50']:.1f} / "
              f"{r['retrieve_ms_p99']:.1f} | {r['generate_ms_p50']:.0f} | {r['record_ms_p50']:.1f} / "
              f"{r['record_ms_p99']:.1f} | {r['share_retrieve']:.1%} | {r['share_record']:.1%} | "
              f"{r['overhead_vs_generation']:.1%} | {r['bytes_per_record']:.0f} |")
    if rss_rows:
        print("RSS added (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss_rows.items()))


if __name__ == "__main__":
    main()
