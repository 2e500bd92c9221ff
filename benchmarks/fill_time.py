"""How long the real models take to fill LoCoMo conversations, with and without sentence vectors.

Usage::

    python benchmarks/fill_time.py [--data ../shared/data] [--out runs/bench] [--convs conv-26,conv-30]
                                   [--pairs 2]

Each conversation is filled as a user fills a memory (one ``add_many`` per session, the default config, real
models; :func:`retrieval.fill_incrementally`), once with ``embedding.sentences`` on and once off, the two
alternated ``--pairs`` times so that a machine that slows down mid-run weighs on both. Prints and writes
(``fill-time.json``) the seconds per fill and the ratio on/off.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import DEFAULT_DATA, load_locomo  # noqa: E402
from retrieval import fill_incrementally  # noqa: E402

from selfmem import MemoryConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--convs", default="conv-26,conv-30", help="conversations to fill (comma-separated)")
    ap.add_argument("--pairs", type=int, default=2, help="on/off pairs per conversation, alternated")
    args = ap.parse_args()
    wanted = args.convs.split(",")
    convs = [c for c in load_locomo(args.data) if c.name in wanted]
    if not convs:
        raise SystemExit(f"no conversation named {wanted} under {args.data}")
    out = Path(args.out)
    runs: dict[str, dict[str, list[float]]] = {}
    for c in convs:
        runs[c.name] = {"on": [], "off": []}
        for p in range(args.pairs):
            for state in (("on", "off") if p % 2 == 0 else ("off", "on")):
                base = MemoryConfig()
                cfg = base.replace(embedding=dataclasses.replace(base.embedding, sentences=state == "on"))
                t0 = time.perf_counter()
                fill_incrementally(out / f"fill-{c.name}-{state}", c, cfg)
                runs[c.name][state].append(time.perf_counter() - t0)
                print(f"{c.name} ({len(c.turns)} turns) sentences {state}: {runs[c.name][state][-1]:.1f} s", flush=True)
    on = sum(sum(r["on"]) for r in runs.values())
    off = sum(sum(r["off"]) for r in runs.values())
    res = {"date": str(date.today()), "machine": f"{platform.node()} {platform.machine()}", "runs": runs,
           "on_s": on, "off_s": off, "ratio": on / off}
    print(f"sentences on / off: {on:.1f} s / {off:.1f} s = {on / off:.2f}x")
    out.mkdir(parents=True, exist_ok=True)
    (out / "fill-time.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
