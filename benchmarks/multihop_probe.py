"""Probe for issue 42 (multi-hop recall): does a personalized PageRank over records and their rare terms,
fused with the default search, find the second memory of a multi-hop question?

An experiment, not a feature: it runs outside the library, on the memories that ``retrieval.py --cv``
fills (``--memories``, the ``default`` build of each LoCoMo conversation), and measures recall@10 per
LoCoMo category, leave one conversation out over the probe's settings.

Usage::

    python benchmarks/retrieval.py --cv --skip-latency --out runs/bench   # fills runs/bench/retrieval-cv
    python benchmarks/multihop_probe.py [--data ../shared/data] [--memories runs/bench/retrieval-cv]

Per conversation, a bipartite graph joins every turn to its terms: lower-cased words of 3+ letters, not
stop words, in at most ``max_df`` of the turns (the rare words that can bridge two turns; a speaker's
name is in every other turn and bridges nothing). Per question, the walk restarts (probability
``alpha``) at the question's own terms and at the default search's best ``seed_hits`` hits (weights
1/(rank+1)); turns are then ranked by the walk's mass, and fused with the default search by reciprocal
ranks (``weight`` of the walk's rank against 1 for the search's). A second family of settings
(``feedback``) searches again with the question plus the text of its best 1 or 2 hits (pseudo-relevance
feedback, a second hop without an LLM) and fuses that list with the first the same way. Every question is searched once,
k = 30, by ``Memory.search`` with the shipped config (``MemoryConfig()``: the memory's own config.toml
holds the last setting ``retrieval.py --cv`` tried).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _data import DEFAULT_DATA, load_locomo
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from tqdm import tqdm

from selfmem import Memory, MemoryConfig

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_WORD = re.compile(r"[a-z][a-z']{2,}")


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS]


class TermGraph:
    """Turns x rare terms of one conversation, with the transition matrices of a turn-term-turn walk."""

    def __init__(self, dia_ids: list[str], texts: list[str], max_df: float) -> None:
        docs = [set(terms(t)) for t in texts]
        df: dict[str, int] = {}
        for d in docs:
            for w in d:
                df[w] = df.get(w, 0) + 1
        limit = max(2, int(max_df * len(docs)))
        self.vocab = {w: i for i, w in enumerate(sorted(w for w, n in df.items() if 2 <= n <= limit))}
        rows, cols = [], []
        for r, d in enumerate(docs):
            for w in d:
                if w in self.vocab:
                    rows.append(r)
                    cols.append(self.vocab[w])
        a = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), len(self.vocab)))
        self.dia_ids, self.pos = dia_ids, {d: i for i, d in enumerate(dia_ids)}
        deg_t = np.asarray(a.sum(axis=1)).ravel()
        deg_w = np.asarray(a.sum(axis=0)).ravel()
        self.turn_to_term = sp.diags(1 / np.maximum(deg_t, 1)) @ a  # row-stochastic where a turn has terms
        self.term_to_turn = sp.diags(1 / np.maximum(deg_w, 1)) @ a.T.tocsr()

    def walk(self, query: str, hits: list[str], alpha: float, seed_hits: int, steps: int = 8) -> np.ndarray:
        """The walk's mass on every turn, restarting at the query's terms and the best hits."""
        n = len(self.dia_ids)
        s_turn = np.zeros(n)
        for r, d in enumerate(hits[:seed_hits]):
            s_turn[self.pos[d]] += 1.0 / (r + 1)
        s_term = np.zeros(len(self.vocab))
        for w in set(terms(query)):
            if w in self.vocab:
                s_term[self.vocab[w]] = 1.0
        total = s_turn.sum() + s_term.sum()
        if total == 0:
            return s_turn
        s_turn, s_term = s_turn / total, s_term / total
        p_turn, p_term = s_turn.copy(), s_term.copy()
        for _ in range(steps):  # alternate turn -> term -> turn, restarting with alpha at the seeds
            next_term = alpha * s_term + (1 - alpha) * (self.turn_to_term.T @ p_turn)
            next_turn = alpha * s_turn + (1 - alpha) * (self.term_to_turn.T @ p_term)
            p_turn, p_term = next_turn, next_term
        return p_turn


def fused(base: list[str], mass: np.ndarray, graph: TermGraph, weight: float, k: int = 10) -> list[str]:
    """Reciprocal-rank fusion of the search's list and the walk's ranking (60 as in RRF)."""
    order = np.argsort(-mass, kind="stable")[:50]
    return rrf(base, [graph.dia_ids[i] for i in order if mass[i] > 0], weight, k)


def rrf(base: list[str], other: list[str], weight: float, k: int = 10) -> list[str]:
    """Reciprocal-rank fusion of two ranked lists (``weight`` on the second)."""
    score: dict[str, float] = {}
    for w, lst in ((1.0, base), (weight, other)):
        for r, d in enumerate(lst):
            score[d] = score.get(d, 0.0) + w / (60 + r)
    return sorted(score, key=lambda d: -score[d])[:k]


def topic_rerank(deep: list[str], topic_of: dict[str, object], weight: float, k: int = 10) -> list[str]:
    """Cluster-based smoothing: each turn of the ranked list scores its reciprocal rank plus ``weight`` times
    the summed reciprocal ranks of its topic's turns in the list's first 10 (RAPTOR's collapsed tree without
    summaries: a topic ranks by its members, and lifts its members that rank lower)."""
    mass: dict[object, float] = {}
    for r, d in enumerate(deep[:10]):
        t = topic_of.get(d)
        if t is not None:
            mass[t] = mass.get(t, 0.0) + 1 / (60 + r)
    score = {d: 1 / (60 + r) + weight * mass.get(topic_of.get(d), 0.0) / 10 for r, d in enumerate(deep)}
    return sorted(score, key=lambda d: -score[d])[:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--memories", default="runs/bench/retrieval-cv")
    ap.add_argument("--out", default=None, help="write the results JSON here")
    args = ap.parse_args()
    grid = [dict(max_df=m, alpha=a, seed_hits=s, weight=w) for m, a, s, w in
            itertools.product((0.02, 0.05), (0.3, 0.5), (0, 3), (0.5, 1.0, 2.0))]
    grid += [dict(feedback=f, weight=w) for f, w in itertools.product((1, 2), (0.5, 1.0))]
    grid += [dict(topic=lvl, depth=d, weight=w) for lvl, d, w in itertools.product((0, 1), (30, 100), (0.5, 1.0, 2.0))]
    convs = load_locomo(args.data)
    rows: dict[str, list[tuple[int, float, list[float]]]] = {}  # conversation -> (category, base R@10, R@10 per setting)
    for c in tqdm(convs, desc="conversations"):
        path = Path(args.memories) / f"{c.name}-default"
        if not (path / "memory.duckdb").is_file():
            sys.exit(f"no memory at {path}: run benchmarks/retrieval.py --cv --skip-latency --out <dir> first")
        with Memory(path, MemoryConfig(), read_only=True, progress=False) as mem, tempfile.TemporaryDirectory() as tmp:
            mem.export(Path(tmp) / "all.jsonl", "jsonl", progress=False)
            lines = [json.loads(x) for x in (Path(tmp) / "all.jsonl").read_text().splitlines()]
            dia = [ln["metadata"]["dia_id"] for ln in lines]
            graphs = {m: TermGraph(dia, [ln["text"] for ln in lines], m) for m in (0.02, 0.05)}
            # each turn's topic at the leaf level (0) and one level up (1) (``topic_ids`` is root first)
            topic_of = {lvl: {ln["metadata"]["dia_id"]: (list(reversed(ln.get("topic_ids") or []))[lvl:lvl + 1]
                                                         or [None])[0] for ln in lines} for lvl in (0, 1)}
            out = []
            for q in c.questions:
                deep = [h.record.metadata["dia_id"] for h in mem.search(q.question, k=100)]
                base = deep[:30]
                r_base = len(set(base[:10]) & q.evidence) / len(q.evidence)
                per = []
                text = {h.record.metadata["dia_id"]: h.record.text for h in mem.search(q.question, k=2)}
                again = {f: [h.record.metadata["dia_id"] for h in mem.search(
                    " ".join([q.question, *list(text.values())[:f]]), k=30)] for f in (1, 2)}
                for g in grid:
                    if "topic" in g:  # the hits' topics as a prior: the deep list re-ranked by its topic's mass
                        got = topic_rerank(deep[:g["depth"]], topic_of[g["topic"]], g["weight"])
                    elif "feedback" in g:  # the second search's list as the other ranking
                        got = rrf(base, again[g["feedback"]], g["weight"])
                    else:
                        mass = graphs[g["max_df"]].walk(q.question, base, g["alpha"], g["seed_hits"])
                        got = fused(base, mass, graphs[g["max_df"]], g["weight"])
                    per.append(len(set(got) & q.evidence) / len(q.evidence))
                out.append((q.category, r_base, per))
            rows[c.name] = out
    names = list(rows)

    def mean(which: list[str], i: int | None, cat: int | None = None) -> float:
        vals = [(rb if i is None else per[i]) for n in which for cat_, rb, per in rows[n] if cat is None or cat_ == cat]
        return float(np.mean(vals)) if vals else float("nan")

    folds = {}
    for held in names:
        train = [n for n in names if n != held]
        best = max(range(len(grid)), key=lambda i: mean(train, i))
        folds[held] = {"chosen": grid[best], "held-out R@10": mean([held], best), "base R@10": mean([held], None),
                       **{f"{CATEGORIES[k]} (probe)": mean([held], best, k) for k in CATEGORIES},
                       **{f"{CATEGORIES[k]} (base)": mean([held], None, k) for k in CATEGORIES}}
    result = {
        "base R@10 (mean of conversations)": float(np.mean([mean([n], None) for n in names])),
        "probe R@10 held out (mean of folds)": float(np.mean([f["held-out R@10"] for f in folds.values()])),
        "per category, all questions": {
            CATEGORIES[k]: {"base": mean(names, None, k),
                            "best setting in sample": max(mean(names, i, k) for i in range(len(grid)))}
            for k in CATEGORIES},
        "folds": folds,
        "per setting, R@10 over all questions (in sample)": [
            {"setting": g, "R@10": mean(names, i), **{CATEGORIES[k]: mean(names, i, k) for k in CATEGORIES}}
            for i, g in enumerate(grid)],
        "grid": grid,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
