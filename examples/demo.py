"""The main job until the solver lands: fill a memory with a real conversation and search it.

Usage: python examples/demo.py [--data ../shared/data] [--path runs/demo]

Loads the LoCoMo conversation conv-26 (one record per dialogue turn, one session
per conversation session), closes the memory, reopens it, shows the topic tree the
memory organised itself into, and answers a few of the benchmark's questions by
retrieval, reporting whether the evidence turn was found and the hit's topic.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from _data import DEFAULT_DATA, load_locomo  # noqa: E402

from selfmem import Memory  # noqa: E402


def show_tree(topics: dict, nodes: list, indent: str, depth: int = 2) -> None:
    """Print topics (largest first) with label and size, and their children down to ``depth`` levels."""
    for t in sorted(nodes, key=lambda t: -t.size):
        print(f"{indent}[{t.id}] {t.label} ({t.size})")
        if depth > 1 and t.children:
            show_tree(topics, [topics[c] for c in t.children], indent + "    ", depth - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="shared data folder (holds locomo/)")
    ap.add_argument("--path", default="runs/demo", help="memory directory (recreated)")
    ap.add_argument("--questions", type=int, default=8, help="questions to answer")
    args = ap.parse_args()

    conv = next(c for c in load_locomo(args.data) if c.name == "conv-26")
    shutil.rmtree(args.path, ignore_errors=True)
    with Memory(args.path) as mem:
        by_session: dict[int, list] = {}
        for t in conv.turns:
            by_session.setdefault(t.session, []).append(t)
        texts = [t.record_text() for t in conv.turns]
        metas = [{"dia_id": t.dia_id, "speaker": t.speaker, "date": t.date} for t in conv.turns]
        print(f"adding {len(texts)} turns of {conv.name} in {len(by_session)} sessions ...")
        start = 0
        for num, turns in sorted(by_session.items()):
            with mem.session(f"{conv.name}/s{num}"):
                mem.add_many(texts[start:start + len(turns)], kind="message",
                             metadata=metas[start:start + len(turns)])
            start += len(turns)
    # a new Memory object on the same directory: everything comes back from disk
    with Memory(args.path) as mem:
        stats = mem.stats()
        print(f"reopened {stats.path}: {stats.records} records, {len(stats.sessions)} sessions, "
              f"index {stats.index['kind']} dim {stats.index['dim']}")
        topics = {t.id: t for t in mem.topics()}
        leaves = sum(1 for t in topics.values() if t.level == 0)
        print(f"\ntopics it found by itself: {leaves} leaf topics under "
              f"{sum(1 for t in topics.values() if t.parent is None)} top-level topics")
        show_tree(topics, [t for t in topics.values() if t.parent is None], "  ")
        found = 0
        for q in conv.questions[: args.questions]:
            hits = mem.search(q.question, k=5)
            ok = any(h.record.metadata["dia_id"] in q.evidence for h in hits)
            found += ok
            top = hits[0]
            print(f"\nQ: {q.question}\n   evidence {sorted(q.evidence)} {'found' if ok else 'missed'} in top 5; "
                  f"top hit d={top.distance:.3f} [{top.record.metadata['dia_id']}] {top.record.text[:90]}\n"
                  f"   its topic: {topics[top.topic].label if top.topic in topics else '-'}")
        print(f"\nevidence in top 5 for {found}/{args.questions} questions")


if __name__ == "__main__":
    main()
