"""Kill trials for ``memctl serve``: SIGKILL the server at random moments under write load, restart, check.

Usage::

    python benchmarks/serve_kill.py [--kills 20] [--writers 4] [--max-delay 3.0] [--dir runs/serve_kill] [--json]

Each round starts the server on the same root, starts ``--writers`` client processes that add single
records with idempotency keys (``<writer>-<i>``, text ``"item <i> of <writer> [<key>]"``) and journal each
acknowledged ``key id`` line (flushed) as soon as the add returns, then SIGKILLs the server after a random
delay in [1, ``--max-delay``] s. A writer stops at its first failed add; in the next round it retries that
same key first (as a client whose request timed out would), so an add that was committed but whose answer
was lost must come back with its first id, not a second record. After the last round the memory is
opened directly and checked:

1. lost: acknowledged keys whose id is missing or holds another text (must be 0);
2. duplicates: records whose text appears more than once (must be 0; every key has one text);
3. mismatched: a key acknowledged twice with different ids (must be 0).
"""

from __future__ import annotations

import argparse
import json
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from selfmem import EmbeddingConfig, Memory, MemoryConfig

WRITER = r"""
import sys
from selfmem import RemoteMemory, SelfmemError
url, name, start, journal = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
try:
    mem = RemoteMemory(url, "kill", retries=0, timeout=30)
except SelfmemError:
    sys.exit(0)
with open(journal, "a") as out:
    i = start
    while True:
        key = f"{name}-{i}"
        try:
            rid = mem.add(f"item {i} of {name} [{key}]", kind="note", key=key, session=name)
        except SelfmemError:
            break
        out.write(f"{key} {rid}\n")
        out.flush()
        i += 1
"""


def start_server(root: Path, cfg: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "selfmem.cli", "serve", str(root), "--port", "0", "--json",
                             "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(120):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, json.loads(proc.stdout.readline())["url"]


def read_journal(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:  # a line cut by the kill of its writer is not an acknowledgement it kept
            rows.append((parts[0], int(parts[1])))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--max-delay", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default="runs/serve_kill")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    base = Path(a.dir)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    root, cfg = base / "root", base / "config.toml"
    MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general")).write(cfg)
    journals = {f"w{i}": base / f"w{i}.journal" for i in range(a.writers)}
    next_index = dict.fromkeys(journals, 0)
    t0 = time.perf_counter()
    for _ in range(a.kills):
        server, url = start_server(root, cfg)
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(next_index[name]), str(path)],
                                    stderr=subprocess.DEVNULL) for name, path in journals.items()]
        time.sleep(rng.uniform(min(1.0, a.max_delay), a.max_delay))  # writers need ~1 s to start
        server.send_signal(signal.SIGKILL)
        server.wait()
        for w in writers:
            w.wait(timeout=120)
        for name, path in journals.items():
            rows = read_journal(path)
            if rows:  # resume at the first key not acknowledged: it may have been committed, answer lost
                next_index[name] = max(int(k.rsplit("-", 1)[1]) for k, _ in rows) + 1
    acked: dict[str, int] = {}
    mismatched = 0
    for path in journals.values():
        for key, rid in read_journal(path):
            if key in acked and acked[key] != rid:
                mismatched += 1
            acked[key] = rid
    with Memory(root / "kill", progress=False) as mem:  # opened after a SIGKILL, with no repair step
        lost = 0
        for key, rid in acked.items():
            try:
                ok = mem.get(rid).text.endswith(f"[{key}]")
            except KeyError:
                ok = False
            lost += not ok
        texts = Counter(mem.points().texts)
    report = {"kills": a.kills, "writers": a.writers, "acknowledged": len(acked), "records": sum(texts.values()),
              "lost": lost, "duplicates": sum(n - 1 for n in texts.values()), "mismatched": mismatched,
              "committed_not_acknowledged": sum(texts.values()) - len(acked) - sum(n - 1 for n in texts.values()),
              "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(report, indent=2) if a.json else "\n".join(f"{k:<28} {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
