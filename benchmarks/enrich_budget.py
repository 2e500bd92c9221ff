"""enrich() with a token budget: time against k (it was quadratic in k: every candidate recounted the prompt).

Usage::

    python benchmarks/enrich_budget.py [--dir runs/enrich-budget] [--n 2000]

A memory of n LoCoMo-like notes with the default config (MiniLM + SmolLM2; the own model's tokenizer
counts tokens), then ``enrich(query, k, budget_tokens=10**6)`` and without a budget for k = 20, 80, 160.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from selfmem import Memory

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="runs/enrich-budget")
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    path = Path(args.dir)
    shutil.rmtree(path, ignore_errors=True)
    with Memory(path, progress=False) as mem:
        mem.add_many([f"note {i}: the grid is rotated and the {i % 9} coloured cells move to the border" for i in range(args.n)])
        mem.enrich("warm up the grid", k=5)
        print("| k | without budget s | with budget s | memories placed |\n|---|---|---|---|")
        for k in (20, 80, 160):
            t = time.perf_counter()
            mem.enrich("how do the coloured cells move on the grid?", k=k, mark_used=False)
            free = time.perf_counter() - t
            t = time.perf_counter()
            out = mem.enrich("how do the coloured cells move on the grid?", k=k, budget_tokens=10**6, mark_used=False)
            budget = time.perf_counter() - t
            print(f"| {k} | {free:.2f} | {budget:.2f} | {len(out.hits)} |", flush=True)
