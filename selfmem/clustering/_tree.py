"""The topic tree (size-weighted Ward agglomeration of topic means) and c-TF-IDF labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..retrieval._bm25 import tokenize

__all__ = ["ward_merges", "cut", "tree_levels", "ctfidf"]


def ward_merges(means: np.ndarray, sizes: np.ndarray) -> list[tuple[int, int, float]]:
    """Agglomerate K topics; returns K-1 merges (a, b, cost) over cluster ids (new ids from K on).

    Merge cost is Ward's: ``n_a n_b / (n_a + n_b) * ||mu_a - mu_b||^2`` with topic sizes as weights.
    """
    mu = {i: np.asarray(m, np.float64) for i, m in enumerate(means)}
    n = {i: max(float(s), 1.0) for i, s in enumerate(sizes)}
    merges = []
    nxt = len(means)
    while len(mu) > 1:
        keys = list(mu)
        M = np.stack([mu[k] for k in keys])
        N = np.array([n[k] for k in keys])
        d2 = ((M[:, None, :] - M[None, :, :]) ** 2).sum(-1)
        cost = (N[:, None] * N[None, :]) / (N[:, None] + N[None, :]) * d2
        np.fill_diagonal(cost, np.inf)
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        a, b = keys[i], keys[j]
        mu[nxt] = (mu[a] * n[a] + mu[b] * n[b]) / (n[a] + n[b])
        n[nxt] = n[a] + n[b]
        merges.append((a, b, float(cost[i, j])))
        del mu[a], mu[b], n[a], n[b]
        nxt += 1
    return merges


def cut(merges: Sequence[tuple[int, int, float]], k_leaves: int, n_groups: int) -> np.ndarray:
    """Group label (0..n_groups-1) of each leaf after undoing the last n_groups-1 merges."""
    parent = list(range(k_leaves + len(merges)))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for step, (a, b, _) in enumerate(merges[: len(merges) - (n_groups - 1)]):
        new = k_leaves + step
        parent[a] = new
        parent[b] = new
    roots = [root(i) for i in range(k_leaves)]
    remap = {r: j for j, r in enumerate(dict.fromkeys(roots))}
    return np.array([remap[r] for r in roots], dtype=np.int64)


def tree_levels(means: np.ndarray, sizes: np.ndarray, max_top: int = 8) -> list[np.ndarray]:
    """Super-topic labels of the K topics at each level above them, coarsest last.

    The coarsest level has the number of groups g in [2, max_top] before which Ward's merge
    cost jumps the most (the most natural split); a middle level with about sqrt(K * g)
    groups is added when it lies strictly between.
    """
    k = len(means)
    if k <= 2:
        return [np.zeros(k, dtype=np.int64)]
    merges = ward_merges(means, sizes)
    costs = np.array([c for _, _, c in merges])  # increasing, last merge joins the final two groups
    best_g, best_jump = 2, -np.inf
    for g in range(2, min(max_top, k - 1) + 1):
        # g groups remain after merges[:-(g-1)]; the next merge (index -(g-1)) is the jump
        jump = costs[-(g - 1)] / max(costs[-g], 1e-12)
        if jump > best_jump:
            best_g, best_jump = g, jump
    levels = []
    mid = int(round(np.sqrt(k * best_g)))
    if best_g < mid < k:
        levels.append(cut(merges, k, mid))
    levels.append(cut(merges, k, best_g))
    return levels


def ctfidf(texts: Sequence[str], labels: np.ndarray, n_topics: int, top: int = 10) -> list[list[str]]:
    """Top c-TF-IDF words of each topic.

    ``tf(t, c)`` = count of t in topic c / words in c; ``idf(t) = ln(1 + A / f(t))`` with A the
    mean words per topic and f(t) the count of t over all topics.
    """
    counts = [Counter() for _ in range(n_topics)]
    for text, lab in zip(texts, labels):
        counts[int(lab)].update(tokenize(text))
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    avg = np.mean([sum(c.values()) for c in counts]) if counts else 0.0
    out = []
    for c in counts:
        n = sum(c.values())
        if not n:
            out.append([])
            continue
        scored = {t: (f / n) * np.log(1 + avg / total[t]) for t, f in c.items() if len(t) > 1}
        out.append([t for t, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:top]])
    return out
