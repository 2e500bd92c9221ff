"""Issue 38: one memory, many writers and tenants. Tenancy by construction, secrets never shown, a strict tokens
file, 401 before 422, one nesting limit, 413 for chunked bodies, a bounded pool of open namespaces, SIGHUP
drains, times over the wire, writers on one PostgreSQL memory that converge, a faithful migrate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from helpers import hash_cfg, texts, wait_until
from serving import Served
from selfmem import ConfigError, InvalidInputError, Memory, MemoryConfig, StorageError, TopicsConfig

PASSWORD = "s3cr3t-Pa55"


# -- tenancy --------------------------------------------------------------------------------------------
def test_every_namespace_gets_its_own_schema_even_with_store_schema_in_the_config(tmp_path, pg_url):
    from selfmem.server import RemoteMemory

    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([{"token": "alpha-t", "namespaces": ["alpha"], "role": "write"},
                                  {"token": "bravo-t", "namespaces": ["bravo"], "role": "write"}]))
    cfg = hash_cfg(store=pg_url, store_schema="shared_team")
    with Served(tmp_path / "root", "--tokens", str(tokens), memory_config=cfg) as s:
        with RemoteMemory(s.url, "alpha", "alpha-t") as a:
            a.add("alpha's secret plan", key="a1")
        with RemoteMemory(s.url, "bravo", "bravo-t") as b:
            b.add("bravo's note")
            assert [h.record.text for h in b.search("secret plan", k=5)] == ["bravo's note"]
            assert b.stats().records == 1
    schemas = {p.name: MemoryConfig.read(p / "config.toml").store_schema for p in (tmp_path / "root").iterdir()}
    assert schemas["alpha"] != schemas["bravo"] and all(v.startswith("shared_team_") for v in schemas.values())


@pytest.mark.parametrize("schema", ["public", "information_schema", "pg_catalog", "pg_temp"])
def test_a_schema_shared_by_the_whole_database_is_refused(schema):
    with pytest.raises(ConfigError, match="shared by every user"):
        MemoryConfig(store="postgresql://u@h/db", store_schema=schema)


def test_a_table_named_meta_in_public_neither_leaks_nor_breaks_a_new_memory(tmp_path, pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE TABLE IF NOT EXISTS public.meta (key text, value text)")
        con.execute("INSERT INTO public.meta VALUES ('schema_version', '1')")
    with Memory(tmp_path / "m", hash_cfg(), store=pg_url, progress=False) as m:
        m.add("mine")
        assert len(m) == 1
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("DROP TABLE public.meta")


# -- secrets -------------------------------------------------------------------------------------------
def _with_password(pg_url: str, form: str) -> str:
    """A role with a password on the test server; its URL with the password in the user info or as a parameter."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as con:
        if not con.execute("SELECT 1 FROM pg_roles WHERE rolname = 'tenant_pw'").fetchone():
            con.execute(f"CREATE ROLE tenant_pw LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    assert pg_url.startswith("postgresql://postgres:@/")
    rest = pg_url.split("@", 1)[1]
    return f"postgresql://tenant_pw:{PASSWORD}@{rest}" if form == "userinfo" else \
        f"postgresql://tenant_pw@{rest}&password={PASSWORD}"


@pytest.mark.parametrize("form", ["userinfo", "parameter"])
def test_a_password_in_the_url_is_never_written_or_shown(tmp_path, pg_url, form):
    url = _with_password(pg_url, form)
    with Memory(tmp_path / "m", hash_cfg(), store=url, progress=False) as m:
        m.add("x")
        shown = [repr(m), str(m.stats()), json.dumps(m.stats().config), repr(m.config)]
    shown.append((tmp_path / "m" / "config.toml").read_text())
    res = subprocess.run([sys.executable, "-m", "selfmem.cli", "migrate", str(tmp_path / "m"), str(tmp_path / "d"),
                          "--json"], capture_output=True, text=True, timeout=300)
    shown += [res.stdout, res.stderr]
    with pytest.raises(StorageError) as err:  # a refused connection's message quotes no password either
        Memory(tmp_path / "bad", hash_cfg(), store=url.replace("tenant_pw", "nobody"), progress=False)
    shown.append(str(err.value))
    assert not any(PASSWORD in text for text in shown), [t for t in shown if PASSWORD in t][:1]


@pytest.mark.parametrize("url, says", [("postgresql://u:p@ss@h/db", "unencoded '@'"),
                                       ("postgresql://u:p%zz@h/db", "starts no %XX escape")])
def test_an_ambiguous_url_is_refused_without_quoting_it(url, says):
    with pytest.raises(ConfigError) as err:
        MemoryConfig(store=url)
    assert says in str(err.value) and "ss@h" not in str(err.value) and "%zz" not in str(err.value)


def test_redaction_covers_every_form_of_password():
    from selfmem._config import redact_url, scrub

    for url, pw in (("postgresql://u:pw1@h/db", "pw1"), ("postgresql://u@h/db?sslmode=require&password=pw1", "pw1"),
                    ("postgresql://h/db?PASSWORD=pw1", "pw1"), ("postgresql://u:p%40w1@h/db", "p@w1")):
        assert pw not in redact_url(url) and "p%40w1" not in redact_url(url)
        assert pw not in scrub(f"auth failed for {pw} at {url}", url)
    assert redact_url("postgresql://u@h/db?sslmode=require&password=pw1") == "postgresql://u@h/db?sslmode=require"


# -- tokens file -----------------------------------------------------------------------------------------
def test_the_tokens_file_refuses_unknown_keys_and_a_missing_namespaces():
    from selfmem.server._auth import Tokens

    with pytest.raises(ConfigError, match="unknown key"):
        Tokens.from_entries([{"token": "t", "namespace": ["a"], "role": "read"}])
    with pytest.raises(ConfigError, match="needs \"namespaces\""):
        Tokens.from_entries([{"token": "t", "role": "read"}])
    with pytest.raises(ConfigError, match="ISO 8601"):
        Tokens.from_entries([{"token": "t", "namespaces": ["a"], "expires": "next week"}])


def test_an_expired_token_is_refused():
    from selfmem.server._auth import Tokens
    from selfmem.server._errors import NotAuthenticatedError

    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    tokens = Tokens.from_entries([{"token": "old", "namespaces": ["a"], "expires": past},
                                  {"token": "new", "namespaces": ["a"], "expires": future}])
    with pytest.raises(NotAuthenticatedError, match="expired"):
        tokens.check("old", "a", "read")
    assert tokens.check("new", "a", "read").role == "read"


def test_no_token_and_a_bad_body_is_401_not_422_and_sigusr1_reloads_the_tokens(tmp_path):
    import httpx

    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([{"token": "w", "namespaces": ["team"], "role": "write"}]))
    with Served(tmp_path / "root", "--tokens", str(tokens)) as s:
        url = f"{s.url}/v1/namespaces/team/add"
        assert httpx.post(url, content=b"{not json").status_code == 401
        assert httpx.post(url, content=b"{not json", headers={"Authorization": "Bearer nope"}).status_code == 401
        other = f"{s.url}/v1/namespaces/other/add"
        assert httpx.post(other, content=b"{", headers={"Authorization": "Bearer w"}).status_code == 403
        assert httpx.post(url, content=b"{", headers={"Authorization": "Bearer w"}).status_code == 422
        tokens.write_text(json.dumps([{"token": "w2", "namespaces": ["team"], "role": "write"}]))
        s.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: httpx.post(url, json={"text": "x"}, headers={"Authorization": "Bearer w2"}).status_code == 200,
                   10, "the reloaded tokens file accepting the new token")
        assert httpx.post(url, json={"text": "y"}, headers={"Authorization": "Bearer w2"}).status_code == 200
        assert httpx.post(url, json={"text": "z"}, headers={"Authorization": "Bearer w"}).status_code == 401


def test_remote_memory_validates_its_namespace_and_url():
    from selfmem.server import RemoteMemory

    for ns in ("tenant-x/../team-b", "a/b", "..", "x\x00y", ""):
        with pytest.raises(InvalidInputError):
            RemoteMemory("http://127.0.0.1:9", ns)
    with pytest.raises(InvalidInputError):
        RemoteMemory("http://127.0.0.1:9/\x00", "ok")


# -- server robustness ------------------------------------------------------------------------------------
def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_one_nesting_limit_at_add_everywhere(tmp_path):
    with Memory(tmp_path / "m", hash_cfg()) as m:
        m.add("ok", metadata=_nested(64))
        for depth in (65, 300, 5000):
            with pytest.raises(InvalidInputError, match="nested more than 64"):
                m.add("deep", metadata=_nested(depth))
        assert len(m) == 1


def test_a_deep_record_is_refused_by_the_server_and_the_namespace_keeps_working(tmp_path):
    import httpx

    with Served(tmp_path / "root") as s:
        url = f"{s.url}/v1/namespaces/team"
        assert httpx.post(url + "/add", json={"text": "fine", "metadata": _nested(10)}).status_code == 200
        assert httpx.post(url + "/add", json={"text": "deep", "metadata": _nested(300)}).status_code == 422
        assert httpx.post(url + "/search", json={"query": "fine"}).status_code == 200
        assert httpx.get(url + "/records/1").status_code == 200


def test_a_deep_record_stored_before_the_limit_is_still_served(tmp_path):
    """A record whose metadata nests 300 levels, written before adds refused that (here: into the store's
    file directly), is served by GET and search (pydantic's serialiser stops at 255 levels: 500 before)."""
    import duckdb
    import httpx

    from selfmem import RemoteMemory

    with Memory(tmp_path / "root" / "old", hash_cfg()) as m:
        rid = m.add("an old note about grids", metadata={"x": 1})
    con = duckdb.connect(str(tmp_path / "root" / "old" / "memory.duckdb"))
    con.execute("UPDATE records SET metadata = ? WHERE id = ?", [json.dumps(_nested(300)), rid])
    con.close()
    with Served(tmp_path / "root") as s:
        url = f"{s.url}/v1/namespaces/old"
        got = httpx.get(f"{url}/records/{rid}")
        assert got.status_code == 200, got.text
        assert got.json()["metadata"] == _nested(300)
        found = httpx.post(url + "/search", json={"query": "grids"})
        assert found.status_code == 200 and found.json()["hits"][0]["record"]["id"] == rid
        with RemoteMemory(s.url, "old") as mem:
            assert mem.get(rid).metadata == _nested(300)
            assert mem.enrich("grids").hits[0].record.id == rid


def test_a_chunked_body_over_the_limit_is_413(tmp_path):
    import httpx

    with Served(tmp_path / "root", "--max-body", "2048") as s:
        def chunks():
            for _ in range(10):
                yield b'{"text": "' + b"x" * 1000

        r = httpx.post(f"{s.url}/v1/namespaces/team/add", content=chunks())
        assert r.status_code == 413 and r.json()["error"] == "InvalidInputError", r.text


def test_times_go_over_the_wire(tmp_path):
    from selfmem.server import RemoteMemory

    when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    with Served(tmp_path / "root") as s, RemoteMemory(s.url, "team") as m:
        a = m.add("old note", created_at=when)
        b, c = m.add_many(["older", "newer"], created_at=[when - timedelta(days=30), when + timedelta(days=30)])
        assert m.get(a).created_at == when
        got = {h.record.id for h in m.search("note", k=10, since=when - timedelta(days=1), until=when + timedelta(days=1))}
        assert got == {a}
        assert m.enrich("note", k=3, since=when + timedelta(days=1)).hits[0].record.id == c
        assert b


def test_sighup_drains_and_closes_every_memory(tmp_path):
    from selfmem.server import RemoteMemory

    with Served(tmp_path / "root") as s:
        with RemoteMemory(s.url, "team") as m:
            m.add_many(texts(30))
        s.proc.send_signal(signal.SIGHUP)
        assert s.proc.wait(60) == 0
    with Memory(tmp_path / "root" / "team", read_only=True) as m:
        assert len(m) == 30
    from selfmem import doctor

    assert doctor(tmp_path / "root" / "team").healthy  # closed: files saved, view published


def test_the_hub_closes_idle_namespaces_and_keeps_at_most_max_open(tmp_path):
    from selfmem.server._hub import Hub

    hub = Hub(tmp_path / "root", hash_cfg(), max_open=2, idle_close=0)
    for name in ("a", "b", "c"):
        hub.get(name, create=True)[0].add(f"note in {name}")
    time.sleep(1.1)
    closed = hub.evict()
    assert len(hub._open) == 2 and closed == ["a"]
    assert hub.get("a")[0].search("note", k=1)[0].record.text == "note in a"  # reopened on the next request
    before = sorted(hub._open)
    hub.idle_close = 60.0
    assert sorted(hub.evict(now=time.monotonic() + 10_000)) == before and not hub._open  # idle an hour: closed
    hub.close()


# -- writers on one PostgreSQL memory ---------------------------------------------------------------------
WRITER = r"""
import sys, time
from selfmem import Memory, MemoryConfig
cfg = MemoryConfig.from_dict(__import__("json").loads(sys.argv[3]))
with Memory(sys.argv[1], cfg, progress=False) as m:
    for i in range(int(sys.argv[4])):
        m.add_many([f"writer {sys.argv[2]} note {i} {j} about grids and colours" for j in range(10)])
"""


def test_a_live_writer_converges_with_a_fresh_process_after_wait(tmp_path, pg_url):
    cfg = hash_cfg(own=32, own_min_fit=40, topics=TopicsConfig(min_records=30), store=pg_url,
                   store_schema="converge_a")
    live = Memory(tmp_path / "live", cfg, progress=False)
    live.add_many(texts(40))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / f"w{i}"), str(i),
                               json.dumps(cfg.to_dict()), "8"])
             for i in range(3)]
    for n in range(30):  # the live writer searches with graph expansion while the others commit
        live.search("grids and colours", k=10, expand=True)
        live.add(f"live note {n}")
    for p in procs:
        assert p.wait(300) == 0
    live.wait()
    with Memory(tmp_path / "fresh", cfg, progress=False) as fresh:
        fresh.wait()
        assert len(live) == len(fresh) == 40 + 30 + 3 * 80
        assert len(live._state.keywords.index) == len(live._state.vectors.index) == len(live)
        for mode in ("dense", "keyword", "hybrid"):
            for q in ("writer 1 note 3", "grids and colours", "live note 7"):
                assert [h.record.id for h in live.search(q, k=10, mode=mode)] == \
                    [h.record.id for h in fresh.search(q, k=10, mode=mode)], (mode, q)
    live.close()


def test_processes_creating_memories_at_once_do_not_collide(tmp_path, pg_url):
    script = ("import sys\nfrom selfmem import Memory\nfrom helpers import hash_cfg\n"
              "Memory(sys.argv[1], hash_cfg(), store=sys.argv[2], progress=False).close()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"c{i}"), pg_url], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs


def test_migrate_keeps_the_graph_and_the_use_counts(tmp_path, pg_url):
    from selfmem.memory._migrate import migrate

    cfg = hash_cfg(topics=TopicsConfig(min_records=30))
    with Memory(tmp_path / "src", cfg, progress=False) as m:
        m.add_many(texts(120))
        m.enrich("rotate the grid", k=5)
        m.wait()
        src_graph, src_used = dict(m.stats().graph), {h.record.id: h.record.use_count for h in
                                                      m.search("rotate the grid", k=5)}
        src_hits = [[h.record.id for h in m.search(q, k=8, expand=True)] for q in ("rotate", "mirror border")]
    migrate(tmp_path / "src", tmp_path / "dst", store=pg_url, schema="migrated_a")
    with Memory(tmp_path / "dst", progress=False) as t:
        t.wait()
        assert dict(t.stats().graph) == src_graph
        assert {i: t.get(i).use_count for i in src_used} == src_used
        assert [[h.record.id for h in t.search(q, k=8, expand=True)] for q in ("rotate", "mirror border")] == src_hits


def test_metrics_count_requests_per_route_and_namespace_and_show_no_secret(tmp_path):
    import httpx

    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([{"token": "metrics-w", "namespaces": ["team"], "role": "write"}]))
    auth = {"Authorization": "Bearer metrics-w"}
    with Served(tmp_path / "root", "--tokens", str(tokens), topics=TopicsConfig(min_records=20)) as s:
        url = f"{s.url}/v1/namespaces/team"
        for i in range(30):
            assert httpx.post(url + "/add", json={"text": f"secret text {i}"}, headers=auth).status_code == 200
        assert httpx.post(url + "/search", json={"query": "secret"}, headers=auth).status_code == 200
        assert httpx.post(url + "/wait", headers=auth).status_code == 200
        assert httpx.get(f"{s.url}/metrics").status_code == 401
        body = httpx.get(f"{s.url}/metrics", headers=auth).text
    assert 'selfmem_requests_total{method="POST",namespace="team",route="/v1/namespaces/{namespace}/add",' \
           'status="200"} 30.0' in body, body[:2000]
    assert "selfmem_request_seconds_bucket" in body and "selfmem_open_namespaces 1.0" in body
    assert 'selfmem_add_queue_depth{namespace="team"}' in body and "selfmem_refit_seconds_count" in body
    assert "metrics-w" not in body and "secret text" not in body


def test_a_process_that_only_searches_adopts_the_whitening_others_made_due(tmp_path, pg_url):
    cfg = hash_cfg(own=32, own_min_fit=40, store=pg_url, store_schema="converge_reader")
    reader = Memory(tmp_path / "reader", cfg, progress=False)  # opened empty: it never adds
    proc = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path / "w"), "0", json.dumps(cfg.to_dict()), "12"],
                          timeout=300)
    assert proc.returncode == 0
    reader.search("grids", k=5)
    reader.wait()
    with Memory(tmp_path / "fresh", cfg, progress=False) as fresh:
        fresh.wait()
        assert reader._state.views.whitener is not None
        assert reader._state.views.whitener.digest() == fresh._state.views.whitener.digest()
        for q in ("writer 0 note 3", "grids and colours"):
            assert [h.record.id for h in reader.search(q, k=10)] == [h.record.id for h in fresh.search(q, k=10)]
    reader.close()
