"""The knowledge graph: edges kept with the store, walks, search expansion, config, CLI and Neo4j."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from selfmem import (GraphConfig, InvalidInputError, Memory, MemoryConfig, SearchConfig,
                     RecordNotFoundError, TopicsConfig)
from selfmem.cli._app import cli
from selfmem.graph import _cypher
from helpers import hash_cfg

HASH = hash_cfg(background=False,
                    graph=GraphConfig(similar_min=0.2, similar_k=3))
WORDS = ["grid", "rotate", "colour", "mirror", "object", "count", "fill", "border", "tile", "shift"]


def texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 4)) + f" item{i}" for i in range(n)]


def stored_edges(mem: Memory, weights: bool = False) -> set[tuple]:
    """The edges kept in the edges table (SIMILAR_TO, FOLLOWS, ABOUT, SOLVES, DERIVED_FROM), read through the
    public graph export; with ``weights`` each as (src, rel, dst, weight)."""
    from selfmem.graph._build import STORED_RELS

    g = mem.to_networkx()
    return {(u, d["rel"], v, d["weight"]) if weights else (u, d["rel"], v)
            for u, v, d in g.edges(data=True) if d["rel"] in STORED_RELS}


def test_edges_are_written_with_the_records(tmp_path):
    with Memory(tmp_path / "m", HASH) as mem:
        with mem.session("s1"):
            a = mem.add("task: rotate the grid", kind="task", metadata={"task_id": "t1"})
            b = mem.add_many(["try rotate 90", "try mirror"], parents=[[a], [a]])
        c = mem.add("solution: rotate 90", kind="solution", session="s1",
                    metadata={"task_id": "t1", "solves": "t1", "verified_by": "every train pair"}, parents=[b[0]])
        edges = stored_edges(mem)
        assert (f"memory:{b[0]}", "FOLLOWS", f"memory:{a}") in edges
        assert (f"memory:{b[1]}", "FOLLOWS", f"memory:{b[0]}") in edges
        assert (f"memory:{c}", "FOLLOWS", f"memory:{b[1]}") in edges  # across add calls
        assert (f"memory:{a}", "ABOUT", "task:t1") in edges
        assert (f"memory:{c}", "SOLVES", "task:t1") in edges and (f"memory:{c}", "ABOUT", "task:t1") not in edges
        assert {(f"memory:{x}", "DERIVED_FROM", f"memory:{a}") for x in b} <= edges
        solves = [e for e in mem.neighbours("task:t1", "SOLVES").edges]
        assert [e.props for e in solves] == [{"verified_by": "every train pair"}]
        session = mem.neighbours("session:s1", "IN_SESSION")
        assert set(session.keys) == {"session:s1"} | {f"memory:{i}" for i in (a, *b, c)}


def test_similar_edges_are_bounded_and_above_the_threshold(tmp_path):
    cfg = HASH.replace(graph=GraphConfig(similar_k=2, similar_min=0.3))
    with Memory(tmp_path / "m", cfg) as mem:
        mem.add_many(texts(60))
        mem.add_many(texts(40, seed=1))
        similar = [e for e in stored_edges(mem, weights=True) if e[1] == "SIMILAR_TO"]
        per_src = Counter(e[0] for e in similar)
        assert similar and max(per_src.values()) <= 2 and min(e[3] for e in similar) >= 0.3
        # the weight is the cosine of the two index vectors
        src, _, dst, w = similar[0]
        vec = mem._state.vectors.index.vectors([int(src[7:]), int(dst[7:])])
        assert abs(float(vec[0] @ vec[1]) - w) < 1e-4


def test_delete_drops_edges_and_relinks_the_session(tmp_path):
    with Memory(tmp_path / "m", HASH) as mem:
        ids = mem.add_many(texts(6), session="s")
        mem.add("child", parents=[ids[2], ids[4]])
        mem.delete([ids[2], ids[3]])
        edges = stored_edges(mem)
        assert not any(f"memory:{ids[2]}" in (s, d) or f"memory:{ids[3]}" in (s, d) for s, _, d in edges)
        assert (f"memory:{ids[4]}", "FOLLOWS", f"memory:{ids[1]}") in edges
        assert mem._state.graph.graph.dangling() == 0
        with pytest.raises(RecordNotFoundError):
            mem.neighbours(ids[2])


def test_rebuild_recomputes_the_same_edges(tmp_path):
    with Memory(tmp_path / "m", HASH) as mem:
        ids = mem.add_many(texts(30), session="s", metadata=[{"task_id": f"t{i % 4}"} for i in range(30)])
        mem.add_many(texts(5, seed=3), session="s2", parents=[[ids[0]]] * 5)
        before = stored_edges(mem)
        mem.rebuild()
        after = stored_edges(mem)
        mem.delete(ids[0])  # a parent of five records: rebuild must not link them to it again
        mem.rebuild()
        assert mem._state.graph.graph.dangling() == 0
        assert not any(e[1] == "DERIVED_FROM" for e in stored_edges(mem))
    without_similar = {e for e in before if e[1] != "SIMILAR_TO"}
    assert without_similar == {e for e in after if e[1] != "SIMILAR_TO"}
    assert any(e[1] == "SIMILAR_TO" for e in after)


def test_a_memory_without_a_graph_gets_one_when_opened_for_writing(tmp_path):
    off = HASH.replace(graph=GraphConfig(enabled=False))
    with Memory(tmp_path / "m", off) as mem:
        mem.add_many(texts(10), session="s")
        assert stored_edges(mem) == set()
    with Memory(tmp_path / "m", HASH) as mem:
        assert any(rel == "FOLLOWS" for _, rel, _ in stored_edges(mem))


def test_topic_edges_follow_the_topic_tree(tmp_path):
    cfg = HASH.replace(topics=TopicsConfig(min_records=50, max_topics=6), graph=GraphConfig(related_min=-1.0))
    with Memory(tmp_path / "m", cfg) as mem:
        groups = [["apple", "pear", "plum", "fig"], ["lion", "wolf", "bear", "lynx"], ["oslo", "rome", "lima", "kyiv"]]
        rng = np.random.default_rng(0)
        mem.add_many([" ".join(rng.choice(groups[i % 3], 3)) + f" n{i}" for i in range(150)])
        mem.wait()
        topics = mem.topics()
        assert sum(t.level == 0 for t in topics) >= 2
        leaf = next(t for t in topics if t.level == 0 and t.size)
        member = mem.topic(leaf.id).members[0]
        sub = mem.neighbours(member, "IN_TOPIC", direction="out")
        assert sub.keys == (f"memory:{member}", f"topic:{leaf.id}")
        assert 0 < sub.edges[0].weight <= 1
        g = sub.to_networkx()  # a topic's label (its keywords) and the node type are both kept
        assert g.nodes[f"topic:{leaf.id}"]["type"] == "Topic" and g.nodes[f"topic:{leaf.id}"]["label"] == leaf.label
        inbound = mem.neighbours(f"topic:{leaf.id}", "IN_TOPIC", direction="in", limit=10_000)
        assert len(inbound.nodes) - 1 == leaf.size
        if leaf.parent is not None:
            up = mem.neighbours(f"topic:{leaf.id}", "SUBTOPIC_OF", direction="out")
            assert f"topic:{leaf.parent}" in up.keys
        related = mem.neighbours(f"topic:{leaf.id}", "RELATED_TO")
        assert len(related.nodes) > 1  # related_min=-1: every topic of the level is related (at most 5)
        path = mem.path(member, f"topic:{leaf.id}")
        assert path is not None and len(path.edges) == 1


def test_path_is_shortest_and_none_when_too_far(tmp_path):
    with Memory(tmp_path / "m", HASH.replace(graph=GraphConfig(similar_k=0))) as mem:
        ids = mem.add_many(texts(8), session="chain")
        other = mem.add("lonely note", session="elsewhere")
        p = mem.path(ids[0], ids[5], rel="FOLLOWS", max_depth=6)
        assert p.keys == tuple(f"memory:{i}" for i in ids[:6]) and len(p.edges) == 5
        assert all(e.rel == "FOLLOWS" for e in p.edges)
        assert mem.path(ids[0], ids[5], rel="FOLLOWS", max_depth=4) is None
        via_session = mem.path(ids[0], ids[5])
        assert len(via_session.edges) == 2 and via_session.keys[1] == "session:chain"
        assert mem.path(ids[0], other, rel="FOLLOWS") is None
        assert mem.path(ids[0], ids[0]).keys == (f"memory:{ids[0]}",)


def test_walk_arguments_are_validated(tmp_path):
    with Memory(tmp_path / "m", HASH) as mem:
        rid = mem.add("one", session="s")
        for bad in ("topic:x", "planet:1", "memory:", 1.5, None, -1, 2**63):
            with pytest.raises(InvalidInputError):
                mem.neighbours(bad)
        for missing in (rid + 100, "topic:99", "session:nope", "task:nope"):
            with pytest.raises(RecordNotFoundError):
                mem.neighbours(missing)
        with pytest.raises(InvalidInputError, match="unknown edge type"):
            mem.neighbours(rid, "KNOWS")
        with pytest.raises(InvalidInputError, match="direction"):
            mem.neighbours(rid, direction="up")
        with pytest.raises(InvalidInputError, match="too deep"):
            mem.neighbours(rid, depth=7)
        with pytest.raises(InvalidInputError):
            mem.subgraph([])
        with pytest.raises(InvalidInputError):
            mem.search("one", expand=["IN_TOPIC"])
        assert mem.neighbours(rid, limit=1).keys == (f"memory:{rid}", "session:s")


def test_subgraph_and_networkx(tmp_path):
    nx = pytest.importorskip("networkx")
    with Memory(tmp_path / "m", HASH.replace(graph=GraphConfig(similar_k=0))) as mem:
        ids = mem.add_many(texts(4), session="s")
        sub = mem.subgraph([ids[0], ids[2]], depth=0)
        assert set(sub.keys) == {f"memory:{ids[0]}", f"memory:{ids[2]}"} and sub.edges == ()
        sub = mem.subgraph([ids[0], ids[2]], depth=1, rel="FOLLOWS")
        g = sub.to_networkx()
        assert isinstance(g, nx.MultiDiGraph)
        assert set(g.edges(keys=True)) == {(f"memory:{ids[1]}", f"memory:{ids[0]}", "FOLLOWS"),
                                           (f"memory:{ids[2]}", f"memory:{ids[1]}", "FOLLOWS"),
                                           (f"memory:{ids[3]}", f"memory:{ids[2]}", "FOLLOWS")}
        assert g.nodes[f"memory:{ids[0]}"]["kind"] == "output"


def test_search_expansion_adds_marked_neighbours_and_keeps_k(tmp_path):
    with Memory(tmp_path / "m", HASH.replace(graph=GraphConfig(similar_k=0, expand_hits=1),
                                             search=SearchConfig(sentence_weight=0.0))) as mem:  # expansion alone
        ids = mem.add_many(["alpha beta gamma", "unrelated words here", "delta epsilon zeta"], session="s")
        task = mem.add("task about kappa lambda", kind="task", metadata={"task_id": "T"})
        sol = mem.add("answer: mu nu", kind="solution", metadata={"solves": "T"}, parents=[ids[2]])
        plain = mem.search("alpha beta gamma", k=2, expand=False)
        assert [h.record.id for h in plain][0] == ids[0] and all(h.via == () for h in plain)
        hits = mem.search("alpha beta gamma", k=2, expand=["FOLLOWS"])
        assert [h.record.id for h in hits] == [ids[0], ids[1]]
        assert hits[1].via == ("FOLLOWS",) and hits[1].expanded_from == ids[0] and hits[1].rank == 1
        listed = {h.record.id: h for h in plain}  # a neighbour already listed keeps its own scores (ties: by id)
        assert hits[1].relevance == (listed[ids[1]].relevance if ids[1] in listed else hits[0].relevance)
        hits = mem.search("task about kappa lambda", k=3, expand=["SOLVES"])
        assert hits[0].record.id == task and hits[1].record.id == sol and hits[1].via == ("ABOUT", "SOLVES")
        hits = mem.search("answer: mu nu", k=2, expand=["DERIVED_FROM"], mode="keyword")
        assert (hits[1].record.id, hits[1].via) == (ids[2], ("DERIVED_FROM",))
        # filters hold for expanded hits too
        hits = mem.search("alpha beta gamma", k=3, expand=["FOLLOWS"], kinds=["output"], sessions=["s"])
        assert all(h.record.session == "s" for h in hits)
        out = mem.enrich("alpha beta gamma", k=2, expand=["FOLLOWS"])
        assert [h.record.id for h in out.hits] == [ids[0], ids[1]]
        day = out.hits[1].record.created_at
        assert f"[2] output, session s, {day.day} {day:%B %Y}, linked to [1] by FOLLOWS (cosine distance" in out.prompt


def test_expansion_does_not_depend_on_the_list_length(tmp_path):
    with Memory(tmp_path / "m", HASH.replace(graph=GraphConfig(similar_k=0, expand=("FOLLOWS",), expand_hits=3))) as mem:
        for s in range(6):
            mem.add_many(texts(8, seed=s), session=f"s{s}")
        for q in texts(12, seed=9):
            short, long = mem.search(q, k=6), mem.search(q, k=20)
            assert [h.record.id for h in short] == [h.record.id for h in long[:6]]
            ids = [h.record.id for h in long]
            assert len(ids) == len(set(ids)) == 20
            for h in long:  # every expanded hit sits after the hit that brought it, and is its session neighbour
                if h.via:
                    assert ids.index(h.expanded_from) < ids.index(h.record.id)
                    assert abs(h.record.id - h.expanded_from) == 1


def test_expanding_a_list_of_ids_places_the_neighbours_as_the_search_does(tmp_path):
    """expand_ids (the feedback list's expansion) orders a ranked list of ids as the search's expansion orders
    its hits: the same ids in the same order, for every query."""
    from selfmem.memory._graph_api import expand_ids

    cfg = HASH.replace(graph=GraphConfig(similar_k=0, expand=("FOLLOWS",), expand_hits=3),
                       search=SearchConfig(replies=False, sentence_weight=0.0))
    with Memory(tmp_path / "m", cfg) as mem:
        for s in range(6):
            mem.add_many(texts(8, seed=s), session=f"s{s}")
        graph = mem._state.graph.graph
        for q in texts(12, seed=9):
            plain = [h.record.id for h in mem.search(q, k=20, expand=False)]
            expanded = [h.record.id for h in mem.search(q, k=12)]
            assert expand_ids(plain, graph, ("FOLLOWS",), 3, None)[:12] == expanded
            assert expand_ids(plain, graph, (), 3, None) == plain


def test_expansion_reads_only_the_neighbours_the_search_has_not_read(tmp_path, monkeypatch):
    """Neighbours among the candidates come from the search's own read; the others from the store: the hits
    are the same as when every neighbour is read again."""
    from selfmem.memory import _graph_api

    cfg = HASH.replace(graph=GraphConfig(similar_k=0, expand=("FOLLOWS",), expand_hits=3),
                       search=HASH.search.__class__(candidates=5))  # few candidates: most neighbours are not among them
    with Memory(tmp_path / "m", cfg) as mem:
        for s in range(10):
            mem.add_many(texts(30, seed=s), session=f"s{s}")
        queries = texts(15, seed=11)
        got = [mem.search(q, k=8) for q in queries]
        reads: list[int] = []
        store_get = mem._state.store.get
        monkeypatch.setattr(mem._state.store, "get", lambda ids: reads.append(len(ids)) or store_get(ids))
        real = _graph_api.expand
        monkeypatch.setattr(_graph_api, "expand", lambda *a, **kw: real(*a[:10]))  # without the search's records
        again = [mem.search(q, k=8) for q in queries]
    assert [[(h.record, h.score, h.via, h.expanded_from, h.topic) for h in hits] for hits in got] == \
        [[(h.record, h.score, h.via, h.expanded_from, h.topic) for h in hits] for hits in again]
    assert any(h.via for hits in got for h in hits) and len(reads) > len(queries)  # expansions read again


def test_graph_config_round_trip_keeps_the_password_out(tmp_path):
    cfg = HASH.replace(graph=GraphConfig(neo4j_password="s3cret", expand=["FOLLOWS", "SOLVES"]))
    assert "s3cret" not in repr(cfg)
    with Memory(tmp_path / "m", cfg):
        pass
    text = (tmp_path / "m" / "config.toml").read_text()
    assert "s3cret" not in text and 'expand = ["FOLLOWS", "SOLVES"]' in text
    assert MemoryConfig.read(tmp_path / "m" / "config.toml").graph.expand == ("FOLLOWS", "SOLVES")
    for bad in (dict(expand=["IN_TOPIC"]), dict(similar_k=-1), dict(mirror="redis"), dict(similar_min=2.0)):
        with pytest.raises(Exception, match="graph"):
            GraphConfig(**bad)


def test_mirror_to_an_unreachable_neo4j_keeps_local_writes_and_journals_them(tmp_path, monkeypatch):
    pytest.importorskip("neo4j")
    monkeypatch.setenv("SELFMEM_NEO4J_URI", "bolt://127.0.0.1:9")  # nothing listens on the discard port
    cfg = HASH.replace(graph=GraphConfig(mirror="neo4j"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Memory(tmp_path / "m", cfg) as mem:
            ids = mem.add_many(texts(3), session="s")
            mem.delete(ids[0])
            assert len(mem) == 2
            pending = mem._state.graph.graph.pending()
            assert [op for _, op, _ in pending][-2:] == ["upsert", "delete"]
            assert any("Neo4j mirror is behind" in n for n in mem.stats().notes)
    assert any("unreachable" in str(w.message) for w in caught)
    with Memory(tmp_path / "m", HASH) as mem:  # the journal survives a reopen
        assert len(mem._state.graph.graph.pending()) >= 2


def test_cli_graph_and_export_errors(tmp_path, monkeypatch):
    pytest.importorskip("neo4j")
    path = tmp_path / "m"
    with Memory(path, HASH) as mem:
        rid = mem.add_many(texts(3), session="s")[1]
    runner = CliRunner()
    res = runner.invoke(cli, ["graph", str(path), str(rid), "--rel", "FOLLOWS", "--json"])
    assert res.exit_code == 0, res.output
    assert {n["key"] for n in json.loads(res.output)["nodes"]} == {f"memory:{rid - 1}", f"memory:{rid}", f"memory:{rid + 1}"}
    res = runner.invoke(cli, ["graph", str(path), "topic:x"])
    assert res.exit_code == 6 and "topic:12" in res.output
    monkeypatch.setenv("SELFMEM_NEO4J_PASSWORD", "hunter2")
    res = runner.invoke(cli, ["export", str(path), "--format", "neo4j", "--uri", "bolt://127.0.0.1:9"])
    assert res.exit_code == 1 and "unreachable" in res.output and "hunter2" not in res.output
    assert "Traceback" not in res.output


# -- Cypher checked by Neo4j's own parser -------------------------------------------------------
NPM_PACKAGE = "@neo4j-cypher/language-support@2.0.0-next.38"


@pytest.fixture(scope="session")
def cypher_linter(tmp_path_factory) -> Path:
    """Neo4j's Cypher parser from npm, installed once per machine (~/.cache/selfmem/cypher-lint)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to lint Cypher with @neo4j-cypher/language-support")
    home = Path(os.environ.get("SELFMEM_CACHE", Path.home() / ".cache" / "selfmem")) / "cypher-lint"
    if not (home / "node_modules" / "@neo4j-cypher" / "language-support").is_dir():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(home), NPM_PACKAGE],
                       check=True, capture_output=True, timeout=600)
    script = home / "lint.mjs"
    script.write_text(
        "import { lintCypherQuery } from '@neo4j-cypher/language-support';\n"
        "let data = ''; process.stdin.on('data', c => data += c); process.stdin.on('end', () => {\n"
        "  const { queries, parameters } = JSON.parse(data);\n"
        "  const out = queries.map(q => lintCypherQuery(q, { parameters }).diagnostics\n"
        "    .filter(d => d.severity === 1).map(d => d.message));\n"
        "  process.stdout.write(JSON.stringify(out)); });\n")
    return script


def lint(script: Path, queries: list[str]) -> list[list[str]]:
    params = {"rows": [{"id": 1}], "ids": [1], "id": 1, "task": "t", "topic": 1}
    out = subprocess.run(["node", str(script)], input=json.dumps({"queries": queries, "parameters": params}),
                         capture_output=True, text=True, check=True, cwd=script.parent, timeout=120)
    return json.loads(out.stdout)


def test_every_cypher_statement_parses(cypher_linter):
    errors = lint(cypher_linter, list(_cypher.ALL_STATEMENTS))
    assert len(errors) == len(_cypher.ALL_STATEMENTS)
    bad = {q: e for q, e in zip(_cypher.ALL_STATEMENTS, errors) if e}
    assert not bad, bad


def test_the_linter_catches_a_broken_merge(cypher_linter):
    broken = _cypher.UPSERT["Memory"].replace("{id: row.id}", "{id: row.id")
    [errors] = lint(cypher_linter, [broken])
    assert any("Invalid input" in e for e in errors), errors


# -- a live Neo4j server (set SELFMEM_NEO4J_URI, _USER, _PASSWORD) --------------------------------
live = pytest.mark.skipif(not os.environ.get("SELFMEM_NEO4J_URI"),
                          reason="no Neo4j server: set SELFMEM_NEO4J_URI (and _USER, _PASSWORD) to run")


@live
def test_export_to_a_live_neo4j_is_idempotent(tmp_path):
    neo4j = pytest.importorskip("neo4j")
    with Memory(tmp_path / "m", HASH) as mem:
        ids = mem.add_many(texts(20), session="s", metadata=[{"task_id": "T"}] * 20)
        mem.add("solution", kind="solution", metadata={"solves": "T"}, parents=[ids[0]])
        first = mem.export_neo4j()
        second = mem.export_neo4j()
    assert first == second
    driver = neo4j.GraphDatabase.driver(os.environ["SELFMEM_NEO4J_URI"], auth=(
        os.environ.get("SELFMEM_NEO4J_USER", "neo4j"), os.environ.get("SELFMEM_NEO4J_PASSWORD")))
    with driver:
        records, _, _ = driver.execute_query("MATCH (m:Memory) WHERE m.id IN $ids RETURN count(m) AS n",
                                             {"ids": ids})
        assert records[0]["n"] == len(ids)
        records, _, _ = driver.execute_query(_cypher.BROWSER["a task's solutions"], {"task": "T"})
        assert len(records) == 1


@live
def test_live_mirror_copies_adds_and_deletes(tmp_path):
    with Memory(tmp_path / "m", HASH.replace(graph=GraphConfig(mirror="neo4j"))) as mem:
        ids = mem.add_many(texts(5), session="s")
        mem.delete(ids[0])
        assert mem._state.graph.graph.pending() == []


def test_docs_show_the_browser_queries_the_code_has():
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "graph.md").read_text()
    shown = {" ".join(b.split()) for b in re.findall(r"```cypher\n(.*?)```", doc, re.S)}
    assert shown == {" ".join(q.split()) for q in _cypher.BROWSER.values()}


# -- property test: the graph against a model under random adds, deletes, rebuilds and reopens ------
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule  # noqa: E402


class GraphMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp()) / "m"
        self.mem = Memory(self.dir, HASH, progress=False)
        self.session: dict[int, str] = {}
        self.parents: dict[int, list[int]] = {}

    @rule(n=st.integers(1, 5), session=st.sampled_from(["a", "b"]), data=st.data())
    def add(self, n, session, data):
        live = sorted(self.session)
        pars = [data.draw(st.lists(st.sampled_from(live), max_size=2, unique=True)) if live else [] for _ in range(n)]
        for rid, p in zip(self.mem.add_many(texts(n, seed=len(live)), session=session, parents=pars), pars):
            self.session[rid], self.parents[rid] = session, p

    @precondition(lambda self: self.session)
    @rule(data=st.data())
    def delete(self, data):
        gone = data.draw(st.lists(st.sampled_from(sorted(self.session)), min_size=1, max_size=3, unique=True))
        self.mem.delete(gone)
        for rid in gone:
            del self.session[rid]

    @rule()
    def rebuild(self):
        self.mem.rebuild()

    @rule()
    def reopen(self):
        self.mem.close()
        self.mem = Memory(self.dir, progress=False)

    @invariant()
    def graph_matches_the_model(self):
        edges = stored_edges(self.mem)
        follows = {(s, d) for s, r, d in edges if r == "FOLLOWS"}
        want = set()
        for name in ("a", "b"):
            chain = sorted(i for i, s in self.session.items() if s == name)
            want |= {(f"memory:{b}", f"memory:{a}") for a, b in zip(chain, chain[1:])}
        assert follows == want
        derived = {(s, d) for s, r, d in edges if r == "DERIVED_FROM"}
        assert derived == {(f"memory:{i}", f"memory:{p}") for i in self.session for p in self.parents[i]
                           if p in self.session}
        assert self.mem._state.graph.graph.dangling() == 0

    def teardown(self):
        self.mem.close()


GraphMachine.TestCase.settings = settings(max_examples=10, stateful_step_count=10, deadline=None, derandomize=True,
                                          suppress_health_check=[HealthCheck.too_slow])
TestGraphMachine = GraphMachine.TestCase


def test_to_networkx_holds_the_whole_graph(tmp_path):
    pytest.importorskip("networkx")
    cfg = HASH.replace(topics=TopicsConfig(min_records=10))
    with Memory(tmp_path / "m", cfg) as mem:
        ids = mem.add_many(texts(30), session="s", metadata=[{"task_id": f"t{i % 3}"} for i in range(30)])
        mem.add("answer", kind="solution", metadata={"solves": "t1", "verified_by": "tests"}, parents=[ids[0]])
        mem.wait()
        g = mem.to_networkx()
        stats = mem.stats()
    counts: dict[str, int] = {}
    for _, _, rel in g.edges(keys=True):
        counts[rel] = counts.get(rel, 0) + 1
    assert {r: n for r, n in counts.items()} == {r: n for r, n in stats.graph.items() if n}
    labels = {a["type"] for _, a in g.nodes(data=True)}
    assert labels == {"Memory", "Topic", "Session", "Task", "Entity"}
    assert g.nodes["memory:1"]["kind"] == "output" and g.edges["memory:31", "task:t1", "SOLVES"]["verified_by"] == "tests"


def test_an_interrupted_export_resumes_where_it_stopped(tmp_path):
    pytest.importorskip("networkx")
    from selfmem.graph._mirror import export
    from selfmem.graph._nx import NetworkxBackend

    with Memory(tmp_path / "m", HASH) as mem:
        mem.add_many(texts(10), session="s")
        mem.rebuild()  # SIMILAR_TO edges to later ids too: an export batch must not drop them
        graph, state = mem._state.graph.graph, tmp_path / "export.json"
        full = NetworkxBackend()
        export(graph, full, None, batch=3)

        class Stop(Exception):
            pass

        def stop_after_first(n):
            raise Stop

        sink = NetworkxBackend()
        with pytest.raises(Stop):
            export(graph, sink, state, batch=3, progress=stop_after_first)
        assert json.loads(state.read_text())["last_id"] == 3
        counts = export(graph, sink, state, batch=3)
        assert counts["memories"] == 7 and not state.exists()
        assert set(sink.graph.edges(keys=True)) == set(full.graph.edges(keys=True))
        assert dict(sink.graph.nodes(data="kind")) == dict(full.graph.nodes(data="kind"))
        again = export(graph, sink, state, batch=3)  # a full rerun changes nothing
        assert set(sink.graph.edges(keys=True)) == set(full.graph.edges(keys=True)) and again["memories"] == 10


def test_held_links_agree_with_the_stored_edges(tmp_path):
    """A writer holds the edges between memories in memory for search expansion: through adds, deletes
    (the session relinked around them) and a rebuild, they are the stored edges, and the expansion is the same."""
    from selfmem.graph._links import LINK_RELS

    def held_and_stored(mem: Memory, ids: list[int]) -> tuple[set, set]:
        graph = mem._state.graph.graph
        keys = [f"memory:{i}" for i in ids]
        stored = {(r.src, r.rel, r.dst) for r in graph.rows(keys, LINK_RELS + ("ABOUT",))}
        tasks = sorted({d for _, r, d in stored if r == "ABOUT"})
        stored |= {(r.src, r.rel, r.dst) for r in graph.rows(tasks, ["SOLVES"], "in")}
        held = {(s, r, d) for s, r, d, _ in graph.links(ids, LINK_RELS) + graph.task_links("ABOUT", ids=ids)
                + graph.task_links("SOLVES", tasks=tasks)}
        return held, stored

    with Memory(tmp_path / "m", HASH) as mem:
        assert mem._state.graph.graph.links([1], ["FOLLOWS"]) is not None  # a writer holds them
        ids = mem.add_many(texts(40), session="s")
        first = mem.search("rotate grid", k=5)  # the first search loads the links
        more = mem.add_many(texts(10, seed=2), session="s", parents=[[ids[0]]] * 10,  # inserted after the load
                            metadata=[{"task_id": f"t{i % 3}"} for i in range(10)])
        more.append(mem.add("solution: rotate", kind="solution", session="s",
                            metadata={"task_id": "t1", "solves": "t1"}))
        every = ids + more
        held, stored = held_and_stored(mem, every)
        assert held == stored and {"DERIVED_FROM", "ABOUT", "SOLVES"} <= {r for _, r, _ in held}
        mem.delete([ids[5], ids[6]])
        held, stored = held_and_stored(mem, every)
        assert held == stored and (f"memory:{ids[7]}", "FOLLOWS", f"memory:{ids[4]}") in held
        mem.rebuild()
        held, stored = held_and_stored(mem, every)
        assert held == stored
        held_hits = [(h.record.id, h.via) for q in ("rotate grid", "mirror tile", "count") for h in mem.search(q, k=8)]
        graph = mem._state.graph.graph
        graph._links, kept = None, graph._links  # the same searches with the edges read from the store
        try:
            asked = [(h.record.id, h.via) for q in ("rotate grid", "mirror tile", "count") for h in mem.search(q, k=8)]
        finally:
            graph._links = kept
        assert held_hits == asked and any(via for _, via in held_hits) and first
    with Memory(tmp_path / "m", HASH, read_only=True) as reader:
        assert reader._state.graph.graph.links([ids[0]], ["FOLLOWS"]) is None  # a reader asks the store
