"""Crash trials: SIGKILL a writer at random points, reopen, and check that nothing acknowledged was lost.

Usage::

    python benchmarks/crash.py [--trials 50] [--dir runs/crash] [--max-delay 3.0] [--json]

Each trial starts a writer process on a fresh memory (hash embedders in the dual view, whitening from 30
records, topics from 20) that
runs a seeded random mix of ``add_many``, ``add``, ``delete`` and ``rebuild``, and journals each
operation (fsync) after it returns. The parent kills it with SIGKILL after a random delay, reopens the
memory without any repair step, and checks:

1. every acknowledged add that was not deleted afterwards is present, with its text (a delete in
   flight when the kill came, journaled as begun but not acknowledged, may or may not have happened);
2. no acknowledged delete is present again;
3. every stored record has its vectors for every embedder (no half-written record);
4. the index, the keyword index and the topic memberships count exactly the stored records;
5. a sample of live records is found by searching its own text;
6. the graph: exactly one Memory node per stored record, no edge to a missing node, each session's
   FOLLOWS edges form one chain through its records (n - 1 edges), and a DERIVED_FROM edge for every
   stored parent of a stored record.
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from selfmem import EmbeddingConfig, Memory, MemoryConfig, TopicsConfig

# dual view: the whitening is fitted at 30 records and refitted as the memory doubles, so kills also land
# between a whitening refit and the index built on it
CONFIG = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own="hash:32", mode="dual", own_dim=16,
                                                own_min_fit=30),
                      topics=TopicsConfig(min_records=20))

WRITER = r"""
import json, os, random, sys
sys.path.insert(0, sys.argv[3])
from crash import CONFIG
from selfmem import Memory
path, seed, rebuilds = sys.argv[1], int(sys.argv[2]), float(sys.argv[4])
rng = random.Random(seed)
journal = open(os.path.join(os.path.dirname(path), "journal.jsonl"), "a")

def ack(entry):
    journal.write(json.dumps(entry) + "\n")
    journal.flush()
    os.fsync(journal.fileno())

live = []
with Memory(path, CONFIG, progress=False) as m:
    print("ready", flush=True)
    n = 0
    while True:
        r = rng.random()
        if r < rebuilds and live:
            m.rebuild()
            ack({"op": "rebuild"})
            continue
        r = rebuilds + (1 - rebuilds) * rng.random()  # the rest of the mix as before
        if r < 0.55 or not live:
            texts = [f"trial {seed} note {n + j} " + " ".join(rng.choice("abcdefghij") * 3 for _ in range(4))
                     for j in range(rng.randint(1, 25))]
            n += len(texts)
            parents = [rng.sample(live, k=min(len(live), 2)) if live and rng.random() < 0.3 else []
                       for _ in texts]
            ids = m.add_many(texts, session=f"s{rng.randint(0, 2)}", parents=parents)
            live += ids
            ack({"op": "add", "ids": ids, "texts": texts})
        elif r < 0.7:
            t = f"trial {seed} single {n}"
            n += 1
            rid = m.add(t, session=f"s{rng.randint(0, 2)}")
            live.append(rid)
            ack({"op": "add", "ids": [rid], "texts": [t]})
        elif r < 0.95:
            gone = rng.sample(live, k=min(len(live), rng.randint(1, 5)))
            ack({"op": "delete-begin", "ids": gone})  # in flight: these may or may not be gone after a kill
            m.delete(gone)
            live = [i for i in live if i not in set(gone)]
            ack({"op": "delete", "ids": gone})
        else:
            m.rebuild()
            ack({"op": "rebuild"})
"""


def check_invariants(path: Path, journal: Path) -> list[str]:
    added: dict[int, str] = {}
    deleted: set[int] = set()
    in_flight: set[int] = set()
    if journal.exists():
        for line in journal.read_text().splitlines():
            e = json.loads(line)
            if e["op"] == "add":
                added.update(zip(e["ids"], e["texts"]))
            elif e["op"] == "delete-begin":
                in_flight = set(e["ids"])
            elif e["op"] == "delete":
                deleted.update(e["ids"])
                in_flight = set()
    problems = []
    with Memory(path, progress=False) as m:
        m.wait()  # refits the reopen started (e.g. topics) are swapped in before checking
        store = m._state.live()
        ids = set(int(i) for i in store.ids())
        for rid, text in added.items():
            if rid in deleted or rid in in_flight:
                continue
            if rid not in ids:
                problems.append(f"acknowledged record {rid} lost")
            elif m.get(rid).text != text:
                problems.append(f"record {rid} has the wrong text")
        problems += [f"deleted record {rid} resurrected" for rid in deleted & ids]
        for role in m._state.views.roles:
            if set(int(i) for i in store.vectors(role)[0]) != ids:
                problems.append(f"records without {role} vectors")
        stats = m.stats()
        if stats.index["size"] != len(ids):
            problems.append(f"index holds {stats.index['size']} vectors for {len(ids)} records")
        if set(int(i) for i in m._state.keywords.index.ids()) != ids:
            problems.append("keyword index differs from the store")
        if m.topics() and sum(t.size for t in m.topics() if t.level == 0) != len(ids):
            problems.append("topic memberships differ from the store")
        problems += graph_problems(m, ids)
        live = sorted(set(added) - deleted - in_flight)
        for rid in random.Random(0).sample(live, k=min(20, len(live))):
            if rid not in {h.record.id for h in m.search(added[rid], k=5, mode="dense")}:
                problems.append(f"record {rid} not found by its own text")
    return problems


def graph_problems(m: Memory, ids: set[int]) -> list[str]:
    graph = m._state.graph.graph
    out = []
    nodes = graph.nodes(f"memory:{i}" for i in ids)
    if len(nodes) != len(ids):
        out.append(f"graph has {len(nodes)} Memory nodes for {len(ids)} records")
    if graph.dangling():
        out.append(f"{graph.dangling()} graph edges point to missing records")
    g = m.to_networkx()  # the public graph export: every stored and derived edge
    records = [m.get(i) for i in sorted(ids)]
    per_session = Counter(r.session for r in records if r.session is not None)
    follows = Counter(records_by_id.session for u, v, rel in g.edges(keys=True) if rel == "FOLLOWS"
                      for records_by_id in [m.get(int(u.split(":")[1]))])
    for session, n in per_session.items():
        if follows.get(session, 0) != n - 1:
            out.append(f"session {session}: {follows.get(session, 0)} FOLLOWS edges for {n} records")
    want = {(f"memory:{r.id}", f"memory:{p}") for r in records for p in r.parents if p in ids}
    have = {(u, v) for u, v, rel in g.edges(keys=True) if rel == "DERIVED_FROM"}
    if want != have:
        out.append(f"DERIVED_FROM edges differ from the stored parents ({len(want ^ have)} differ)")
    return out


def run_trial(path: Path, seed: int, max_delay: float = 3.0, rebuilds: float = 0.0) -> dict:
    path = Path(path)
    shutil.rmtree(path.parent / "journal.jsonl", ignore_errors=True)
    (path.parent / "journal.jsonl").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(seed), str(Path(__file__).parent),
                             str(rebuilds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", "writer did not start"
    delay = random.Random(seed).uniform(0.05, max_delay)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journal = path.parent / "journal.jsonl"
    acked = sum('"op": "delete-begin"' not in line for line in open(journal)) if journal.exists() else 0
    return {"seed": seed, "delay_s": round(delay, 3), "acked_ops": acked,
            "violations": check_invariants(path, journal)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--dir", default="runs/crash")
    ap.add_argument("--max-delay", type=float, default=3.0)
    ap.add_argument("--json", action="store_true", help="print one JSON summary line at the end")
    ap.add_argument("--rebuilds", type=float, default=0.0,
                    help="share of operations that are a full rebuild (kills then land in every rebuild stage)")
    args = ap.parse_args()
    from tqdm import tqdm

    results = []
    for seed in tqdm(range(args.trials), desc="crash trials", disable=args.json):
        d = Path(args.dir) / f"trial-{seed}"
        shutil.rmtree(d, ignore_errors=True)
        results.append(run_trial(d / "mem", seed, args.max_delay, args.rebuilds))
        if results[-1]["violations"]:
            print(f"trial {seed}: {results[-1]['violations']}", file=sys.stderr)
    summary = {"trials": len(results), "violations": sum(len(r["violations"]) for r in results),
               "acked_ops": sum(r["acked_ops"] for r in results),
               "delays_s": [min(r["delay_s"] for r in results), max(r["delay_s"] for r in results)]}
    print(json.dumps(summary) if args.json else
          f"{summary['trials']} trials, {summary['acked_ops']} acknowledged operations, "
          f"kill delays {summary['delays_s'][0]}-{summary['delays_s'][1]} s, "
          f"invariant violations: {summary['violations']}")


if __name__ == "__main__":
    main()
