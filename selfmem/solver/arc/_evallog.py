"""The log of evaluation-set runs: every run of the ARC-AGI-1 evaluation tasks is written down, not only the best.

Design and tuning happen on the training tasks; the evaluation tasks are for reports. A number measured on
them after the design changed because of them is no longer held out, so every run that touches them
(the cross-session benchmark's session 2, the DSL probe and the ceiling with ``--split evaluation``)
appends one line to a JSON-lines log: when, which commit (and whether the tree had uncommitted changes),
the command, and what each run solved. The headline of a design is the first logged run at the commit
that froze it. A run on a tree with uncommitted changes is refused unless asked for (``allow_dirty``):
the commit would not say which design ran.

The log is ``docs/results/arc-evaluation-log.jsonl`` when the working directory is the repository (that
folder exists), else ``evaluation-log.jsonl`` in the run's output folder.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..._errors import InvalidInputError

__all__ = ["EVAL_LOG", "log_path", "design_state", "check_design", "log_evaluation"]

EVAL_LOG = Path("docs/results/arc-evaluation-log.jsonl")


def log_path(out: Path | str) -> Path:
    """Where evaluation runs are logged: the repository's log when run from its root, else beside ``out``."""
    return EVAL_LOG if EVAL_LOG.parent.is_dir() else Path(out) / "evaluation-log.jsonl"


def design_state(cwd: Path | str = ".") -> tuple[str, bool]:
    """The commit checked out in ``cwd`` and whether tracked files differ from it (``("unknown", True)`` outside
    a git checkout). Untracked files (run outputs) and results under ``docs/results`` (this log among them)
    do not count: they are not the design."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True,
                                timeout=30).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                 capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", True
    design = [line for line in changed.splitlines()  # "XY path"
              if line.strip() and not line[3:].strip().strip('"').startswith("docs/results/")]
    return commit, bool(design)


def check_design(allow_dirty: bool, cwd: Path | str = ".") -> tuple[str, bool]:
    """The design state, refusing uncommitted changes unless ``allow_dirty`` (InvalidInputError says what to do)."""
    commit, dirty = design_state(cwd)
    if dirty and not allow_dirty:
        raise InvalidInputError(
            "the evaluation tasks are run only on a committed design: commit the changes first (the log names the "
            "commit that ran), or pass --allow-dirty to run anyway (the log marks the run dirty)")
    return commit, dirty


def log_evaluation(path: Path | str, what: str, argv: Sequence[str], runs: Mapping[str, Mapping[str, Any]],
                   state: tuple[str, bool], **extra: Any) -> dict[str, Any]:
    """Append one evaluation run to the log at ``path`` and return the entry.

    Parameters
    ----------
    what : str
        Which script ran (``"bench session2"``, ``"dsl probe"``, ...).
    argv : sequence of str
        Its command-line arguments.
    runs : mapping
        Per run (e.g. ``"A"``, ``"B"``): its numbers (solved, score, Gain, lost, McNemar p, ...).
    state : (str, bool)
        The commit and whether the tree was dirty (:func:`check_design`).
    """
    entry = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": state[0],
             "dirty": state[1], "what": what, "argv": list(argv), **extra, "runs": {k: dict(v) for k, v in runs.items()}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=False) + "\n")
    return entry
