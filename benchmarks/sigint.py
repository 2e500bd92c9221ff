"""Ctrl-C at random moments: every ending must be KeyboardInterrupt, nothing acknowledged may be lost.

Usage::

    python benchmarks/sigint.py [--trials 100] [--import-trials 20] [--dir runs/sigint] [--json]

Each trial starts a writer process (hash embedders, dual view, background refits) that loops over
``add_many`` (50 texts, idempotency keys), ``delete``, ``rebuild`` and ``search``, printing what each
call acknowledged, and sends it SIGINT after a random delay (0.1 to 4 s: inside adds, deletes,
rebuilds, the whitening and topic refits running in the background, ``close()``). A trial passes when
the process ends by KeyboardInterrupt (killed by SIGINT, the traceback's last line ``KeyboardInterrupt``,
no other exception in it, no abort), the reopened memory holds every acknowledged record and none
acknowledged as deleted, and ``doctor`` finds nothing. ``--import-trials`` does the same to ``memctl
import`` of a 20,000-line JSONL file: the exit code must be 130 and the memory must pass ``doctor``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from selfmem import EmbeddingConfig, Memory, MemoryConfig, TopicsConfig, doctor

CFG = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own="hash:48", mode="dual", own_dim=32,
                                             own_min_fit=100), topics=TopicsConfig(min_records=30))

CHILD = r"""
import json, random, sys
from selfmem import Memory, MemoryConfig
path, seed, cfg = sys.argv[1], int(sys.argv[2]), MemoryConfig.from_dict(json.loads(sys.argv[3]))
rng = random.Random(seed)
words = "grid rotate colour swap mirror tile object count fill border crop scale shift line dot".split()
live, n = [], 0
m = Memory(path, cfg, progress=False)
print("ready", flush=True)
try:
    while True:
        op = rng.random()
        if op < 0.6 or len(live) < 20:
            texts = [" ".join(rng.choice(words) for _ in range(5)) + f" item {n + j}" for j in range(50)]
            ids = m.add_many(texts, keys=[f"k{n + j}" for j in range(50)])
            n += 50
            live += ids
            print("added", json.dumps(ids), flush=True)
        elif op < 0.75:
            victim = live.pop(rng.randrange(len(live)))
            print("deleting", victim, flush=True)
            m.delete(victim)
            print("deleted", victim, flush=True)
        elif op < 0.82:
            m.rebuild()
        else:
            m.search("rotate the grid", k=5)
finally:
    m.close()
"""


def _ended_by_interrupt(proc: subprocess.CompletedProcess | subprocess.Popen, err: str) -> str | None:
    """None when the process ended by KeyboardInterrupt and nothing else; else what happened."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    others = [ln for ln in lines if not ln.startswith(" ") and ("Error" in ln or "Exception" in ln or "FATAL" in ln)
              and not ln.startswith("KeyboardInterrupt")]
    if proc.returncode != -signal.SIGINT and proc.returncode != 130:
        return f"exit {proc.returncode}: {lines[-1] if lines else ''}"
    if not lines or lines[-1].strip() != "KeyboardInterrupt" and proc.returncode == -signal.SIGINT:
        return f"last line {lines[-1] if lines else ''!r}"
    if others:
        return f"also raised: {others[0][:200]}"
    return None


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal delivers it (a shell starts background jobs with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def writer_trial(path: Path, seed: int) -> dict:
    shutil.rmtree(path, ignore_errors=True)
    rng = random.Random(seed)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(seed), json.dumps(CFG.to_dict())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.1, 4.0))
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"seed": seed, "ending": "hung for 120 s after SIGINT", "lost": [], "resurrected": [], "doctor": []}
    added, deleting, deleted = set(), set(), set()
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word == "added":
            added |= set(json.loads(rest))
        elif word == "deleting":
            deleting.add(int(rest))
        elif word == "deleted":
            deleted.add(int(rest))
    with Memory(path, progress=False) as m:
        present = set(m.points().ids.tolist())
    checkup = doctor(path)
    return {"seed": seed, "ending": _ended_by_interrupt(proc, err), "acknowledged": len(added),
            "lost": sorted(added - deleting - present), "resurrected": sorted(deleted & present),
            "doctor": [f.code or f.message for f in checkup.problems], "stderr_tail": err.strip().splitlines()[-3:]}


def import_trial(path: Path, file: Path, seed: int) -> dict:
    shutil.rmtree(path, ignore_errors=True)
    with Memory(path, CFG, progress=False):
        pass
    rng = random.Random(seed)
    memctl = Path(sys.executable).with_name("memctl")
    proc = subprocess.Popen([str(memctl), "import", str(path), str(file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    time.sleep(rng.uniform(0.5, 6.0))
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"seed": seed, "ending": "hung for 60 s after SIGINT", "doctor": []}
    checkup = doctor(path)  # as memctl left it: it closed its handle (saved derived files) before exiting
    ending = None if proc.returncode == 130 else f"exit {proc.returncode}: {(err.strip().splitlines() or [''])[-1]}"
    return {"seed": seed, "ending": ending, "doctor": [f.code or f.message for f in checkup.problems]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--import-trials", type=int, default=20)
    ap.add_argument("--dir", default="runs/sigint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON summary line at the end")
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for t in range(args.trials):
        r = writer_trial(root / "writer", args.seed + t)
        results.append(r)
        bad = r["ending"] or r["lost"] or r["resurrected"] or r["doctor"]
        print(f"writer trial {t}: {'FAIL ' + json.dumps(r) if bad else 'ok'} ({r.get('acknowledged', 0)} acked)",
              flush=True)
    imports = []
    if args.import_trials:
        file = root / "import.jsonl"
        with open(file, "w") as fh:
            for i in range(20_000):
                fh.write(json.dumps({"text": f"imported note {i} about grids and colours", "key": f"i{i}"}) + "\n")
        for t in range(args.import_trials):
            r = import_trial(root / "import", file, args.seed + t)
            imports.append(r)
            print(f"import trial {t}: {'FAIL ' + json.dumps(r) if r['ending'] or r['doctor'] else 'ok'}", flush=True)
    endings = Counter(r["ending"] or "KeyboardInterrupt" for r in results)
    summary = {"trials": len(results), "endings": dict(endings),
               "not_keyboard_interrupt": sum(1 for r in results if r["ending"]),
               "lost_acknowledged": sum(len(r["lost"]) for r in results),
               "resurrected_deletes": sum(len(r["resurrected"]) for r in results),
               "doctor_findings": sum(1 for r in results if r["doctor"]),
               "import_trials": len(imports), "import_not_130": sum(1 for r in imports if r["ending"]),
               "import_doctor_findings": sum(1 for r in imports if r["doctor"])}
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=1))
    os.makedirs(root, exist_ok=True)
    (root / "results.json").write_text(json.dumps({"summary": summary, "writer": results, "import": imports},
                                                  indent=1))


if __name__ == "__main__":
    main()
