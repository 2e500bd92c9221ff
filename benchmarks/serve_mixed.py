"""Mixed load on one fixed memory state: the closed loop of ``serve.py`` alone, repeatable run after run.

    python benchmarks/serve_mixed.py STATE [--seconds 20] [--warm 4] [--clients 8] [--copy-to DIR]

``serve.py``'s mixed phase runs right after its add phases, while the memory refits in the background,
so it varies from run to run. This script starts ``memctl serve`` on a copy of a memory folder left by
``serve.py`` (``STATE``: the ``--dir`` of a finished run, holding ``bench`` and ``client_texts.json``),
warms the server with ``--warm`` seconds of the same load, then measures ``--seconds`` of 80% searches and
20% adds from ``--clients`` client processes: requests/s, p50/p99 per operation, errors, and the CPU the
server and the whole machine used (Linux ``/proc``). Each run starts from a fresh copy, so runs of two
versions of the code (e.g. one from a worktree with ``PYTHONPATH``) can alternate on the same state.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine() -> tuple[int, int]:
    """(all jiffies, idle + iowait jiffies) since boot."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(f), f[3] + f[4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("state", help="the --dir of a finished serve.py run")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warm", type=float, default=4.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--copy-to", help="where the copy goes (default: a temporary folder, removed after)")
    args = ap.parse_args()
    state = Path(args.state)
    if not (state / "bench").is_dir() or not (state / "client_texts.json").is_file():
        raise SystemExit(f"{state} is not the folder of a finished serve.py run (bench/ and client_texts.json)")
    root = Path(args.copy_to) if args.copy_to else Path(tempfile.mkdtemp(prefix="serve-mixed-"))
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(state, root)
    try:
        server = serve.Server(root, [])
        pool = root / "client_texts.json"
        specs = [{"name": f"m-{i}", "seed": i, "texts": str(pool), "seconds": args.seconds, "count": 0,
                  "adds": 0.2} for i in range(args.clients)]
        try:
            serve.run_clients(server.url, "bench", [dict(s, seconds=args.warm, name=s["name"] + "w") for s in specs])
            c0, t0, m0 = _cpu_seconds(server.proc.pid), time.time(), _machine()
            res = serve.run_clients(server.url, "bench", specs)
            c1, t1, m1 = _cpu_seconds(server.proc.pid), time.time(), _machine()
        finally:
            server.stop()
        report = serve.summary(res, args.seconds)
        report["server_cores"] = round((c1 - c0) / (t1 - t0), 2)
        report["machine_busy"] = round(1 - (m1[1] - m0[1]) / max(m1[0] - m0[0], 1), 3)
        print(json.dumps(report))
    finally:
        if not args.copy_to:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
