"""Loaders for the shared benchmark data (LoCoMo, AG News); the data is never copied into the repo."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

_EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True)
class Turn:
    dia_id: str
    session: int
    speaker: str
    text: str
    date: str

    def record_text(self) -> str:
        """What the memory stores for a turn: speaker and text."""
        return f"{self.speaker}: {self.text}"


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    evidence: frozenset[str]
    category: int


@dataclass(frozen=True)
class Conversation:
    name: str
    turns: list[Turn]
    questions: list[Question]


def load_locomo(data_dir: str | Path = DEFAULT_DATA) -> list[Conversation]:
    """The LoCoMo conversations under ``data_dir/locomo``; questions without evidence are dropped."""
    folder = Path(data_dir) / "locomo"
    files = sorted(folder.glob("conv-*.json"))
    if not files:
        raise SystemExit(f"no LoCoMo files under {folder}; pass --data pointing at shared/data")
    out = []
    for f in files:
        d = json.loads(f.read_text())
        sessions = sorted((int(m.group(1)), k) for k in d if (m := re.fullmatch(r"session_(\d+)", k)))
        turns = []
        for num, key in sessions:
            date = d.get(f"{key}_date_time", "")
            for t in d[key]:
                text = t["text"]
                if t.get("blip_caption"):
                    text += f" [shares a photo: {t['blip_caption']}]"
                turns.append(Turn(t["dia_id"], num, t["speaker"], text, date))
        known = {t.dia_id for t in turns}
        qs = []
        for q in d["qa"]:
            # a few evidence entries are malformed ("D8:6; D9:17", "D:11:26"): parse them leniently
            ev = frozenset(f"D{a}:{b}" for e in q.get("evidence", []) for a, b in _EVIDENCE.findall(e)) & known
            if ev:
                qs.append(Question(q["question"], str(q.get("answer", "")), ev, int(q["category"])))
        out.append(Conversation(f.stem, turns, qs))
    return out


def load_ag_news(data_dir: str | Path = DEFAULT_DATA) -> tuple[list[str], list[int]]:
    """AG News test set: texts (title + description) and labels 1..4."""
    path = Path(data_dir) / "ag_news" / "test.csv"
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            texts.append(f"{row['title']}. {row['description']}")
            labels.append(int(row["label"]))
    return texts, labels
