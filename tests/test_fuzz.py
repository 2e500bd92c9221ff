"""Fuzzing the public API and memctl: every failure is a SelfmemError (or a click usage error), never a raw one."""

from __future__ import annotations

import inspect
import os
import warnings

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfmem import Memory, SelfmemError
from selfmem.cli import cli
from selfmem.cli._common import EXIT_CODES
from helpers import hash_cfg

# the same examples on every run (CI must not fail by chance); SELFMEM_FUZZ_EXAMPLES=1000 digs deeper
EXAMPLES = int(os.environ.get("SELFMEM_FUZZ_EXAMPLES", "30"))
CFG = hash_cfg(32, background=False)
ODD = ["\ud800", "", " ", "memory:1", "topic:0", "session:s", "task:x", "FOLLOWS", "dense", "\x00", "$gt", "a..b"]
ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=5),
                st.sampled_from(ODD), st.binary(max_size=3), st.lists(st.integers(-3, 40), max_size=3),
                st.dictionaries(st.text(max_size=2), st.one_of(st.integers(), st.text(max_size=2)), max_size=2),
                st.just(float("nan")), st.lists(st.sampled_from(ODD), max_size=2))

# each public call with valid arguments; the test replaces one argument at a time with anything
CALLS = {
    "add": ("add", dict(text="a note", kind="note", metadata=None, session=None, importance=1.0, parents=(),
                        own_embedding=None, created_at=None)),
    "add_many": ("add_many", dict(texts=["a", "b"], kind="note", metadata=None, session=None, importance=1.0,
                                  parents=None, own_embedding=None, progress=False, created_at=None)),
    "get": ("get", dict(id=1)),
    "delete": ("delete", dict(ids=[10**9])),
    "search": ("search", dict(query="grid", k=5, kinds=None, sessions=None, where=None, since=None, until=None,
                              max_distance=None, mode=None, expand=None)),
    "enrich": ("enrich", dict(prompt="grid", k=3, budget_tokens=None, mark_used=False, expand=None, where=None)),
    "topic": ("topic", dict(id=0)),
    "neighbours": ("neighbours", dict(node=1, rel=None, direction="both", depth=1, limit=10)),
    "path": ("path", dict(a=1, b=2, max_depth=3, rel=None)),
    "subgraph": ("subgraph", dict(nodes=[1, 2], depth=1, rel=None, limit=10)),
    "session": ("session", dict(name="s")),
    "rebuild": ("rebuild", dict(reembed=False)),
}
CASES = [(name, arg) for name, (_, kw) in CALLS.items() for arg in kw]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    with Memory(tmp_path_factory.mktemp("fuzz") / "m", CFG) as mem:
        mem.add_many([f"note {i} about the grid" for i in range(30)], session="s")
        yield mem


@pytest.mark.parametrize("name,arg", CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_public_calls_raise_only_selfmem_errors(fuzzed, name, arg):
    method, valid = CALLS[name]
    raw: dict = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(ANY)
    def run(value):
        kwargs = dict(valid, **{arg: value})
        first = next(iter(inspect.signature(getattr(fuzzed, method)).parameters.values()))
        positional = [kwargs.pop(first.name)] if first.kind is first.POSITIONAL_OR_KEYWORD else []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = getattr(fuzzed, method)(*positional, **kwargs)
                if name == "session":
                    out.__enter__()
            except SelfmemError:
                pass
            except Exception as exc:  # noqa: BLE001 - collected, then reported by the assertion below
                raw.setdefault((type(exc).__name__, str(exc)[:80]), value)

    run()
    assert not raw, raw
    assert fuzzed.search("grid", k=1)  # still a working memory


USER_EXITS = {0, 2} | {code for _, code in EXIT_CODES}  # never 70 (internal error)
ARGS = st.one_of(st.text(max_size=6), st.sampled_from(
    ["--json", "-k", "0", "-1", "99999999999999999999", "--kind", "note", "--mode", "dense", "--rel", "FOLLOWS",
     "--depth", "9", "topic:x", "memory:1", "1", "\x00", "--metadata", "{", "[]", "--members", "--reembed",
     "--session", "s", "--direction", "up", "--format", "neo4j", "parquet", "--uri", "nope", "PATH", "PATH/sub",
     "record", "topic", "sessions", "--top", "--repair", "--out"]))


@pytest.mark.parametrize("command", ["inspect", "search", "topics", "add", "import", "rebuild", "graph", "export",
                                     "doctor"])
def test_memctl_never_shows_a_traceback(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # random relative paths (memctl add makes memories) land here, not in the repo
    with Memory(tmp_path / "m", CFG) as mem:
        mem.add_many([f"note {i} about the grid" for i in range(10)], session="s")
    runner = CliRunner()
    bad: dict = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(ARGS, max_size=5))
    def run(args):
        args = [a.replace("PATH", str(tmp_path / "m")) for a in args]
        res = runner.invoke(cli, [command, *args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            bad.setdefault((type(res.exception).__name__, str(res.exception)[:80]), args)
        elif res.exit_code not in USER_EXITS:
            bad.setdefault(("exit", res.exit_code), args)

    run()
    assert not bad, bad
