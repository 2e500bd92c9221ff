"""memctl serve and RemoteMemory: a real server process on 127.0.0.1 (hash embedder), clients in processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from helpers import wait_until
from serving import Served

from selfmem import (Enriched, Hit, InvalidInputError, Memory, MemoryAPI, Record, RecordNotFoundError, RemoteMemory,
                     Stats, Subgraph, Topic)
from selfmem.server import (AccessDeniedError, NamespaceNotFoundError, NotAuthenticatedError, ServerBusyError,
                            ServerError)
from selfmem.solver import MemorySolver, QATask, QATaskType

ROOT = Path(__file__).resolve().parents[1]

# a client process: adds `n` texts one at a time (key "<name>-<i>"), prints the acknowledged ids as JSON
CLIENT = r"""
import json, sys
from selfmem import RemoteMemory
url, ns, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with RemoteMemory(url, ns) as mem:
    print("ready", flush=True)
    sys.stdin.readline()  # every client starts adding at once
    ids = {f"{name}-{i}": mem.add(f"note {i} from client {name} about grids", kind="note", key=f"{name}-{i}",
                                  session=name) for i in range(n)}
print(json.dumps(ids))
"""


def clients(url: str, ns: str, names: list[str], n: int) -> dict[str, int]:
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, url, ns, name, str(n)], stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in names]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.communicate()[1][-2000:]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    acked: dict[str, int] = {}
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        acked.update(json.loads(out))
    return acked


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with Served(tmp_path_factory.mktemp("served") / "root", background=False) as s:
        yield s


def test_remote_memory_is_a_memory_with_the_same_results(served, tmp_path):
    texts = ["The grid is rotated 90 degrees.", "Colours are swapped: red becomes blue.",
             "The object is moved to the top left corner.", "A spider has eight legs."]
    with RemoteMemory(served.url, "same") as remote, Memory(tmp_path / "local", served.config) as local:
        assert isinstance(remote, MemoryAPI)
        assert remote.config == local.config
        for mem in (remote, local):
            with mem.session("s1"):
                first = mem.add(texts[0], kind="note", metadata={"task": "a"}, importance=2.0)
            mem.add_many(texts[1:], kind="output", parents=[[first]] * 3)
        r_hits, l_hits = remote.search("rotated grid", k=3), local.search("rotated grid", k=3)
        assert all(isinstance(h, Hit) and isinstance(h.record, Record) for h in r_hits)
        assert [(h.record.id, h.record.text, round(h.score, 6)) for h in r_hits] == \
               [(h.record.id, h.record.text, round(h.score, 6)) for h in l_hits]
        assert remote.get(first).metadata == {"task": "a"} and remote.get(first).session == "s1"
        assert remote.get(first).created_at.tzinfo is not None
        assert remote.search("colours", k=2, kinds=["note"], where={"task": "a"})[0].record.id == first
        enr = remote.enrich("Is the grid rotated?", k=2, mark_used=False)
        assert isinstance(enr, Enriched) and enr.prompt == local.enrich("Is the grid rotated?", k=2,
                                                                         mark_used=False).prompt
        st = remote.stats()
        assert isinstance(st, Stats) and st.records == 4 and st.sessions == local.stats().sessions
        assert all(isinstance(t, Topic) for t in remote.topics())
        sub = remote.neighbours(first)
        assert isinstance(sub, Subgraph) and sub.keys == local.neighbours(first).keys
        assert remote.path(first, first + 1) == local.path(first, first + 1)
        assert remote.subgraph([first]).keys == local.subgraph([first]).keys
        remote.wait()
        remote.rebuild()
        local.rebuild()
        st, ls = remote.stats(), local.stats()  # the typed parts of Stats come back with the same keys and values
        assert st.last_rebuild["records"] == ls.last_rebuild["records"] == 4 and set(st.last_rebuild) == set(ls.last_rebuild)
        assert st.index == ls.index and st.view.keys() == ls.view.keys()


def test_errors_come_back_as_the_same_selfmem_errors(served):
    with RemoteMemory(served.url, "errors") as mem:
        with pytest.raises(RecordNotFoundError, match="no record with id 12345"):
            mem.get(12345)
        with pytest.raises(InvalidInputError, match="unknown kind 'bogus'"):
            mem.add("x", kind="bogus")
        with pytest.raises(InvalidInputError, match="k"):
            mem.search("x", k=0)  # refused by the request schema: 422 with the validation message
        with pytest.raises(InvalidInputError, match="empty"):
            mem.add("   ")
        with pytest.raises(RecordNotFoundError):
            mem.delete([999])
    with pytest.raises(NamespaceNotFoundError):
        RemoteMemory(served.url, "never-made", create=False).search("x")
    for bad in ("..", "a/../../etc", ".hidden", "x" * 65):
        r = httpx.get(f"{served.url}/v1/namespaces/{bad}/stats")
        assert r.status_code in (404, 422) and set(r.json()) == {"error", "message"}, (bad, r.text)
    assert not any(p.name.startswith(".") for p in served.root.iterdir())
    mem = RemoteMemory(served.url, "errors")
    mem.close()
    from selfmem import MemoryClosedError

    with pytest.raises(MemoryClosedError):
        mem.get(1)
    with pytest.raises(ServerError):
        RemoteMemory("http://127.0.0.1:9", "x", retries=0)


def test_concurrent_adds_from_processes_are_group_committed_with_keys(served):
    names = [f"c{i}" for i in range(4)]
    acked = clients(served.url, "group", names, 25)
    commits = httpx.get(f"{served.url}/v1/namespaces/group/commits").json()
    again = clients(served.url, "group", names[:2], 25)  # retries of the same keys: the same ids, no new record
    assert all(again[k] == acked[k] for k in again)
    with RemoteMemory(served.url, "group") as mem:
        assert mem.stats().records == 100 == len(set(acked.values()))
        assert mem.get(acked["c3-7"]).text == "note 7 from client c3 about grids"
    assert commits["committed"] == 100 and commits["batches"] < 100, commits  # 4 clients at once share commits


def test_one_bad_add_in_a_batch_fails_alone(served):
    with RemoteMemory(served.url, "mixed") as mem:
        out: dict[int, object] = {}

        def one(i: int) -> None:
            try:
                out[i] = mem.add(f"text {i}", kind="bogus" if i == 3 else "note")
            except InvalidInputError as exc:
                out[i] = exc

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert isinstance(out[3], InvalidInputError)
        assert sorted(v for k, v in out.items() if k != 3) == sorted(set(v for k, v in out.items() if k != 3))
        assert mem.stats().records == 7


def test_memory_solver_runs_unchanged_on_a_remote_memory(served):
    from test_solver import Scripted

    with RemoteMemory(served.url, "solver") as mem:
        mem.add("Spiders are arachnids with eight legs.", kind="note")
        tasks = [QATask("t1", "How many legs does a spider have?", answer="eight"),
                 QATask("t2", "What is the capital of Norway?", answer="Oslo")]
        results = MemorySolver(Scripted({"Norway": "Oslo"}), mem, QATaskType(), k=3).solve_all(tasks, session="r1")
        assert [r.solved for r in results] == [False, True]
        assert results[0].context  # the note enriched the prompt
        out = [mem.get(i) for i in results[0].recorded]
        assert any(r.kind == "output" and r.parents == results[0].context and r.session == "r1" for r in out)
    llm = Scripted({})
    with RemoteMemory(served.url, "solver") as other:  # another client sees the solution
        MemorySolver(llm, other, QATaskType(), k=2).solve(QATask("t9", "Capital city of Norway?", answer="Oslo"))
        assert "Oslo" in llm.prompts[0].split("</past_context>")[0]


def test_memctl_reads_through_the_server(served):
    with RemoteMemory(served.url, "cli") as mem:
        rid = mem.add("The grid is rotated 90 degrees.", kind="note")
    for args in (["search", "cli", "rotated grid"], ["inspect", "cli"], ["topics", "cli"], ["graph", "cli", str(rid)],
                 ["inspect", "cli", "record", str(rid)]):
        res = subprocess.run([sys.executable, "-m", "selfmem.cli", *args, "--url", served.url, "--json"],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert res.returncode == 0, (args, res.stderr)
        json.loads(res.stdout)
    res = subprocess.run([sys.executable, "-m", "selfmem.cli", "search", "nope", "x", "--url", served.url],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 5 and "no namespace 'nope'" in res.stderr


# memctl search --url run in-process, then the modules it imported (issue 26: the client path stays light)
LIGHT = r"""
import json, sys
from selfmem.cli import cli
cli(["search", "light", "rotated grid", "--url", sys.argv[1], "--json"], standalone_mode=False)
print(json.dumps(sorted(sys.modules)))
"""
HEAVY = ("torch", "faiss", "duckdb", "numpy", "scipy", "sklearn", "pandas", "pyarrow", "transformers",
         "sentence_transformers", "onnxruntime", "fastapi", "uvicorn", "pydantic", "httpx", "selfmem.memory",
         "selfmem.retrieval", "selfmem.store")


def test_memctl_url_imports_no_heavy_module_and_answers_as_remote_memory(served):
    with RemoteMemory(served.url, "light") as mem:
        mem.add_many([f"note {i}: the grid is rotated {i * 90} degrees" for i in range(4)], kind="note")
        expected = [h.record.id for h in mem.search("rotated grid")]
    res = subprocess.run([sys.executable, "-c", LIGHT, served.url], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    hits, modules = res.stdout.rsplit("\n", 2)[0], json.loads(res.stdout.rsplit("\n", 2)[1])
    assert [h["record"]["id"] for h in json.loads(hits)] == expected
    loaded = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert not loaded, f"memctl search --url imported {loaded}"


TOKENS = [{"token": "tok-read-a", "namespaces": ["a"], "role": "read"},
          {"token": "tok-write-a", "namespaces": ["a"], "role": "write"},
          {"token": "tok-admin-all", "namespaces": ["*"], "role": "admin"},
          {"token": "tok-write-b", "namespaces": ["b"], "role": "write"}]


def test_tokens_roles_and_namespaces(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    with Served(tmp_path / "root", "--tokens", str(tokens), "--access-log") as s:
        with pytest.raises(NotAuthenticatedError):
            RemoteMemory(s.url, "a")
        with pytest.raises(NotAuthenticatedError):
            RemoteMemory(s.url, "a", "wrong-token")
        with pytest.raises(AccessDeniedError):
            RemoteMemory(s.url, "a", "tok-read-a")  # create=True needs write
        with pytest.raises(AccessDeniedError):
            RemoteMemory(s.url, "a", "tok-write-b")  # another namespace
        with RemoteMemory(s.url, "a", "tok-write-a") as w:
            rid = w.add("a note about grids", kind="note")
            with pytest.raises(AccessDeniedError, match="admin"):
                w.delete(rid)
        reader = RemoteMemory(s.url, "a", "tok-read-a", create=False)
        assert reader.search("grids")[0].record.id == rid
        with pytest.raises(AccessDeniedError):
            reader.add("x")
        with pytest.raises(AccessDeniedError):
            reader.enrich("grids")  # marks use: a write
        assert reader.enrich("grids", mark_used=False).hits
        RemoteMemory(s.url, "a", "tok-admin-all").delete(rid)
        # every route, without a token, with a wrong one, and with tokens lacking the namespace: none passes
        schema = httpx.get(f"{s.url}/openapi.json").json()
        passed, tried = [], 0
        for path, ops in schema["paths"].items():
            if "{namespace}" not in path:
                continue
            for method in ops:
                url = s.url + path.replace("{namespace}", "a").replace("{id}", "1")
                for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer tok-write-b"},
                                {"Authorization": "Basic dG9rLXdyaXRlLWE="}):
                    r = httpx.request(method, url, json={}, headers=headers)
                    tried += 1
                    if r.status_code not in (401, 403):
                        passed.append((method, path, headers, r.status_code))
                    assert "tok-" not in r.text
        assert tried >= 60 and passed == [], passed
        stats = RemoteMemory(s.url, "a", "tok-admin-all").stats()
        assert "tok-" not in json.dumps(stats.config) + str(stats)
        s.terminate()
        log = s.stderr()
        assert "POST /v1/namespaces/a/add" in log  # the access log ran ...
        assert "tok-" not in log  # ... and never wrote a token
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "root").rglob("*") if p.is_file())
    assert b"tok-" not in on_disk


def test_non_loopback_needs_tokens(tmp_path):
    res = subprocess.run([sys.executable, "-m", "selfmem.cli", "serve", str(tmp_path / "r"), "--host", "0.0.0.0",
                          "--port", "0"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 6 and "refusing to serve on 0.0.0.0 without tokens" in res.stderr


def test_limits_answer_413_422_and_429(tmp_path):
    with Served(tmp_path / "root", "--max-body", "4096", "--max-queue", "2", "--window-ms", "300") as s:
        base = f"{s.url}/v1/namespaces/lim"
        assert httpx.get(base + "/config", params={"create": "true"}).status_code == 200
        r = httpx.post(base + "/add", json={"text": "x" * 5000})
        assert r.status_code == 413 and r.json()["error"] == "InvalidInputError"
        r = httpx.post(base + "/search", json={"query": "x", "k": 100000})
        assert r.status_code == 422 and "k" in r.json()["message"]
        r = httpx.post(base + "/add_many", json={"texts": ["a"] * 2000})
        assert r.status_code in (413, 422)
        r = httpx.post(base + "/search", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"] == "InvalidInputError"
        codes: list[httpx.Response] = []

        def one(i: int) -> None:
            codes.append(httpx.post(base + "/add", json={"text": f"note {i}"}, timeout=30))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        busy = [r for r in codes if r.status_code == 429]
        assert busy and all(r.headers["Retry-After"] == "1" and r.json()["error"] == "ServerBusyError" for r in busy)
        assert all(r.status_code in (200, 429) for r in codes)
        with pytest.raises(ServerBusyError):
            raise ServerBusyError("x")


JOURNALING = r"""
import sys
from selfmem import RemoteMemory, SelfmemError
url, name, journal = sys.argv[1], sys.argv[2], sys.argv[3]
mem = RemoteMemory(url, "drain", retries=0)
with open(journal, "a") as out:
    for i in range(100000):
        try:
            rid = mem.add(f"item {i} of {name}", kind="note", key=f"{name}-{i}")
        except SelfmemError:
            break
        out.write(f"{rid} item {i} of {name}\n")
        out.flush()
"""


def test_sigterm_under_write_load_drains_and_closes(tmp_path):
    """SIGTERM while 3 writer processes add: in-flight adds finish, every acknowledged add is stored, the
    memory is closed cleanly (no WAL left), and the server exits."""

    with Served(tmp_path / "root", background=False) as s:
        RemoteMemory(s.url, "drain").close()
        journals = [tmp_path / f"w{i}.txt" for i in range(3)]
        writers = [subprocess.Popen([sys.executable, "-c", JOURNALING, s.url, f"w{i}", str(j)])
                   for i, j in enumerate(journals)]
        wait_until(lambda: all(j.exists() and len(j.read_text().splitlines()) >= 5 for j in journals), 120,
                   "the writers getting going")
        assert s.terminate() in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
        for w in writers:
            w.wait(timeout=120)
    assert not (tmp_path / "root" / "drain" / "memory.duckdb.wal").exists()  # closed cleanly: checkpointed
    acked = [line.split(" ", 1) for j in journals for line in j.read_text().splitlines()]
    with Memory(tmp_path / "root" / "drain", read_only=True) as mem:
        assert all(mem.get(int(rid)).text == text for rid, text in acked)
        assert len(mem) >= len(acked)


def test_schemathesis_finds_no_server_error_and_responses_match_the_schema(tmp_path):
    """Property-based calls against the served OpenAPI schema (with an admin token): no 500s, every status
    documented, every body as declared, invalid input rejected. (Semantic checks the schema cannot say, such
    as "text is not whitespace", answer 422; schemathesis' positive_data_acceptance is left out for them.)"""
    pytest.importorskip("schemathesis")
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([{"token": "st-admin", "namespaces": ["*"], "role": "admin"}]))
    with Served(tmp_path / "root", "--tokens", str(tokens), background=False) as s:
        res = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", s.url + "/openapi.json", "-c", "all",
                              "--exclude-checks", "positive_data_acceptance", "-H", "Authorization: Bearer st-admin",
                              "-n", "10", "-w", "1", "--seed", "7", "--phases", "examples,coverage,fuzzing"],
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0 and " generated" in res.stdout, res.stdout[-6000:]
        assert "Internal error" not in s.stderr() and "Traceback" not in s.stderr(), s.stderr()[-3000:]


def test_sigkill_under_write_load_loses_no_acknowledged_add_and_duplicates_none(tmp_path):
    """benchmarks/serve_kill.py, 3 rounds (the benchmark runs 20+): kill -9 the server while 4 writers add."""
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_kill.py"), "--kills", "3", "--writers", "3",
                          "--max-delay", "2.5", "--dir", str(tmp_path / "kill"), "--json"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert report["acknowledged"] > 0
    assert report["lost"] == report["duplicates"] == report["mismatched"] == 0, report


@pytest.mark.integration
def test_a_server_with_the_real_models(tmp_path):
    """The default models (MiniLM + SmolLM2) behind the server: two clients in processes, then a search."""
    from selfmem import MemoryConfig

    with Served(tmp_path / "root", memory_config=MemoryConfig(), timeout=600) as s:
        acked = clients(s.url, "real", ["r0", "r1"], 3)
        with RemoteMemory(s.url, "real", timeout=600) as mem:
            st = mem.stats()
            assert st.records == 6 and set(st.embedders) == {"general", "own"}, st.embedders
            assert "MiniLM" in st.embedders["general"]["name"]
            hits = mem.search("a note about grids from client r1", k=6)
            assert hits and {h.record.id for h in hits} <= set(acked.values())  # near-duplicates are folded


def test_concurrent_searches_embed_their_queries_together(served):
    with RemoteMemory(served.url, "queries") as mem:
        mem.add_many([f"note number {i} about grids and colours" for i in range(20)], kind="note")
        before = httpx.get(f"{served.url}/v1/namespaces/queries/commits").json()
        results: dict[int, list[Hit]] = {}

        def one(i: int) -> None:
            results[i] = RemoteMemory(served.url, "queries").search(f"grids query {i}", k=3)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = httpx.get(f"{served.url}/v1/namespaces/queries/commits").json()
        assert all(len(results[i]) == 3 for i in range(16))
        embedded = after["queries_embedded"] - before["queries_embedded"]
        batches = after["query_batches"] - before["query_batches"]
        assert embedded == 16 and batches < 16, (embedded, batches)
        assert results[5] == mem.search("grids query 5", k=3)  # the same hits as a search embedding alone
