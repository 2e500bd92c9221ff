"""Load on a served memory: ``memctl serve`` on 127.0.0.1 with client processes (bounded in count and time).

Usage::

    python benchmarks/serve.py [--records 10000] [--clients 8] [--seconds 15] [--models hash|real]
                               [--rate 20] [--solver] [--dir runs/serve] [--json]

Steps (each client is its own process, started together):

1. prefill a namespace with ``--records`` AG News texts (repeated with a round number past 7,600) (``add_many`` in process, before the server starts);
2. single adds: one client alone, then ``--clients`` clients at once (adds/s; group commit makes these grow);
3. mixed closed loop: ``--clients`` clients, 80% search / 20% add, as fast as answered (requests/s, p50/p99
   per operation, errors);
4. open loop: ``--clients`` clients offering ``--rate`` searches/s in all, on a fixed schedule; latency
   counted from the scheduled time (no coordinated omission);
5. ``memctl search --url`` wall time per command (5 runs);
6. with ``--solver``: steps 3 and 4 again beside a CPU-bound process (a busy Python loop);
7. every acknowledged add is looked up afterwards (lost = acknowledged but not found, duplicates by key).

``--models hash`` uses the hash embedder (dim 64); ``real`` the default models (MiniLM + SmolLM2).
Run it pinned (``taskset -c 0``) to say how many cores it had.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load_ag_news  # noqa: E402

from selfmem import EmbeddingConfig, Memory, MemoryConfig  # noqa: E402

CLIENT = r"""
import json, random, sys, time
from selfmem import RemoteMemory, SelfmemError
spec = json.loads(sys.argv[1])
mem = RemoteMemory(spec["url"], spec["ns"], retries=0, timeout=120)
rng = random.Random(spec["seed"])
texts = json.load(open(spec["texts"]))
lat = {"search": [], "add": []}
errors, acked, n = [], {}, 0
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
end = start + spec["seconds"]
period = spec.get("period")
while True:
    now = time.perf_counter()
    if now >= end or (spec["count"] and n >= spec["count"]):
        break
    if period:  # open loop: the i-th request is due at start + i * period; latency counts from then
        due = start + spec["offset"] + n * period
        if due >= end:
            break
        if due > now:
            time.sleep(due - now)
        t0 = due
    else:
        t0 = time.perf_counter()
    op = "add" if rng.random() < spec["adds"] else "search"
    try:
        if op == "add":
            key = f'{spec["name"]}-{n}'
            acked[key] = mem.add(f'{texts[n % len(texts)]} [{key}]', kind="note", key=key, session=spec["name"])
        else:
            mem.search(texts[rng.randrange(len(texts))][:200], k=5)
        lat[op].append(time.perf_counter() - t0)
    except SelfmemError as exc:
        errors.append(f"{type(exc).__name__}: {str(exc)[:100]}")
    n += 1
print(json.dumps({"lat": lat, "errors": errors, "acked": acked, "wall": time.perf_counter() - start}))
"""


def run_clients(url: str, ns: str, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, json.dumps({"url": url, "ns": ns, **s})],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for s in specs]
    for p in procs:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"a client did not start: {line!r}")
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return [json.loads(p.communicate(timeout=3600)[0]) for p in procs]


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 1)


def summary(results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    total = 0
    for op in ("search", "add"):
        lat = [x for r in results for x in r["lat"][op]]
        total += len(lat)
        if lat:
            out[op] = {"n": len(lat), "per_s": round(len(lat) / seconds, 1), "p50_ms": pct(lat, 0.5),
                       "p99_ms": pct(lat, 0.99)}
    errors = [e for r in results for e in r["errors"]]
    out.update(requests_per_s=round(total / seconds, 1), errors=len(errors), error_samples=sorted(set(errors))[:3])
    return out


class Server:
    def __init__(self, root: Path, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "selfmem.cli", "serve", str(root), "--port", "0",
                                      "--json", *args], stdout=subprocess.PIPE, text=True)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(600):
            self.proc.kill()
            raise SystemExit("the server did not start")
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=20.0, help="open loop: searches/s offered by all clients")
    ap.add_argument("--models", choices=["hash", "real"], default="hash")
    ap.add_argument("--solver", action="store_true", help="repeat the mixed and open loops beside a busy process")
    ap.add_argument("--dir", default="runs/serve")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    root = Path(a.dir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    news, _ = load_ag_news()  # 7,600 texts; beyond that they repeat with a round number, so none is identical
    texts = [news[i % len(news)] + ("" if i < len(news) else f" (round {i // len(news)})")
             for i in range(a.records + 2000)]
    cfg = (MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
           if a.models == "hash" else MemoryConfig())
    t0 = time.perf_counter()
    with Memory(root / "bench", cfg, progress=False) as mem:
        for i in range(0, a.records, 1000):
            mem.add_many(texts[i:min(i + 1000, a.records)], kind="note")
    report: dict[str, Any] = {"records": a.records, "clients": a.clients, "seconds": a.seconds, "models": a.models,
                              "cores": len(os.sched_getaffinity(0)), "prefill_s": round(time.perf_counter() - t0, 1)}
    pool = root / "client_texts.json"
    pool.write_text(json.dumps(texts[a.records:a.records + 2000]))
    server = Server(root, [])
    acked: dict[str, int] = {}

    def spec(name: str, **kw: Any) -> dict[str, Any]:
        base = {"name": name, "seed": hash(name) % 1000, "texts": str(pool), "seconds": a.seconds, "count": 0,
                "adds": 0.0}
        return {**base, **kw}

    def phase(tag: str, specs: list[dict[str, Any]]) -> dict[str, Any]:
        res = run_clients(server.url, "bench", specs)
        for r in res:
            acked.update(r["acked"])
        return summary(res, a.seconds)

    try:
        report["adds_1_client"] = phase("a1", [spec("a1-0", adds=1.0)])
        report[f"adds_{a.clients}_clients"] = phase("a8", [spec(f"a8-{i}", adds=1.0) for i in range(a.clients)])
        one, many = report["adds_1_client"]["add"]["per_s"], report[f"adds_{a.clients}_clients"]["add"]["per_s"]
        report["adds_speedup"] = round(many / one, 2)
        loops = [("", None)] + ([("_beside_solver", True)] if a.solver else [])
        for suffix, busy in loops:
            solver = None
            if busy:
                solver = subprocess.Popen([sys.executable, "-c", "while True: sum(i * i for i in range(100000))"])
            try:
                report["mixed" + suffix] = phase("m" + suffix, [spec(f"m{suffix}-{i}", adds=0.2)
                                                                for i in range(a.clients)])
                period = a.clients / a.rate
                report["open_search" + suffix] = phase("o", [
                    spec(f"o{suffix}-{i}", period=period, offset=i * period / a.clients) for i in range(a.clients)])
                report["open_search" + suffix]["offered_per_s"] = a.rate
            finally:
                if solver is not None:
                    solver.kill()
                    solver.wait()
        walls = []
        for _ in range(5):
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "selfmem.cli", "search", "bench", "oil prices", "--url",
                                  server.url], capture_output=True, text=True)
            walls.append(time.perf_counter() - t)
            assert res.returncode == 0, res.stderr
        report["server_batches"] = json.loads(subprocess.run(
            [sys.executable, "-c", f"import httpx; print(httpx.get('{server.url}/v1/namespaces/bench/commits').text)"],
            capture_output=True, text=True).stdout)
        report["memctl_search_url_s"] = {"median": round(statistics.median(walls), 3), "max": round(max(walls), 3)}
    finally:
        server.stop()
    with Memory(root / "bench", read_only=True) as mem:
        found = lost = 0
        for key, rid in acked.items():
            try:
                ok = mem.get(rid).text.endswith(f"[{key}]")
            except KeyError:
                ok = False
            found, lost = found + ok, lost + (not ok)
        texts_now = [h for h in (mem.get(i).text for i in set(acked.values()))]
        report["acked_adds"], report["found"], report["lost"] = len(acked), found, lost
        report["duplicates"] = len(texts_now) - len(set(texts_now))
        report["records_after"] = len(mem)
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            print(f"{k:<28} {v}")


if __name__ == "__main__":
    main()
