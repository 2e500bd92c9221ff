"""Wall time of ``memctl search NAMESPACE QUERY --url URL`` against a ``memctl serve`` on 127.0.0.1 (issue 26).

Usage::

    python benchmarks/memctl_url.py [--records 10000] [--runs 10] [--models hash|real] [--dir runs/memctl_url]
                                    [--json]

Prefills a namespace with ``--records`` AG News texts (in process, before the server starts), starts the
server (``benchmarks/serve.py``'s ``Server``), then times ``--runs`` commands, each its own process as a
user runs it, after one untimed warm-up command (the server's first search loads its index and models).
Also reported: the server's own time for the same search (``POST /search`` from a warm in-process client,
median of ``--runs``), so that the client's share of the command is the difference; and the modules that
the command imported (``-X importtime``) among torch, faiss, duckdb, numpy, pydantic, httpx, fastapi.
Run it pinned (``taskset -c 0``) to say how many cores it had.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load_ag_news  # noqa: E402
from serve import Server  # noqa: E402

WATCH = ("torch", "faiss", "duckdb", "numpy", "pydantic", "httpx", "fastapi", "uvicorn", "sklearn", "scipy",
         "transformers", "pandas", "pyarrow")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--models", choices=["hash", "real"], default="hash")
    ap.add_argument("--query", default="oil prices")
    ap.add_argument("--dir", default="runs/memctl_url")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from selfmem import EmbeddingConfig, Memory, MemoryConfig, RemoteMemory

    root = Path(a.dir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    news, _ = load_ag_news()
    texts = [news[i % len(news)] + ("" if i < len(news) else f" (round {i // len(news)})") for i in range(a.records)]
    cfg = (MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
           if a.models == "hash" else MemoryConfig())
    with Memory(root / "bench", cfg, progress=False) as mem:
        for i in range(0, a.records, 1000):
            mem.add_many(texts[i:i + 1000], kind="note")
    report: dict[str, Any] = {"records": a.records, "models": a.models, "runs": a.runs,
                              "cores": len(os.sched_getaffinity(0))}
    server = Server(root, [])
    cmd = [sys.executable, "-m", "selfmem.cli", "search", "bench", a.query, "--url", server.url]
    try:
        first = subprocess.run(cmd, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        walls = []
        for _ in range(a.runs):
            t = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True)
            walls.append(time.perf_counter() - t)
            assert res.returncode == 0, res.stderr
            assert res.stdout == first.stdout, (res.stdout, first.stdout)
        report["memctl_search_url_s"] = {"median": round(statistics.median(walls), 3), "max": round(max(walls), 3),
                                         "min": round(min(walls), 3)}
        bare = []
        for _ in range(a.runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - t)
        report["python_c_pass_s"] = round(statistics.median(bare), 3)
        with RemoteMemory(server.url, "bench", create=False) as remote:
            remote.search(a.query)
            srv = []
            for _ in range(a.runs):
                t = time.perf_counter()
                remote.search(a.query)
                srv.append(time.perf_counter() - t)
            srv_new = []
            for i in range(a.runs):  # a query the server has not embedded before
                t = time.perf_counter()
                remote.search(f"{a.query} {i} {time.time_ns()}")
                srv_new.append(time.perf_counter() - t)
        report["server_search_ms"] = round(statistics.median(srv) * 1000, 1)
        report["server_search_new_query_ms"] = round(statistics.median(srv_new) * 1000, 1)
        imp = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True)
        mods = {line.split("|")[-1].strip() for line in imp.stderr.splitlines() if line.startswith("import time:")}
        report["imported"] = sorted(m for m in WATCH if m in mods)
        report["modules_imported"] = len(mods)
        report["output"] = first.stdout.splitlines()[:3]
    finally:
        server.stop()
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            print(f"{k:<28} {v}")


if __name__ == "__main__":
    main()
