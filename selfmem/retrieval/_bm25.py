"""The tokenizer shared by the BM25 keyword index, c-TF-IDF labels and the benchmarks."""

from __future__ import annotations

import re

__all__ = ["STOP_WORDS", "tokenize"]

_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an the and or but if of to in on at for with by from as is are was were be been being it its this that "
    "these those i you he she we they me him her us them my your his our their what which who whom when where "
    "why how do does did have has had not no so than too very can will just s t don should now".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words without English stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
