"""memctl through click's runner and as the installed console script."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import Writer, wait_until
from selfmem import Memory
from selfmem.cli import cli


@pytest.fixture
def filled(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as m:
        with m.session("s1"):
            m.add_many(["rotate the grid", "flip the grid", "count the colours"], kind="note")
    return tmp_path / "m"


def test_inspect_json(filled):
    res = CliRunner().invoke(cli, ["inspect", str(filled), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["records"] == 3 and data["kinds"] == {"note": 3} and data["index"]["kind"] == "flat"


def test_search_and_add(filled):
    r = CliRunner()
    res = r.invoke(cli, ["add", str(filled), "rotate the grid twice", "--kind", "output", "--metadata",
                         '{"task": "t1"}', "--json"])
    assert res.exit_code == 0, res.output
    rid = json.loads(res.output)["id"]
    res = r.invoke(cli, ["search", str(filled), "rotate grid twice", "-k", "2", "--json"])
    hits = json.loads(res.output)
    assert res.exit_code == 0 and len(hits) == 2 and hits[0]["record"]["id"] == rid
    res = r.invoke(cli, ["search", str(filled), "grid", "--kind", "output"])
    assert res.exit_code == 0 and "rotate the grid twice" in res.output


def test_errors_are_one_line_with_distinct_exit_codes(tmp_path, filled):
    from selfmem import InvalidInputError

    r = CliRunner()
    res = r.invoke(cli, ["inspect", str(tmp_path / "nope")])
    assert res.exit_code == 6 and "no memory at" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "nope").exists()
    res = r.invoke(cli, ["add", str(filled), "x", "--kind", "bogus"])
    assert res.exit_code == 6 and "unknown kind" in res.output
    res = r.invoke(cli, ["add", str(filled), "x", "--metadata", "{bad"])
    assert res.exit_code == 2
    res = r.invoke(cli, ["inspect", str(filled), "record", "999"])
    assert res.exit_code == 5 and res.output.count("\n") == 1 and "no record with id 999" in res.output
    res = r.invoke(cli, ["--debug", "inspect", str(tmp_path / "nope")])  # --debug: the exception itself
    assert res.exit_code == 1 and isinstance(res.exception, InvalidInputError)


def test_rebuild(filled):
    res = CliRunner().invoke(cli, ["rebuild", str(filled), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["size"] == 3
    res = CliRunner().invoke(cli, ["rebuild", str(filled), "--reembed", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"kind": "flat", "size": 3, "dim": 64, "mode": "general"}


def test_console_script_installed(filled):
    local = Path(sys.executable).with_name("memctl")
    exe = str(local) if local.exists() else shutil.which("memctl")
    assert exe, "the memctl console script is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "inspect" in out and "search" in out
    out = subprocess.run([exe, "inspect", str(filled)], capture_output=True, text=True, check=True).stdout
    assert "records    3" in out
    # memctl ends with os._exit once a command is done: its output is flushed and its exit code kept
    res = subprocess.run([exe, "inspect", str(filled), "--json"], capture_output=True, text=True)
    assert res.returncode == 0 and json.loads(res.stdout)["records"] == 3
    res = subprocess.run([exe, "inspect", str(filled / "nope")], capture_output=True, text=True)
    assert res.returncode == 6 and res.stderr.count("\n") == 1 and "no memory at" in res.stderr
    res = subprocess.run([exe, "inspect"], capture_output=True, text=True)
    assert res.returncode == 2 and "Missing argument" in res.stderr


def test_topics_command(tmp_path, hash_config):
    with Memory(tmp_path / "t", hash_config, progress=False) as m:
        m.add_many([f"{w} {w} note {i}" for i in range(30) for w in ("apple", "engine")][:60])
    r = CliRunner()
    res = r.invoke(cli, ["topics", str(tmp_path / "t"), "--json"])
    assert res.exit_code == 0, res.output
    nodes = json.loads(res.stdout)
    assert nodes and sum(n["size"] for n in nodes if n["level"] == 0) == 60
    res = r.invoke(cli, ["topics", str(tmp_path / "t")])
    assert res.exit_code == 0 and res.stdout.startswith("[")
    res = r.invoke(cli, ["search", str(tmp_path / "t"), "apple", "--mode", "keyword", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["keyword"] > 0


def test_import_is_all_or_nothing(tmp_path, hash_config):
    with Memory(tmp_path / "i", hash_config):
        pass
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "first", "kind": "task", "metadata": {"a": 1}}\n\n{"text": "second"}\n')
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbroken \xff\xfe line\n")
    r = CliRunner()
    res = r.invoke(cli, ["import", str(tmp_path / "i"), str(bad)])
    assert res.exit_code == 6 and "bad.txt:2: invalid UTF-8" in res.output
    res = r.invoke(cli, ["import", str(tmp_path / "i"), str(tmp_path / "missing.txt")])
    assert res.exit_code == 6 and "cannot read" in res.output
    with Memory(tmp_path / "i") as m:
        assert len(m) == 0
    res = r.invoke(cli, ["import", str(tmp_path / "i"), str(good), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["imported"] == 2
    with Memory(tmp_path / "i") as m:
        assert m.get(1).kind == "task" and m.get(1).metadata == {"a": 1} and m.get(2).kind == "note"


def test_inspect_and_search_while_a_writer_holds_the_memory(tmp_path):
    with Writer(tmp_path / "w", add=["held open by a writer", "second note"]):
        r = CliRunner()

        def inspected() -> int:
            res = r.invoke(cli, ["inspect", str(tmp_path / "w"), "--json"])
            assert res.exit_code == 0, res.output
            return int(json.loads(res.stdout)["records"])

        # the writer publishes its state for readers every few seconds (view_interval)
        wait_until(lambda: inspected() == 2, 15, "memctl inspect seeing the writer's 2 records", interval=0.2)
        res = r.invoke(cli, ["search", str(tmp_path / "w"), "writer", "--json"])
        assert res.exit_code == 0 and json.loads(res.stdout)[0]["record"]["text"] == "held open by a writer"
        res = r.invoke(cli, ["add", str(tmp_path / "w"), "x"])
        assert res.exit_code == 4 and "another process" in res.output
