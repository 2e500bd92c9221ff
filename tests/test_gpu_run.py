"""benchmarks/gpu_run.py: the parts a device call carries fit its limit, and a part is checked when staged."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gpu_run  # noqa: E402


def test_parts_fit_the_room_and_hold_every_file():
    sizes = {Path(f"f{i}"): s for i, s in enumerate([30, 25, 20, 18, 3, 1, 1])}
    parts = gpu_run.split_parts(sizes, 38)
    assert all(sum(sizes[f] for f in p) <= 38 for p in parts)
    assert sorted(f for p in parts for f in p) == sorted(sizes)
    assert len(parts) == 3  # 30+3+1+1+... | 25 | 20+18
    with pytest.raises(SystemExit, match="does not fit"):
        gpu_run.split_parts({Path("big"): 50}, 38)


def test_a_part_is_checked_against_its_manifest_when_staged(tmp_path, monkeypatch):
    part = tmp_path / "p1"
    (part / "data").mkdir(parents=True)
    (part / "data" / "a.txt").write_text("turns")
    files = {"data/a.txt": {"part": 1, "sha256": gpu_run._sha(part / "data" / "a.txt"), "bytes": 5},
             "models/llama.npz": {"part": 2, "sha256": "0" * 64, "bytes": 9}}
    (part / "manifest.json").write_text(json.dumps({"parts": 2, "files": files}))
    monkeypatch.setattr(gpu_run, "STAGED", tmp_path / "staged")
    monkeypatch.setattr(gpu_run, "SITE", tmp_path / "site")
    gpu_run.stage(argparse.Namespace(part=str(part)))
    assert (tmp_path / "staged" / "data" / "a.txt").read_text() == "turns"
    assert gpu_run._missing() == ["p2"]  # run refuses until every part is staged
    with pytest.raises(SystemExit, match="not staged: p2"):
        gpu_run.run(argparse.Namespace(out=str(tmp_path / "out"), steps="fill", n=10, cores=2, queries=1))
    (part / "data" / "a.txt").write_text("changed on the way")
    with pytest.raises(SystemExit, match="differs from its manifest"):
        gpu_run.stage(argparse.Namespace(part=str(part)))


def test_the_readers_model_is_cut_into_pieces_and_joined_back_checked(tmp_path):
    src = tmp_path / "model.gguf"
    src.write_bytes(bytes(range(256)) * 41)  # 10,496 bytes: pieces of 4,000, 4,000 and 2,496
    gpu_run.cut(src, tmp_path / "pieces", 4000)
    assert sorted(p.name for p in (tmp_path / "pieces").glob("model.gguf.*")) == \
        ["model.gguf.000", "model.gguf.001", "model.gguf.002"]
    joined = gpu_run.join(tmp_path / "pieces", tmp_path / "out")
    assert joined.read_bytes() == src.read_bytes()
    joined.unlink()
    (tmp_path / "pieces" / "model.gguf.002").unlink()  # a part not staged
    with pytest.raises(SystemExit, match="differs from the one packed"):
        gpu_run.join(tmp_path / "pieces", tmp_path / "out")
