"""Exit trials: scripts that never close their memory, drop it, are interrupted in close, or fork; each must exit
without an abort and leave a memory that ``doctor`` calls healthy (checked before any reopen).

Usage::

    python benchmarks/exit_trials.py [--trials 10] [--dir runs/exit] [--real] [--json]

Scenarios (each run ``--trials`` times with a random size and timing from the trial's seed):

- ``one-liner``: ``Memory(path).add_many(texts)`` and the script ends (50-600 records, so the first topic
  fit and the whitening run in the background at exit);
- ``dropped``: the handle is dropped inside a function while its refits run, then the script does other work
  for 0-0.5 s and ends;
- ``ctrl-c-in-close``: SIGINT 0-0.3 s into ``close()`` of a ``with`` block; the caller catches it and ends;
- ``fork``: a forked child uses the inherited handle (``MemoryForkedError``), drops it and exits normally;
  the parent adds more and ends without closing.

``--real`` uses the default models (all-MiniLM-L6-v2 and SmolLM2) instead of the hash embedders.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

from selfmem import doctor

HASH = ("MemoryConfig(embedding=EmbeddingConfig(general='hash:64', own='hash:32', mode='dual', own_dim=16, "
        "own_min_fit=100), topics=TopicsConfig(min_records=30))")

SCRIPTS = {
    "one-liner": """
Memory(path, CFG).add_many([f"note {i}: the grid is rotated {i} times" for i in range(n)], kind="note")
""",
    "dropped": """
import time
def work():
    m = Memory(path, CFG)
    m.add_many([f"note {i}: the grid is rotated {i} times" for i in range(n)])
work()
time.sleep(delay)
""",
    "ctrl-c-in-close": """
import os, signal, threading
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    with Memory(path, CFG) as m:
        m.add_many([f"note {i}: the grid is rotated {i} times" for i in range(n)])
        threading.Timer(delay * 0.6, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
except KeyboardInterrupt:
    pass
""",
    "fork": """
import os, sys
from selfmem import MemoryForkedError
m = Memory(path, CFG)
m.add_many([f"note {i}: the grid is rotated {i} times" for i in range(n)])
pid = os.fork()
if pid == 0:
    try:
        m.add("from the child")
        sys.exit(3)
    except MemoryForkedError:
        del m
        sys.exit(0)
_, status = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(4)
m.add_many([f"parent after the fork {i}" for i in range(20)])
""",
}


def trial(root: Path, scenario: str, seed: int, real: bool) -> dict:
    rng = random.Random(seed)
    path = root / f"{scenario}-{seed}"
    shutil.rmtree(path, ignore_errors=True)
    n, delay = rng.randint(50, 600), rng.uniform(0.0, 0.5)
    cfg = "None" if real else HASH
    prelude = ("from selfmem import EmbeddingConfig, Memory, MemoryConfig, TopicsConfig\n"
               f"path, n, delay, CFG = {str(path)!r}, {n}, {delay}, {cfg}\n")
    res = subprocess.run([sys.executable, "-c", prelude + SCRIPTS[scenario]], capture_output=True, text=True,
                         timeout=900)
    aborted = res.returncode != 0 or "terminate called" in res.stderr or "FATAL" in res.stderr
    check = doctor(path)
    out = {"scenario": scenario, "seed": seed, "records": n, "rc": res.returncode, "aborted": aborted,
           "doctor": [f.code or f.message for f in check.problems]}
    if aborted:
        out["stderr"] = res.stderr.strip().splitlines()[-3:]
    shutil.rmtree(path, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--dir", default="runs/exit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real", action="store_true", help="the default models instead of the hash embedders")
    ap.add_argument("--scenarios", default=",".join(SCRIPTS), help="comma-separated subset of the scenarios")
    ap.add_argument("--json", action="store_true", help="print one JSON summary line at the end")
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    summary = {}
    for scenario in args.scenarios.split(","):
        rows = [trial(root, scenario, args.seed + t, args.real) for t in range(args.trials)]
        for r in rows:
            if r["aborted"] or r["doctor"]:
                print(f"{scenario} seed {r['seed']}: FAIL {json.dumps(r)}", flush=True)
        summary[scenario] = {"trials": len(rows), "aborted": sum(r["aborted"] for r in rows),
                             "doctor_problems": sum(bool(r["doctor"]) for r in rows)}
        print(f"{scenario}: {summary[scenario]}", flush=True)
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
