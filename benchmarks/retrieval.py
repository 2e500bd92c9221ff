"""Retrieval benchmark: LoCoMo recall of every search mode through the real Memory API, and latency.

Usage::

    python benchmarks/retrieval.py [--data ../shared/data] [--out runs/bench] [--latency-sizes 3000,100000]
                                   [--skip-quality] [--skip-latency]
    python benchmarks/retrieval.py --cv [--reuse] [--only TEXT] [--exclude TEXT] [--out runs/bench]

Quality: one memory per LoCoMo conversation (default config: MiniLM + SmolLM2 dual embeddings),
one record per turn; every question is searched with k = 20 in each mode and with several
fusion settings. recall@k = share of a question's evidence turns in the top k; hit@10 = share of
questions with at least one evidence turn in the top 10.

Held-out quality (``--cv``, the number that counts): each conversation's memory is filled as a user fills
one (one ``add_many`` per LoCoMo session, in order, each session a memory session with its date as
``created_at``, no ``rebuild()``), built twice (the default config, and the whitening fitted only once at
200 records as before), and every question is searched under each setting of ``cv_settings``.
Leave one conversation out: the setting with the best recall@10 over the other four conversations'
questions is scored on the fifth; the mean over the five folds is reported beside the in-sample table
and recall@10 per LoCoMo question category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop,
5 adversarial, as numbered in the LoCoMo release).

Latency: ``Memory.search`` end to end (query embedding with both models included), k = 10, default
config, one query at a time, at each size in ``--latency-sizes``. Memories hold the real texts of
LoCoMo then AG News (10,360 texts, embedded for real): the 3k memory is every LoCoMo turn plus 240
news items. Larger ones repeat them with a variant suffix until the size is reached; the vectors of a repeat are its original's
raw vectors plus Gaussian noise (sigma 0.02 per coordinate, renormalised), so no model is run for
the copies. Queries are LoCoMo questions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
from _data import DEFAULT_DATA, load_ag_news, load_locomo
from tqdm import tqdm

from selfmem import GraphConfig, Memory, MemoryConfig, SearchConfig
from selfmem._types import NewRecord
from selfmem.store import DuckDBStore as Store

KS = (1, 5, 10, 20)


def quality(args) -> list[tuple[str, dict[str, float]]]:
    convs = load_locomo(args.data)
    settings: list[tuple[str, str, SearchConfig]] = [
        ("BM25 (keyword mode)", "dual", SearchConfig(mode="keyword", dedupe=1.0)),
        ("dense, general view only (MiniLM exact cosine)", "general", SearchConfig(mode="dense", dedupe=1.0)),
        ("dense, dual view", "dual", SearchConfig(mode="dense", dedupe=1.0)),
    ]
    for kw in (0.2, 0.3, 0.4):
        for cand in (50, 100):
            settings.append((f"hybrid kw={kw} candidates={cand}", "dual",
                             SearchConfig(mode="hybrid", keyword_weight=kw, candidates=cand, dedupe=1.0)))
    settings.append(("hybrid kw=0.3 candidates=50 + dedupe 0.97", "dual", SearchConfig(dedupe=0.97)))
    settings.append(("hybrid + recency 0.3 (half-life 30 d)", "dual", SearchConfig(recency_weight=0.3)))
    for route in (1, 3, 5):
        settings.append((f"topic routing: {route} nearest topics, then hybrid", "dual",
                         SearchConfig(mode="topics", route_topics=route)))
    if args.only:
        settings = [x for x in settings if args.only in x[0]]
    default = MemoryConfig().search
    settings.append((f"default config ({default.mode}, kw={default.keyword_weight}, "
                     f"candidates={default.candidates}, dedupe={default.dedupe})", "dual", default))
    sums: dict[str, dict[str, list[float]]] = {name: {} for name, _, _ in settings}
    root = Path(args.out) / "retrieval"
    for c in tqdm(convs, desc="conversations"):
        for view in ("dual", "general"):
            if not any(v == view for _, v, _ in settings):
                continue
            path = root / f"{c.name}-{view}"
            cfg = MemoryConfig() if view == "dual" else MemoryConfig().replace(
                embedding=dataclasses.replace(MemoryConfig().embedding, mode="general"))
            if not (args.reuse and (path / "memory.duckdb").is_file()):
                shutil.rmtree(path, ignore_errors=True)
                with Memory(path, cfg, progress=False) as mem:
                    mem.add_many([t.record_text() for t in c.turns], kind="message",
                                 metadata=[{"dia_id": t.dia_id} for t in c.turns])
            with Memory(path, cfg, progress=False) as mem:
                id_to_dia = {r.id: r.metadata["dia_id"] for r in (mem.get(i) for i in range(1, len(mem) + 1))}
            for name, v, scfg in settings:
                if v != view:
                    continue
                with Memory(path, cfg.replace(search=scfg), progress=False) as mem:
                    for q in c.questions:
                        got = [id_to_dia[h.record.id] for h in mem.search(q.question, k=20)]
                        acc = sums[name]
                        for k in KS:
                            acc.setdefault(f"R@{k}", []).append(len(set(got[:k]) & q.evidence) / len(q.evidence))
                        acc.setdefault("hit@10", []).append(float(bool(set(got[:10]) & q.evidence)))
    return [(name, {m: float(np.mean(v)) for m, v in acc.items()}) for name, acc in sums.items() if acc]


CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


def _session_time(date_text: str) -> datetime:
    """LoCoMo's session date ("1:56 pm on 8 May, 2023") as a UTC datetime."""
    return datetime.strptime(date_text, "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


def fill_incrementally(path: Path, conv, cfg: MemoryConfig) -> None:
    """Fill a memory as a user would: one ``add_many`` per LoCoMo session, in order, with the session's
    date as ``created_at`` and the session as the memory session; no ``rebuild()``."""
    shutil.rmtree(path, ignore_errors=True)
    with Memory(path, cfg, progress=False) as mem:
        for num in sorted({t.session for t in conv.turns}):
            turns = [t for t in conv.turns if t.session == num]
            mem.add_many([t.record_text() for t in turns], kind="message", session=f"session_{num}",
                         metadata=[{"dia_id": t.dia_id} for t in turns], created_at=_session_time(turns[0].date))


def cv_settings() -> list[tuple[str, str, dict]]:
    """(name, build variant, config changes) tried by the cross-validation; every setting names its keyword
    weight and expansion (SOLVES is expanded with FOLLOWS as shipped: it finds nothing in LoCoMo)."""
    def cfg(kw: float = 0.4, rels: tuple[str, ...] = ("SOLVES", "FOLLOWS"), hits: int = 2, replies: bool = False,
            **search) -> dict:
        search = {"length_weight": 0.0, "sentence_weight": 0.0, **search}  # each row has what its name says
        return {"search": SearchConfig(keyword_weight=kw, replies=replies, **search),
                "graph": GraphConfig(expand=rels, expand_hits=hits)}

    out = []
    for build in ("default", "whitening fitted once"):
        out.append((f"{build} | no expansion", build, cfg(rels=())))
        for hits in (1, 2, 3):
            out.append((f"{build} | FOLLOWS x{hits}", build, cfg(hits=hits)))
    for kw in (0.3, 0.5, 0.6):
        for hits in (1, 2):
            out.append((f"default | FOLLOWS x{hits}, keyword weight {kw}", "default", cfg(kw, hits=hits)))
    out.append(("default | FOLLOWS x2, candidates 100", "default", cfg(candidates=100)))
    out.append(("default | FOLLOWS x2, recency 0.1", "default", cfg(recency_weight=0.1)))
    out.append(("default | FOLLOWS + SIMILAR_TO x2", "default", cfg(rels=("FOLLOWS", "SIMILAR_TO"))))
    out.append(("default | FOLLOWS x2, dense only", "default", cfg(mode="dense")))
    for fb, w in ((1, 1.0), (1, 0.5), (2, 1.0)):  # pseudo-relevance feedback (issue 42)
        out.append((f"default | FOLLOWS x2, keyword weight 0.5, feedback {fb} weight {w} (second model call)",
                    "default", cfg(0.5, feedback=fb, feedback_weight=w)))
    for w in (0.1, 0.25, 0.5, 1.0):  # the entity walk (issue 42)
        out.append((f"default | FOLLOWS x2, keyword weight 0.5, entity walk weight {w}", "default",
                    cfg(0.5, entity_weight=w)))
    out.append(("default | FOLLOWS x2, keyword weight 0.5, feedback 1 weight 1.0 (second model call), "
                "entity walk weight 0.5", "default", cfg(0.5, feedback=1, feedback_weight=1.0, entity_weight=0.5)))
    for fb in (0, 1):  # the answers of question hits lifted (issue 42)
        name = ("default | FOLLOWS x2, keyword weight 0.5, "
                + ("feedback 1 weight 1.0 (second model call), " if fb else "") + "replies")
        out.append((name, "default", cfg(0.5, feedback=fb, replies=True, **({"feedback_weight": 1.0} if fb else {}))))
    out.append(("default | FOLLOWS x2, keyword weight 0.5, feedback 1 weight 0.5 (second model call), replies",
                "default", cfg(0.5, feedback=1, feedback_weight=0.5, replies=True)))
    for kw, hits in ((0.5, 1), (0.5, 3), (0.4, 2), (0.6, 2)):  # the expansion and fusion around the replies
        out.append((f"default | FOLLOWS x{hits}, keyword weight {kw}, replies", "default",
                    cfg(kw, hits=hits, replies=True)))
    for w in (0.25, 0.5, 0.75, 1.0):  # longer memories lifted among equal matches (issue 42)
        out.append((f"default | FOLLOWS x2, keyword weight 0.5, replies, length weight {w}", "default",
                    cfg(0.5, replies=True, length_weight=w)))
    out.append(("default | FOLLOWS x2, keyword weight 0.5, feedback 1 weight 0.5 (second model call), replies, "
                "length weight 0.5", "default", cfg(0.5, feedback=1, feedback_weight=0.5, replies=True,
                                                    length_weight=0.5)))
    for w in (2.0, 3.0, 5.0, 8.0):  # hits moved by their best sentence match (issue 42)
        out.append((f"default | FOLLOWS x2, keyword weight 0.5, replies, length weight 0.5, sentence weight {w:g}",
                    "default", cfg(0.5, replies=True, length_weight=0.5, sentence_weight=w)))
    out.append(("default | FOLLOWS x2, keyword weight 0.5, feedback 1 weight 0.5 (second model call), replies, "
                "length weight 0.5, sentence weight 5", "default",
                cfg(0.5, feedback=1, feedback_weight=0.5, replies=True, length_weight=0.5, sentence_weight=5.0)))
    return out


def cross_validated(args) -> dict:
    """Leave-one-conversation-out over every setting of :func:`cv_settings` (see the module docstring)."""
    convs = load_locomo(args.data)
    builds = {"default": MemoryConfig(),
              "whitening fitted once": MemoryConfig().replace(
                  embedding=dataclasses.replace(MemoryConfig().embedding, own_refit_growth=0))}
    settings = [x for x in cv_settings() if args.only in x[0] and not (args.exclude and args.exclude in x[0])]
    shipped = next(name for name, b, ch in settings if b == "default" and ch["graph"] == MemoryConfig().graph
                   and ch["search"] == MemoryConfig().search)
    per_q: dict[str, dict[str, list[tuple[int, dict[str, float]]]]] = {name: {} for name, _, _ in settings}
    root = Path(args.out) / "retrieval-cv"
    for c in tqdm(convs, desc="conversations"):
        for build, cfg in builds.items():
            if not any(b == build for _, b, _ in settings):
                continue  # no setting reads this build: do not fill it
            path = root / f"{c.name}-{build.replace(' ', '-')}"
            if not (args.reuse and (path / "memory.duckdb").is_file()):
                fill_incrementally(path, c, cfg)
            for name, b, changes in settings:
                if b != build:
                    continue
                run_cfg = cfg.replace(**changes)
                with Memory(path, run_cfg, progress=False) as mem:
                    rows = []
                    for q in c.questions:
                        got = [h.record.metadata["dia_id"] for h in mem.search(q.question, k=20)]
                        rows.append((q.category, {f"R@{k}": len(set(got[:k]) & q.evidence) / len(q.evidence)
                                                  for k in KS}))
                per_q[name][c.name] = rows
    names = [c.name for c in convs]

    def recall(name: str, which: list[str], metric: str = "R@10") -> float:
        vals = [r[metric] for n in which for _, r in per_q[name][n]]
        return float(np.mean(vals))

    folds = {}
    for held in names:
        train = [n for n in names if n != held]
        best = max(per_q, key=lambda name: (recall(name, train), name == shipped))
        folds[held] = {"chosen": best, "train R@10": recall(best, train),
                       **{m: recall(best, [held], m) for m in ("R@1", "R@5", "R@10", "R@20")}}
    table = {name: {**{n: recall(name, [n]) for n in names}, "all": recall(name, names)} for name in per_q}
    cats = {name: {CATEGORIES[cat]: float(np.mean([r["R@10"] for n in names for c_, r in per_q[name][n] if c_ == cat]))
                   for cat in sorted(CATEGORIES)} for name in per_q}
    return {"folds": folds, "cv R@10 (mean of folds)": float(np.mean([f["R@10"] for f in folds.values()])),
            "shipped": shipped, "shipped R@10 per conversation": {n: recall(shipped, [n]) for n in names},
            "shipped mean of conversations": float(np.mean([recall(shipped, [n]) for n in names])),
            "in-sample best": max(table, key=lambda k: table[k]["all"]), "table": table, "categories": cats,
            "questions": {c.name: len(c.questions) for c in convs}}


# no growth refit of the whitening (the copies are noise around the base texts; a refit at open would
# run in the background during the timing), no SIMILAR_TO edges (see latency())
LATENCY_CONFIG = MemoryConfig(embedding=dataclasses.replace(MemoryConfig().embedding, own_refit_growth=0),
                              graph=GraphConfig(similar_k=0))


def build_large(n: int, args) -> Path:
    """A memory of n records built from real texts and their real raw vectors (see module docstring)."""
    path = Path(args.out) / f"latency-{n}"
    if (path / "memory.duckdb").is_file():
        with Memory(path, LATENCY_CONFIG, progress=False) as mem:
            if len(mem) == n and len(mem.stats().sessions) > 1:  # the copies sit in sessions of 50
                return path
    shutil.rmtree(path, ignore_errors=True)
    convs = load_locomo(args.data)
    texts = [t.record_text() for c in convs for t in c.turns]
    if n > len(texts):
        texts = texts + load_ag_news(args.data)[0]
    base = Path(args.out) / "latency-base"
    if not (base / "memory.duckdb").is_file():
        with Memory(base, progress=True) as mem:
            mem.add_many(texts, kind="message")
    if n <= len(texts):
        with Memory(base, progress=False) as mem:
            assert len(mem) >= n
        shutil.copytree(base, path)
        if n < len(texts):
            with Memory(path, progress=False) as mem:
                mem.delete(list(range(n + 1, len(texts) + 1)))
        return path
    src = Store(base / "memory.duckdb")
    ids, base_texts = src.texts()
    raw = {role: src.vectors(role)[1] for role in ("general", "own")}
    src.close()
    shutil.copytree(base, path)
    for f in ("index.faiss", "index.json", "keywords.npz", "rerank.f16", "rerank.ids"):
        (path / f).unlink(missing_ok=True)
    store = Store(path / "memory.duckdb")
    rng = np.random.default_rng(0)
    made = len(ids)
    copy = 1
    with tqdm(total=n - made, desc="filling copies") as bar:
        while made < n:
            m = min(len(ids), n - made)
            rows = [NewRecord("message", f"{t} (variant {copy})", "{}", f"s{(made + i) // 50}", 1.0, ())
                    for i, t in enumerate(base_texts[:m])]  # sessions of 50: FOLLOWS edges for expansion
            vecs = {}
            for role, arr in raw.items():
                x = arr[:m] + rng.normal(scale=0.02, size=arr[:m].shape).astype(np.float32)
                vecs[role] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
            store.insert(rows, vecs)
            made += m
            copy += 1
            bar.update(m)
    store.close()
    return path


def latency(n: int, args) -> dict[str, float]:
    path = build_large(n, args)
    questions = [q.question for c in load_locomo(args.data) for q in c.questions]
    queries, others = questions[: args.queries], questions[args.queries: 2 * args.queries]
    from selfmem.retrieval import _views

    # builds the index, keyword index, topics and graph if missing; SIMILAR_TO edges are left out (their
    # build at 1M would be 1M index searches, and the default search does not follow them)
    with Memory(path, LATENCY_CONFIG, progress=True) as mem:
        mem.wait()  # topics fitted at open run in the background: not during the timing
        for i in range(20):
            mem.search(f"warm-up query number {i}", k=10)
        _views._QUERY_CACHE.clear()  # every timed query runs both models
        lat = []
        for q in queries:
            t = time.perf_counter()
            mem.search(q, k=10)
            lat.append(time.perf_counter() - t)
        stats = mem.stats()
        from search_latency import measure_memory

        stages = measure_memory(mem, others, ["hybrid"])["hybrid"]  # other questions, time per stage
    res = {"n": stats.records, "index": stats.index["kind"], "p50": float(np.percentile(lat, 50) * 1e3),
           "p99": float(np.percentile(lat, 99) * 1e3), "queries": len(lat), "stages_ms": stages,
           "stages_queries": len(others),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor()}
    (Path(args.out) / f"latency-{n}.json").write_text(json.dumps(res, indent=1))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--latency-sizes", default="3000,100000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse the per-conversation memories of an earlier run")
    ap.add_argument("--only", default="", help="run only the settings whose name contains this (with --cv: the "
                                               "shipped setting must be among them)")
    ap.add_argument("--exclude", default="", help="with --cv: leave out the settings whose name contains this")
    ap.add_argument("--neighbour", action="store_true",
                    help="time the searches again beside a CPU-bound neighbour process (one busy core)")
    ap.add_argument("--cv", action="store_true",
                    help="the held-out number: memories filled session by session, leave one conversation out")
    args = ap.parse_args()
    print(f"# retrieval benchmark {date.today()} on {platform.node()} {platform.machine()}")
    if args.cv:
        res = cross_validated(args)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "retrieval-cv.json").write_text(json.dumps(res, indent=1))
        print(json.dumps({k: v for k, v in res.items() if k not in ("table", "categories")}, indent=1))
        names = list(res["questions"])
        print("\n| setting | " + " | ".join(names) + " | all questions |\n|---|" + "---|" * (len(names) + 1))
        for name, row in res["table"].items():
            print(f"| {name} | " + " | ".join(f"{row[n]:.3f}" for n in names) + f" | {row['all']:.3f} |")
        cats = list(CATEGORIES.values())
        print("\n| setting | " + " | ".join(cats) + " |\n|---|" + "---|" * len(cats))
        for name, row in res["categories"].items():
            print(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in cats) + " |")
        return
    if not args.skip_quality:
        rows = quality(args)
        print("\n| setting | R@1 | R@5 | R@10 | R@20 | hit@10 |\n|---|---|---|---|---|---|")
        for name, r in rows:
            print(f"| {name} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['R@10']:.3f} | {r['R@20']:.3f} | "
                  f"{r['hit@10']:.3f} |")
    if not args.skip_latency:
        print("\n| memories | index | machine | search p50 ms | p99 ms | queries |\n|---|---|---|---|---|---|")
        for n in (int(v) for v in args.latency_sizes.split(",")):
            for busy in ((False, True) if args.neighbour else (False,)):
                neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                try:
                    r = latency(n, args)
                finally:
                    if neighbour is not None:
                        neighbour.kill()
                print(f"| {r['n']:,} | {r['index']} | {'busy neighbour' if busy else 'quiet'} | {r['p50']:.1f} | "
                      f"{r['p99']:.1f} | {r['queries']} |", flush=True)


if __name__ == "__main__":
    main()
