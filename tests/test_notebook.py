"""notebooks/memory_map.ipynb is stored without outputs and runs top to bottom (nbclient) on a small memory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from selfmem import Memory

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "memory_map.ipynb"
THEMES = ("alpha rotation of the grid", "beta colour fill region", "gamma count objects", "delta mirror axis")


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch, hash_config):
    path = tmp_path / "m"
    with Memory(path, hash_config, progress=False) as m:
        for s in range(1, 11):
            m.add_many([f"{THEMES[(i + s) % 4]} note {s}-{i}" for i in range(30)], session=f"s{s}")
    monkeypatch.setenv("SELFMEM_NOTEBOOK_MEMORY", str(path))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # the venv's kernel
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"{path}: 300 memories in 10 sessions" in text and "'drawn': 300" in text
    assert "topic " in text and "keywords:" in text
    figures = [o for o in outputs if o.output_type == "display_data"]
    assert len(figures) == 4, [list(o.data) for o in figures]  # map, sunburst, sessions, subgraph
    assert all("application/vnd.plotly.v1+json" in o.data for o in figures)
