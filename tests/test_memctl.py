"""memctl for maintenance: inspect (overview, record, topic, sessions), doctor, export/import, map."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from selfmem import EmbeddingConfig, Memory, doctor
from selfmem.cli import cli
from helpers import Writer, hash_cfg

THEMES = ("alpha rotation of the grid", "beta colour fill region", "gamma count objects", "delta mirror axis")
DUAL = hash_cfg(own=32, own_min_fit=50)


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


@pytest.fixture
def sessions12(tmp_path, hash_config) -> Path:
    """12 sessions s1..s12 (text order would put s10 after s1), 4 themes, one parent link."""
    path = tmp_path / "m"
    with Memory(path, hash_config.replace(background=False), progress=False) as m:  # refits inline: deterministic
        for s in range(1, 13):
            with m.session(f"s{s}"):
                m.add_many([f"{THEMES[i % 4]} note {s}-{i}" for i in range(20)],
                           kind=["task" if i == 0 else "output" for i in range(20)])
        m.add("derived from the first note", kind="note", parents=[1], session="s1")
        m.rebuild()  # a well-kept memory: topics labelled, none provisional
    return path


def test_inspect_overview_natural_order_top_n_and_json(sessions12):
    code, out = run("inspect", str(sessions12), "--top", "3")
    assert code == 0, out
    line = next(x for x in out.splitlines() if x.strip().startswith("sessions"))
    assert line.strip() == (f"sessions 12: s1 21, s2 20, s3 20, … and 9 more (memctl inspect {sessions12} sessions)")
    for heading in ("embedder", "index      flat", "topics     level 0:", "graph", "disk", "rebuilt    20",
                    "read view", "health     ok"):
        assert heading in out, heading
    code, out = run("inspect", str(sessions12), "--json")
    data = json.loads(out)
    assert list(data["sessions"])[:3] == ["s1", "s2", "s3"] and list(data["sessions"])[-1] == "s12"
    assert data["records"] == 241 and data["topic_levels"]["0"] >= 2 and data["view"]["records"] == 241
    assert data["disk"]["memory.duckdb"] > 0 and "view/" in data["disk"] and data["health"] == []
    assert data["last_rebuild"]["records"] == 241 and data["last_rebuild"]["added_since"] == 0


def test_inspect_record_topic_and_sessions(sessions12):
    code, out = run("inspect", str(sessions12), "record", "241")
    assert code == 0, out
    assert "derived from the first note" in out and "parents    [1]" in out and "DERIVED_FROM" in out
    assert "topic      [" in out
    code, out = run("inspect", str(sessions12), "record", "241", "--json")
    data = json.loads(out)
    assert data["record"]["parents"] == [1] and data["topic_path"] and data["neighbours"]
    topic = data["topic_path"][-1]["id"]
    code, out = run("inspect", str(sessions12), "topic", str(topic), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["topic"]["id"] == topic and data["topic"]["size"] >= 1 and len(data["samples"]) <= 5
    code, out = run("inspect", str(sessions12), "sessions")
    assert code == 0 and [x.split()[0] for x in out.splitlines()[1:4]] == ["s1", "s2", "s3"]
    assert out.splitlines()[-1].split()[0] == "s12"
    assert run("inspect", str(sessions12), "topic", "987654")[0] == 5
    assert run("inspect", str(sessions12), "record", "x")[0] == 6
    assert run("inspect", str(sessions12), "sessions", "3")[0] == 2


def test_health_warnings_name_their_fix_and_rebuild_clears_them(tmp_path):
    cfg = DUAL.replace(embedding=EmbeddingConfig(general="hash:64", own="hash:32", mode="dual", own_min_fit=50,
                                                 own_refit_growth=0))
    path = tmp_path / "h"
    with Memory(path, cfg.replace(background=False), progress=False) as m:
        m.add_many([f"{THEMES[i % 4]} first {i}" for i in range(60)])
        m.wait()
        m.add_many([f"{THEMES[i % 4]} later {i}" for i in range(600)])
    with Memory(path, read_only=True) as m:
        health = m.stats().health
    assert any(f.part == "whitening" and "fitted on 50 of 660" in f.message  # the first own_min_fit records and f.fix == f"memctl rebuild {path}"
               for f in health), health
    assert any(f.part == "topics" and "provisional" in f.message for f in health), health  # fitted at 60
    code, out = run("inspect", str(path))
    assert "warning    [whitening]" in out and f"fix: memctl rebuild {path}" in out
    assert run("rebuild", str(path))[0] == 0
    with Memory(path, read_only=True) as m:
        stats = m.stats()
    assert not stats.health
    assert stats.last_rebuild["records"] == 660 and stats.last_rebuild["added_since"] == 0


def test_doctor_finds_what_disagrees_and_repairs_only_that(sessions12):
    assert doctor(sessions12).healthy
    code, out = run("doctor", str(sessions12))
    assert code == 0 and out.strip().endswith("healthy")
    (sessions12 / "keywords.npz").unlink()
    data = bytearray((sessions12 / "index.faiss").read_bytes())
    data[-50] ^= 0xFF
    (sessions12 / "index.faiss").write_bytes(bytes(data))
    manifest = json.loads((sessions12 / "view" / "manifest.json").read_text())
    (sessions12 / "view" / manifest["tables"]["edges"]).unlink()
    import duckdb

    con = duckdb.connect(str(sessions12 / "memory.duckdb"))
    con.execute("DELETE FROM edges WHERE rel = 'FOLLOWS' AND src = 'memory:5'")
    con.close()
    topics_before = (sessions12 / "topics.npz").read_bytes()
    code, out = run("doctor", str(sessions12), "--json")
    assert code == 3
    found = {(p["part"], p["message"].split(" ")[0]) for p in json.loads(out)["problems"]}
    assert {p for p, _ in found} == {"index", "keywords", "graph", "read view"}, found
    code, out = run("doctor", str(sessions12), "--repair")
    assert code == 0, out
    assert "repaired   vector index, keyword index, knowledge graph, read view" in out and out.strip().endswith("healthy")
    assert (sessions12 / "topics.npz").read_bytes() == topics_before  # not wrong, not rebuilt
    with Memory(sessions12, read_only=True) as m:
        assert m.neighbours(5, ["FOLLOWS"], direction="out").keys == ("memory:5", "memory:4")


def test_doctor_refuses_a_memory_a_writer_holds(sessions12):
    from selfmem import MemoryLockedError

    with Memory(sessions12) as m:
        with pytest.raises(MemoryLockedError):
            doctor(sessions12)
        assert m.stats().records == 241
    with Writer(sessions12, config=None):
        code, out = run("doctor", str(sessions12))
        assert code == 4 and "another process" in out


def test_export_import_round_trip(tmp_path, sessions12, hash_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run("export", str(sessions12), "--json")
    assert code == 0, out
    first = tmp_path / "m.jsonl"
    assert json.loads(out) == {"exported": 241, "out": str(first), "format": "jsonl", "bytes": first.stat().st_size}
    with Memory(tmp_path / "copy", hash_config):
        pass
    code, out = run("import", str(tmp_path / "copy"), str(first), "--json")
    assert code == 0 and json.loads(out)["imported"] == 241
    assert run("export", str(tmp_path / "copy"), "--out", str(tmp_path / "second.jsonl"))[0] == 0
    a = [json.loads(x) for x in first.read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "second.jsonl").read_text().splitlines()]
    same = ("text", "kind", "metadata", "session", "created_at", "importance", "key")
    assert [{k: r[k] for k in same} for r in a] == [{k: r[k] for k in same} for r in b]
    new_of = {ra["id"]: rb["id"] for ra, rb in zip(a, b)}
    assert [[new_of[p] for p in r["parents"]] for r in a] == [r["parents"] for r in b]
    assert a[-1]["parents"] == [1] and a[0]["topic_path"]
    code, out = run("import", str(tmp_path / "copy"), str(first))  # keys: none here, so it adds again
    assert code == 0
    keyed = tmp_path / "keyed.jsonl"
    keyed.write_text("\n".join(json.dumps({**r, "key": f"k{r['id']}"}) for r in a[:5]) + "\n")
    assert run("import", str(tmp_path / "copy"), str(keyed))[0] == 0
    assert run("import", str(tmp_path / "copy"), str(keyed))[0] == 0  # a re-run adds nothing
    with Memory(tmp_path / "copy", read_only=True) as m:
        assert len(m) == 241 * 2 + 5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": "x", "colour": 1}\n')
    code, out = run("import", str(tmp_path / "copy"), str(bad))
    assert code == 6 and "bad.jsonl:2: unknown fields ['colour']" in out


def test_export_parquet_has_the_vectors(tmp_path, sessions12):
    import pyarrow.parquet as pq

    out = tmp_path / "m.parquet"
    assert run("export", str(sessions12), "--format", "parquet", "--out", str(out))[0] == 0
    table = pq.read_table(out)
    assert table.num_rows == 241 and {"general", "topic_path", "session"} <= set(table.column_names)
    with Memory(sessions12, read_only=True) as m:
        rid = 17
        want = m._state.store.vectors("general", [rid])[1][0]
    got = np.asarray(table.column("general").to_pylist()[table.column("id").to_pylist().index(rid)], np.float32)
    np.testing.assert_array_equal(got, want)
    assert run("export", str(sessions12), "--format", "parquet", "--out", str(tmp_path))[0] == 2  # a directory


def test_map_writes_a_standalone_page(tmp_path, sessions12):
    code, out = run("map", str(sessions12), "--out", str(tmp_path / "map.html"), "--max-points", "100", "--json")
    assert code == 0, out
    info = json.loads(out)
    assert info["drawn"] == 100 and info["total"] == 241 and info["method"] == "umap" and info["topics"] >= 1
    page = (tmp_path / "map.html").read_text()
    assert "100 of 241 memories drawn" in page and "selfmem-search" in page and "scattergl" in page
    assert "<script src=" not in page  # plotly.js is embedded: no server, no network
    assert run("map", str(sessions12), "--out", str(tmp_path / "missing" / "m.html"))[0] == 6


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (the test set-up the map test needs)."""
    exe = "/usr/bin/chromium"
    if not os.path.exists(exe):
        import shutil

        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        if sudo and (shutil.which("sudo") is None or subprocess.run(sudo + ["true"], capture_output=True).returncode):
            pytest.skip("Debian's chromium is missing and installing it needs root: apt-get install chromium")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            res = subprocess.run(sudo + cmd, capture_output=True, text=True, env=env, timeout=900)
            assert res.returncode == 0, f"could not install chromium ({' '.join(cmd)}): {res.stderr[-500:]}"
    return exe


def test_map_draws_points_in_headless_chromium(tmp_path, sessions12, chromium):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    html = tmp_path / "map.html"
    code, out = run("map", str(sessions12), "--out", str(html), "--json")
    assert code == 0, out
    drawn = json.loads(out)["drawn"]
    with Memory(sessions12, read_only=True) as m:
        texts = m.points().texts
    want = sum("gamma" in t.lower() for t in texts)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(html.as_uri())
            page.wait_for_function("document.getElementById('selfmem-map') && "
                                   "document.getElementById('selfmem-map')._fullLayout !== undefined", timeout=60000)
            page.wait_for_timeout(500)
            in_plot = page.evaluate("document.getElementById('selfmem-map')._fullData"
                                    ".filter(t => t.meta === 'points').reduce((n, t) => n + t.x.length, 0)")
            assert in_plot == drawn == 241
            assert page.evaluate("document.querySelectorAll('#selfmem-map canvas').length") >= 1
            shot = tmp_path / "map.png"
            page.screenshot(path=str(shot))
            page.fill("#selfmem-search", "gamma")
            page.wait_for_timeout(300)
            assert int(page.get_attribute("#selfmem-map", "data-matches")) == want > 0
            assert page.text_content("#selfmem-count") == f"{want} of {drawn} drawn memories match"
            page.screenshot(path=str(tmp_path / "map-search.png"))
        finally:
            browser.close()
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    plot = img[100:850, 50:950]  # the plot area (legend and search box outside)
    coloured = (plot.max(axis=2) - plot.min(axis=2)) > 60  # saturated pixels: markers, not text or grid
    assert coloured.sum() > 241 * 4, coloured.sum()  # every marker is several pixels; a blank plot has none


def test_map_shows_the_entity_layer_as_a_toggle_in_headless_chromium(tmp_path, hash_config, chromium):
    """The legend's entities entry: hidden at first, shown by a click (names shared by 2 to 5 memories, each
    joined to its memories); the search box still works beside it."""
    from playwright.sync_api import sync_playwright

    from selfmem import memory_map
    from selfmem.viz._map import map_figure

    names = ["Biscuit", "Oscar", "Tahoe", "Zanzibar"]
    texts = [f"{names[i % 4]} came up in note {i} about {('bread', 'gardens', 'boats')[i % 3]}" for i in range(16)]
    texts += [f"plain line {i}" for i in range(24)]
    with Memory(tmp_path / "m", hash_config.replace(background=False), progress=False) as m:
        m.add_many(texts, kind="note")
        fig, _ = map_figure(m, progress=False)
        memory_map(m, tmp_path / "map.html", progress=False)
    group = [t for t in fig.data if t.legendgroup == "entities"]
    assert len(group) == 2 and all(t.visible == "legendonly" for t in group)
    shown = set(group[1].text)
    assert {"biscuit", "oscar", "tahoe", "zanzibar"} <= shown and "bread" not in shown  # 6 of 40 > 5: a hub
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                                    "--enable-unsafe-swiftshader"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((tmp_path / "map.html").as_uri())
            page.wait_for_function("document.getElementById('selfmem-map') && "
                                   "document.getElementById('selfmem-map')._fullLayout !== undefined", timeout=60000)
            visible = ("document.getElementById('selfmem-map')._fullData.filter(t => t.legendgroup === 'entities')"
                       ".map(t => t.visible)")
            assert page.evaluate(visible) == ["legendonly", "legendonly"]
            page.locator("g.traces", has_text="entities (").locator("rect.legendtoggle").click()
            page.wait_for_timeout(1000)  # a legend click acts after Plotly's double-click delay (300 ms)
            assert page.evaluate(visible) == [True, True]
            page.fill("#selfmem-search", "oscar")
            page.wait_for_timeout(300)
            assert int(page.get_attribute("#selfmem-map", "data-matches")) == 4 and not errors
        finally:
            browser.close()
