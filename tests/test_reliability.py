"""Reliability: read-only snapshots beside a live writer, SIGKILL crash trials, property tests, no pickle."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from selfmem import Memory, ReadOnlyError, SearchConfig, TopicsConfig
from helpers import Writer, hash_cfg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from crash import run_trial  # noqa: E402

def test_read_only_snapshot_while_writer_runs(tmp_path):
    cfg = hash_cfg(topics=TopicsConfig(min_records=1000000))
    with Memory(tmp_path / "m", cfg, progress=False) as m:
        m.add_many([f"live note -1 part {j}" for j in range(5)])
    with Writer(tmp_path / "m", config=None, mode="loop") as w:
        counts = []
        deadline = time.time() + 30
        while len(counts) < 3 or (counts[-1] == counts[0] and time.time() < deadline):
            with Memory(tmp_path / "m", read_only=True, progress=False) as ro:
                # the writer's published view is read in place: nothing is copied
                assert all(p.parent.name == ".readers" for p in ro._state.private)
                n = len(ro)
                assert n % 5 == 0 and n > 0  # add_many is atomic: never a partial batch
                assert ro.stats().index["size"] == n
                hit = ro.search("live note -1 part 3", k=1, mode="keyword")[0]
                assert hit.record.text == "live note -1 part 3"
                with pytest.raises(ReadOnlyError):
                    ro.add("not allowed")
                with pytest.raises(ReadOnlyError):
                    ro.delete(1)
                with pytest.raises(ReadOnlyError):
                    ro.enrich("live note")
                assert ro.enrich("live note", mark_used=False).hits
                counts.append(n)
            time.sleep(0.3)
        assert counts == sorted(counts) and counts[-1] > counts[0]
        assert w.proc.poll() is None  # the writer was never disturbed


def test_read_only_needs_an_existing_memory(tmp_path):
    from selfmem import InvalidInputError

    with pytest.raises(InvalidInputError):
        Memory(tmp_path / "none", read_only=True)
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sigkill_crash_trials(tmp_path, seed):
    """A writer killed with SIGKILL at a random point loses no acknowledged add and resurrects no delete."""
    result = run_trial(tmp_path / f"m{seed}", seed, max_delay=2.5)
    assert result["violations"] == [], result


def test_no_pickle_or_eval_in_the_package():
    bad = re.compile(r"import pickle|pickle\.loads?\(|(?<![.\w])eval\(|(?<![.\w])exec\(|allow_pickle=True|torch\.load\(")
    offenders = [str(p) for p in (ROOT / "selfmem").rglob("*.py") if bad.search(p.read_text())]
    assert offenders == []


# near-duplicate removal is off here: with 32 hash buckets two one-word texts can get identical vectors,
# and then one legitimately stands in for the other (dedupe is tested in test_search.py)
CFG = hash_cfg(32, topics=TopicsConfig(min_records=12), search=SearchConfig(dedupe=1.0))
WORDS = st.lists(st.sampled_from("grid red blue rotate flip count cell row column mirror shape".split()),
                 min_size=1, max_size=6).map(" ".join)


class MemoryMachine(RuleBasedStateMachine):
    """Random add / delete / search / reopen / rebuild sequences against a model of what must be there."""

    def __init__(self):
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp()) / "m"
        self.mem = Memory(self.dir, CFG, progress=False)
        self.model: dict[int, str] = {}

    @rule(texts=st.lists(WORDS, min_size=1, max_size=8))
    def add(self, texts):
        for i, t in zip(self.mem.add_many(texts), texts):
            self.model[i] = t

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data):
        rid = data.draw(st.sampled_from(sorted(self.model)))
        self.mem.delete(rid)
        del self.model[rid]

    @rule()
    def reopen(self):
        self.mem.close()
        self.mem = Memory(self.dir, progress=False)

    @rule()
    def rebuild(self):
        self.mem.rebuild()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def found_by_own_text(self, data):
        rid = data.draw(st.sampled_from(sorted(self.model)))
        hits = self.mem.search(self.model[rid], k=50, mode="dense")
        same = {i for i, t in self.model.items() if t == self.model[rid]}
        assert {h.record.id for h in hits} & same

    @invariant()
    def counts_agree(self):
        stats = self.mem.stats()
        assert stats.records == len(self.model) == stats.index["size"] == len(self.mem._state.keywords.index)
        if self.mem.topics():
            assert sum(t.size for t in self.mem.topics() if t.level == 0) == len(self.model)

    def teardown(self):
        self.mem.close()


MemoryMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=12, deadline=None, derandomize=True,
                                           suppress_health_check=[HealthCheck.too_slow])
TestMemoryMachine = MemoryMachine.TestCase


def test_crash_harness_reports_json(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "crash.py"), "--trials", "2", "--dir",
                          str(tmp_path), "--json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["trials"] == 2 and data["violations"] == 0
