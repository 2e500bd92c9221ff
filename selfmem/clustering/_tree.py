"""The topic tree (size-weighted Ward agglomeration of topic centroids, Lloyd-refined) and c-TF-IDF labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from ..retrieval._bm25 import tokenize

__all__ = ["ward_merges", "cut", "refine", "level_sizes", "tree_levels", "word_counts", "merge_counts",
           "top_words", "ctfidf", "lineage"]


def lineage(parents: Mapping[int, int | None], tid: int) -> list[int]:
    """``tid`` and its ancestors, top-level topic first (``parents``: topic id -> parent id or None).

    >>> lineage({5: 100000, 100000: 200000, 200000: None}, 5)
    [200000, 100000, 5]
    """
    out: list[int] = []
    cur: int | None = tid
    while cur is not None and cur in parents and cur not in out:  # a stored cycle cannot loop forever
        out.append(cur)
        cur = parents[cur]
    return out[::-1]


def ward_merges(means: np.ndarray, sizes: np.ndarray, within: np.ndarray | None = None
                ) -> list[tuple[int, int, float]]:
    """Agglomerate K topics; returns the merges (a, b, cost) over cluster ids (new ids from K on).

    Merge cost is Ward's: ``n_a n_b / (n_a + n_b) * ||mu_a - mu_b||^2`` with topic sizes as weights.
    Without ``within`` there are K-1 merges; with ``within`` (K,) group labels, only topics of the
    same group merge, and merging stops at one cluster per group.
    """
    mu = {i: np.asarray(m, np.float64) for i, m in enumerate(means)}
    n = {i: max(float(s), 1.0) for i, s in enumerate(sizes)}
    grp = {i: (0 if within is None else int(within[i])) for i in range(len(means))}
    merges = []
    nxt = len(means)
    while len(mu) > 1:
        keys = list(mu)
        M = np.stack([mu[k] for k in keys])
        N = np.array([n[k] for k in keys])
        G = np.array([grp[k] for k in keys])
        d2 = ((M[:, None, :] - M[None, :, :]) ** 2).sum(-1)
        cost = (N[:, None] * N[None, :]) / (N[:, None] + N[None, :]) * d2
        cost[G[:, None] != G[None, :]] = np.inf
        np.fill_diagonal(cost, np.inf)
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        if not np.isfinite(cost[i, j]):
            break
        a, b = keys[i], keys[j]
        mu[nxt] = (mu[a] * n[a] + mu[b] * n[b]) / (n[a] + n[b])
        n[nxt], grp[nxt] = n[a] + n[b], grp[a]
        merges.append((a, b, float(cost[i, j])))
        del mu[a], mu[b], n[a], n[b]
        nxt += 1
    return merges


def cut(merges: Sequence[tuple[int, int, float]], k_leaves: int, n_groups: int) -> np.ndarray:
    """Group label (0..n_groups-1) of each leaf after the first ``k_leaves - n_groups`` merges."""
    if not 1 <= n_groups <= k_leaves or k_leaves - n_groups > len(merges):
        raise ValueError(f"cannot cut {k_leaves} leaves with {len(merges)} merges into {n_groups} groups")
    parent = list(range(k_leaves + len(merges)))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for step, (a, b, _) in enumerate(merges[: k_leaves - n_groups]):
        new = k_leaves + step
        parent[a] = new
        parent[b] = new
    roots = [root(i) for i in range(k_leaves)]
    remap = {r: j for j, r in enumerate(dict.fromkeys(roots))}
    return np.array([remap[r] for r in roots], dtype=np.int64)


def refine(centroids: np.ndarray, sizes: np.ndarray, labels: np.ndarray, within: np.ndarray | None = None,
           max_iter: int = 50) -> np.ndarray:
    """Lloyd refinement of a grouping of topics: spherical k-means over the unit topic centroids.

    Each topic moves to the group whose size-weighted unit centroid is nearest by cosine, among the
    groups of its own ``within`` group when given (so a level stays nested in the one above).
    Greedy Ward merges cannot undo an early mistake; this can. Stops when nothing moves, or before
    a step that would empty a group.

    Parameters
    ----------
    centroids : ndarray (K, dim), unit rows
    sizes : ndarray (K,)
    labels : ndarray (K,) int, groups 0..G-1
    within : ndarray (K,) int, optional

    Returns
    -------
    ndarray (K,) int
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    g = int(labels.max()) + 1
    w = np.asarray(sizes, np.float64)[:, None] * centroids
    allowed = np.ones((len(labels), g), dtype=bool)
    if within is not None:
        group_parent = np.array([within[np.argmax(labels == j)] for j in range(g)])
        allowed = within[:, None] == group_parent[None, :]
    for _ in range(max_iter):
        sums = np.zeros((g, centroids.shape[1]))
        np.add.at(sums, labels, w)
        cen = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        sims = np.where(allowed, centroids @ cen.T, -np.inf)
        new = np.argmax(sims, axis=1)
        if np.array_equal(new, labels) or len(np.unique(new)) < g:
            break
        labels = new
    return labels


def level_sizes(k: int, branching: int = 3) -> list[int]:
    """Number of topics at each level above K leaves: each about ``branching`` times fewer.

    Levels are added until one has at most ``branching + 1`` topics, e.g. 40 leaves -> [13, 4] and
    50 -> [17, 6, 2] with branching 3. There is always at least one level above the leaves.
    """
    sizes: list[int] = []
    n = k
    while n > branching + 1:
        n = max(2, int(round(n / branching)))
        sizes.append(n)
    return sizes or [1 if k <= 2 else 2]


def tree_levels(centroids: np.ndarray, sizes: np.ndarray, branching: int = 3) -> list[np.ndarray]:
    """Super-topic labels of the K leaf topics at each level above them, coarsest last.

    The level sizes come from :func:`level_sizes`. The coarsest level is cut from a size-weighted
    Ward tree of the unit leaf centroids and refined (:func:`refine`); each lower level is cut from
    a Ward tree constrained to the level above (so levels nest) and refined within it.

    Parameters
    ----------
    centroids : ndarray (K, dim), unit rows
    sizes : ndarray (K,)
    branching : int

    Returns
    -------
    list of ndarray (K,) int, finest level first
    """
    k = len(centroids)
    counts = level_sizes(k, branching)
    if counts == [1]:
        return [np.zeros(k, dtype=np.int64)]
    top = refine(centroids, sizes, cut(ward_merges(centroids, sizes), k, counts[-1]))
    levels = [top]
    for n in reversed(counts[:-1]):
        above = levels[0]
        lab = cut(ward_merges(centroids, sizes, within=above), k, n)
        levels.insert(0, refine(centroids, sizes, lab, within=above))
    return levels


def word_counts(texts: Sequence[str], labels: np.ndarray, n_topics: int, max_df: float = 0.5
                ) -> tuple[list[Counter[str]], set[str]]:
    """Word counts of each topic, and the words too common to label any topic.

    Texts are tokenized once here; coarser groupings of the same topics sum these counts
    (:func:`merge_counts`) instead of tokenizing again. Words found in more than ``max_df`` of all
    texts (20 texts or more) are returned as too common: in a chat memory the speakers' names, in
    a news memory "reuters", describe everything and so no topic.
    """
    counts: list[Counter[str]] = [Counter() for _ in range(n_topics)]
    df: Counter[str] = Counter()
    for text, lab in zip(texts, labels):
        words = tokenize(text)
        counts[int(lab)].update(words)
        df.update(set(words))
    common = {t for t, f in df.items() if f > max_df * len(texts)} if len(texts) >= 20 else set()
    return counts, common


def merge_counts(counts: Sequence[Counter[str]], groups: np.ndarray) -> list[Counter[str]]:
    """Word counts of each group (0..G-1) of topics, from the topics' counts and their group labels."""
    out: list[Counter[str]] = [Counter() for _ in range(int(groups.max()) + 1)]
    for c, g in zip(counts, groups):
        out[int(g)].update(c)
    return out


def _labels_well(word: str) -> bool:
    return len(word) > 1 and not (len(word) > 4 and word.isdigit())


def top_words(counts: Sequence[Counter[str]], common: Collection[str] = frozenset(), top: int = 10) -> list[list[str]]:
    """Top c-TF-IDF words of each topic from its word counts, skipping ``common`` words.

    Single characters and runs of more than 4 digits never label a topic: a year or a count reads as a
    label, an id or a row of an ARC grid (``000077077``) does not.

    ``tf(t, c)`` = count of t in topic c / words in c; ``idf(t) = ln(1 + A / f(t))`` with A the
    mean words per topic and f(t) the count of t over all topics.
    """
    total: Counter[str] = Counter()
    out: list[list[str]]
    for c in counts:
        total.update(c)
    avg = np.mean([sum(c.values()) for c in counts]) if counts else 0.0
    out = []
    for c in counts:
        n = sum(c.values())
        if not n:
            out.append([])
            continue
        scored = {t: (f / n) * np.log(1 + avg / total[t]) for t, f in c.items() if _labels_well(t) and t not in common}
        out.append([t for t, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:top]])
    return out


def ctfidf(texts: Sequence[str], labels: np.ndarray, n_topics: int, top: int = 10,
           max_df: float = 0.5) -> list[list[str]]:
    """Top c-TF-IDF words of each topic (:func:`word_counts` then :func:`top_words`)."""
    counts, common = word_counts(texts, labels, n_topics, max_df)
    return top_words(counts, common, top)
