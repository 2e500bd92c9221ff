"""The Memory API on the hash embedder: adds, reads, filters, persistence, and bad input writing nothing."""

import json
import math
import os
import subprocess
import threading

import pytest

from selfmem import (
    CorruptMemoryError,
    EmbedderMismatchError,
    EmbeddingConfig,
    HashEmbedder,
    Hit,
    InvalidInputError,
    Memory,
    MemoryClosedError,
    MemoryConfig,
    MemoryLockedError,
    Record,
    RecordNotFoundError,
    SelfmemError,
    TopicsConfig,
)
from helpers import Writer, hash_cfg


def test_add_get_search(mem):
    with mem.session("exp-1"):
        rid = mem.add("The grid is rotated 90 degrees clockwise.", kind="output", metadata={"task": "3c9b0459"})
        mem.add("Blue squares move one cell left.", kind="note")
    rec = mem.get(rid)
    assert isinstance(rec, Record)
    assert (rec.text, rec.kind, rec.metadata, rec.session) == (
        "The grid is rotated 90 degrees clockwise.", "output", {"task": "3c9b0459"}, "exp-1")
    assert rec.created_at.tzinfo is not None and rec.use_count == 0 and rec.parents == ()
    hits = mem.search("grid rotated clockwise", k=5)
    assert [h.rank for h in hits] == [0, 1]
    assert isinstance(hits[0], Hit) and hits[0].record.id == rid
    assert math.isclose(hits[0].distance, 1 - hits[0].score)
    assert hits[0].score >= hits[1].score


def test_search_score_is_cosine(mem):
    emb = HashEmbedder(64)
    mem.add("alpha beta gamma")
    (hit,) = mem.search("alpha beta", k=1)
    q, d = emb.embed(["alpha beta", "alpha beta gamma"])
    assert hit.score == pytest.approx(float(q @ d), abs=1e-5)


def test_add_many_and_filters(mem):
    ids = mem.add_many(["red apple", "green apple", "red car", "blue car"],
                       kind=["note", "note", "output", "output"],
                       metadata=[{"c": "red"}, {"c": "green"}, {"c": "red", "n": {"x": 1}}, None],
                       session="s1")
    mem.add("red bicycle", kind="output", session="s2")
    assert len(ids) == 4 and len(mem) == 5
    assert {h.record.id for h in mem.search("red", k=10, kinds=["note"])} == set(ids[:2])
    assert {h.record.text for h in mem.search("red", k=10, sessions=["s2"])} == {"red bicycle"}
    assert {h.record.id for h in mem.search("red", k=10, where={"c": "red"})} == {ids[0], ids[2]}
    assert [h.record.id for h in mem.search("car", k=10, where={"n.x": 1})] == [ids[2]]
    assert mem.search("red", k=10, where={"c": "purple"}) == []
    assert mem.search("red", k=10, kinds="output", sessions=["s1"])[0].record.id in ids[2:]


def test_sessions_nest_and_are_per_thread(mem):
    seen = {}
    with mem.session("outer"):
        with mem.session("inner"):
            a = mem.add("in inner")

        def other():
            seen["thread"] = mem.current_session

        t = threading.Thread(target=other)
        t.start()
        t.join()
        b = mem.add("in outer")
    c = mem.add("outside")
    assert (mem.get(a).session, mem.get(b).session, mem.get(c).session) == ("inner", "outer", None)
    assert seen["thread"] is None
    assert mem.stats().sessions == {"": 1, "inner": 1, "outer": 1}


def test_parents(mem):
    p = mem.add("task text", kind="task")
    c = mem.add("solution text", kind="solution", parents=[p])
    assert mem.get(c).parents == (p,)
    with pytest.raises(RecordNotFoundError):
        mem.add("orphan", parents=[12345])
    assert len(mem) == 2


def test_delete(mem):
    a, b, c = mem.add_many(["one fish", "two fish", "red fish"])
    mem.delete(b)
    assert [h.record.id for h in mem.search("fish", k=10)] and b not in {h.record.id for h in mem.search("fish", k=10)}
    with pytest.raises(RecordNotFoundError):
        mem.get(b)
    with pytest.raises(RecordNotFoundError):
        mem.delete([a, 999])
    assert mem.get(a).text == "one fish"  # nothing deleted by the failed call
    mem.delete([a, c])
    assert len(mem) == 0 and mem.search("fish") == []


BAD_ADDS = [
    dict(text=""),
    dict(text="   \n"),
    dict(text=None),
    dict(text=42),
    dict(text=b"bytes"),
    dict(text="ok", kind="unknown-kind"),
    dict(text="ok", metadata={"x": {1, 2}}),
    dict(text="ok", metadata={"x": float("nan")}),
    dict(text="ok", metadata={1: "int key"}),
    dict(text="ok", metadata=["not", "a", "dict"]),
    dict(text="ok", importance=-1),
    dict(text="ok", importance=float("inf")),
    dict(text="ok", session=""),
    dict(text="\ud800 lone surrogate"),
    dict(text="x" * 2_000_001),
]


@pytest.mark.parametrize("kwargs", BAD_ADDS)
def test_bad_input_raises_and_writes_nothing(mem, kwargs):
    mem.add("existing memory")
    text = kwargs.pop("text")
    with pytest.raises(InvalidInputError):
        mem.add(text, **kwargs)
    assert len(mem) == 1 and len(mem.search("existing", k=10)) == 1


def test_add_many_is_all_or_nothing(mem):
    with pytest.raises(InvalidInputError, match=r"texts\[2\]"):
        mem.add_many(["fine", "also fine", ""])
    with pytest.raises(InvalidInputError):
        mem.add_many("not a list")
    with pytest.raises(InvalidInputError):
        mem.add_many(["a", "b"], kind=["note"])
    assert len(mem) == 0


@pytest.mark.parametrize("call", [
    lambda m: m.search(""), lambda m: m.search("q", k=0), lambda m: m.search("q", k=2.5),
    lambda m: m.search("q", kinds=[1]), lambda m: m.search("q", where="x"),
    lambda m: m.search("q", where={"bad key!": 1}), lambda m: m.get("1"), lambda m: m.get(True),
    lambda m: m.delete("1"),
])
def test_bad_reads_raise(mem, call):
    mem.add("something")
    with pytest.raises(InvalidInputError):
        call(mem)


def test_errors_are_selfmem_errors_and_builtins():
    assert issubclass(InvalidInputError, ValueError) and issubclass(InvalidInputError, SelfmemError)
    assert issubclass(RecordNotFoundError, KeyError)
    assert "no record" in str(RecordNotFoundError("no record with id 3"))


def test_use_after_close(tmp_path, hash_config):
    m = Memory(tmp_path / "m", hash_config)
    rid = m.add("hello")
    m.close()
    m.close()  # idempotent
    assert m.closed
    for call in (lambda: m.add("x"), lambda: m.search("hello"), lambda: m.get(rid), lambda: len(m),
                 lambda: m.delete(rid), lambda: m.stats(), lambda: m.rebuild()):
        with pytest.raises(MemoryClosedError):
            call()
    with Memory(tmp_path / "m") as m2:
        assert len(m2) == 1


def test_reopen_reads_config_and_returns_same_hits(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as m:
        m.add_many([f"note number {i} about topic {i % 7}" for i in range(50)])
        before = [(h.record.id, round(h.score, 6)) for h in m.search("topic 3", k=5)]
    with Memory(tmp_path / "m") as m:  # config read back from config.toml
        assert m.config == hash_config
        assert [(h.record.id, round(h.score, 6)) for h in m.search("topic 3", k=5)] == before


def test_index_rebuilt_when_missing_or_corrupt(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as m:
        ids = m.add_many(["apples", "pears", "plums"])
    (tmp_path / "m" / "index.faiss").unlink()
    with Memory(tmp_path / "m") as m:
        assert m.search("pears", k=1)[0].record.id == ids[1]
    (tmp_path / "m" / "index.faiss").write_bytes(b"garbage")
    with Memory(tmp_path / "m") as m:
        assert m.search("plums", k=1)[0].record.id == ids[2]


def test_index_reconciled_after_crash(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as m:
        first = m.add_many(["early one", "early two"])
    # a writer that exits without close(): the saved index is now behind the store
    Writer(tmp_path / "m", add=["late arrival one", "late arrival two"], delete=[first[0]], mode="crash").start()
    with Memory(tmp_path / "m") as m:
        assert m.stats().index["size"] == len(m) == 3
        texts = {h.record.text for h in m.search("arrival", k=10)}
        assert {"late arrival one", "late arrival two"} <= texts and "early one" not in texts


def test_embedder_mismatch(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as m:
        m.add("stored with hash:64")
    other = hash_cfg(32)
    with pytest.raises(EmbedderMismatchError, match="re-embed"):
        Memory(tmp_path / "m", other)
    with Memory(tmp_path / "m") as m:  # the failed open changed nothing
        assert len(m) == 1 and m.config == hash_config


def test_custom_embedder_object(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config, general=HashEmbedder(16, seed="s")) as m:
        m.add("custom embedder")
        assert m.stats().embedders["general"]["dim"] == 16


def test_foreign_directory_and_file(tmp_path, hash_config):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(CorruptMemoryError, match="not empty"):
        Memory(tmp_path / "other", hash_config)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError):
        Memory(tmp_path / "afile", hash_config)
    with pytest.raises(InvalidInputError):
        Memory(tmp_path / "missing", hash_config, create=False)
    assert not (tmp_path / "missing").exists()


def test_foreign_duckdb_file(tmp_path, hash_config):
    import duckdb

    (tmp_path / "m").mkdir()
    con = duckdb.connect(str(tmp_path / "m" / "memory.duckdb"))
    con.execute("CREATE TABLE customers (id INT)")
    con.close()
    with pytest.raises(CorruptMemoryError, match="something else"):
        Memory(tmp_path / "m", hash_config)
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "memory.duckdb").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CorruptMemoryError):
        Memory(tmp_path / "n", hash_config)


def test_second_writer_gets_locked_error(tmp_path, hash_config):
    with Writer(tmp_path / "m") as w, pytest.raises(MemoryLockedError, match=str(w.pid)):
        Memory(tmp_path / "m", hash_config)


def test_threads_hammer(mem):
    errors = []

    def worker(n):
        try:
            for i in range(20):
                rid = mem.add(f"thread {n} item {i}")
                assert mem.get(rid).text == f"thread {n} item {i}"
                mem.search(f"thread {n}", k=3)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(mem) == 80
    assert mem.stats().index["size"] == 80


def test_stats_and_rebuild(mem):
    mem.add_many(["a b", "c d"], kind=["note", "task"])
    s = mem.stats()
    assert s.records == 2 and s.kinds == {"note": 1, "task": 1}
    assert s.embedders["general"] == {"name": "hash", "dim": 64, "revision": "blake2b-default"}
    mem.rebuild()
    assert mem.stats().index == {"kind": "flat", "size": 2, "dim": 64, "mode": "general"}
    json.dumps(s.config)


def test_config_toml_written(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config):
        pass
    assert "hash:64" in (tmp_path / "m" / "config.toml").read_text()
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"memory.duckdb", "config.toml", "index.faiss"}
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "m").iterdir())
    assert os.path.getsize(tmp_path / "m" / "index.json") > 0


def test_flags_are_validated(tmp_path, hash_config, mem):
    for kwargs in ({"create": "yes"}, {"reembed": 1}, {"read_only": None}, {"progress": "on"}):
        with pytest.raises(InvalidInputError):
            Memory(tmp_path / "flags", hash_config, **kwargs)
    assert not (tmp_path / "flags").exists()
    with pytest.raises(InvalidInputError):
        mem.rebuild(reembed="no")


def test_created_at_imports_history_and_is_validated(tmp_path, hash_config):
    from datetime import datetime, timedelta, timezone

    from selfmem import InvalidInputError

    with Memory(tmp_path / "m", hash_config) as mem:
        cest = timezone(timedelta(hours=2))
        old = datetime(2023, 5, 8, 13, 56, tzinfo=cest)
        ids = mem.add_many(["lunch with Caroline", "a hike"], session="s1", created_at=[old, old + timedelta(days=1)])
        one = mem.add("later note", created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
        assert mem.get(ids[0]).created_at == datetime(2023, 5, 8, 11, 56, tzinfo=timezone.utc)
        assert mem.get(one).created_at.year == 2024
        got = mem.search("lunch", k=5, since=datetime(2023, 5, 8, tzinfo=timezone.utc),
                         until=datetime(2023, 5, 9, tzinfo=timezone.utc))
        assert [h.record.id for h in got] == [ids[0]]
        n = len(mem)
        for bad in (datetime(2023, 1, 1), "2023-01-01", [old], 1.5):
            with pytest.raises(InvalidInputError, match="created_at"):
                mem.add_many(["x", "y"], created_at=bad)
        assert len(mem) == n
        fresh = mem.add("now")
        assert (datetime.now(timezone.utc) - mem.get(fresh).created_at).total_seconds() < 60


def test_hostile_inputs_are_clear_errors_and_write_nothing(tmp_path, hash_config):
    """Inputs that used to raise raw DuckDB/Python errors or were silently accepted (issue 15)."""
    from click.testing import CliRunner

    from selfmem import InvalidInputError
    from selfmem.cli import cli

    with Memory(tmp_path / "m", hash_config) as mem:
        rid = mem.add("a real note")
        n = len(mem)
        deep: dict = {}
        cur = deep
        for _ in range(100_000):
            cur["a"] = {}
            cur = cur["a"]
        bad_adds = [
            dict(text="x", metadata={"k": "\ud800"}), dict(text="x", session="s\udfff"), dict(text="x", metadata=deep),
            dict(text="x", parents=0), dict(text="x", parents=[2**63]), dict(text="\x00\x00"),
            dict(text="\u200b\u200d\ufeff"), dict(text="\U000E0041\U000E0042"),
        ]
        for kw in bad_adds:
            with pytest.raises(InvalidInputError):
                mem.add(**kw)
        with pytest.raises(InvalidInputError):
            mem.add_many(["x"], parents=[5])
        for bad_id in (2**63, 2**64, -1):
            with pytest.raises(InvalidInputError):
                mem.get(bad_id)
            with pytest.raises(InvalidInputError):
                mem.delete(bad_id)
        with pytest.raises(InvalidInputError, match="unknown kinds"):
            mem.search("note", kinds=["outptu"])
        assert len(mem) == n and mem.get(rid).text == "a real note"
    (tmp_path / "afile").write_text("x")
    for path in (tmp_path / "afile" / "mem", str(tmp_path / "a\x00b")):
        with pytest.raises(InvalidInputError):
            Memory(path, hash_config)
    res = CliRunner().invoke(cli, ["add", str(tmp_path / "new"), "x", "--kind", "nonsense"])
    assert res.exit_code == 6 and not (tmp_path / "new").exists()


def test_own_embedding_too_large_is_rejected(tmp_path):
    import numpy as np

    from selfmem import InvalidInputError

    cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:32", own="hash:16", mode="dual", own_dim=8,
                                                 own_min_fit=20))
    with Memory(tmp_path / "m", cfg) as mem:
        for bad in (np.full(16, 1e30), np.full(16, 1e38)):
            with pytest.raises(InvalidInputError):
                mem.add("x", own_embedding=bad)
        assert len(mem) == 0


def test_one_writer_per_directory_in_a_process(tmp_path, hash_config):
    import gc

    from selfmem import MemoryLockedError

    a = Memory(tmp_path / "m", hash_config)
    a.add("first")
    with pytest.raises(MemoryLockedError, match="already open for writing in this process"):
        Memory(tmp_path / "m", hash_config)
    with pytest.raises(MemoryLockedError):
        Memory(str(tmp_path / "m") + "/", hash_config)  # the same directory spelled differently
    with Memory(tmp_path / "m", read_only=True) as ro:  # readers are fine
        assert len(ro) == 1
    a.close()
    with Memory(tmp_path / "m", hash_config) as b:
        b.add("second")
        assert len(b) == 2
    c = Memory(tmp_path / "m", hash_config)
    del c
    gc.collect()  # a handle dropped without close() frees the directory
    with Memory(tmp_path / "m", hash_config) as d:
        assert len(d) == 2


@pytest.mark.parametrize("name", ["keywords.npz", "topics.npz", "own_whitener.npz", "sentences.npz"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "bit flips"])
def test_a_damaged_derived_file_is_rebuilt_with_a_warning(tmp_path, name, damage):
    import random
    import warnings

    cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:32", own="hash:16", mode="dual", own_dim=8,
                                                 own_min_fit=20), topics=TopicsConfig(min_records=20))
    texts = [f"note {i} about {w}" for i, w in enumerate(["grid", "cell", "blue", "red"] * 10)]
    with Memory(tmp_path / "m", cfg) as mem:
        mem.add_many(texts)
        mem.wait()
        clean = [[h.record.id for h in mem.search(t, k=3)] for t in texts[:8]]
    path = tmp_path / "m" / name
    data = bytearray(path.read_bytes())
    if damage == "empty":
        data = bytearray()
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        rng = random.Random(0)
        for _ in range(20):
            data[rng.randrange(len(data))] ^= 0xFF
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Memory(tmp_path / "m", cfg) as mem:  # was a raw EOFError / BadZipFile on every open
            mem.wait()
            again = [[h.record.id for h in mem.search(t, k=3)] for t in texts[:8]]
    assert again == clean
    assert damage == "bit flips" and name == "topics.npz" or any("damaged" in str(w.message) for w in caught)


@pytest.mark.parametrize("damage", ["half", "bit flips", "empty"])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_damaged_store_is_a_clear_error(tmp_path, hash_config, damage, read_only):
    import random

    from click.testing import CliRunner

    from selfmem.cli import cli

    with Memory(tmp_path / "m", hash_config) as mem:
        mem.add_many([f"note {i} about the grid" for i in range(400)])
    path = tmp_path / "m" / "memory.duckdb"
    data = bytearray(path.read_bytes())
    if damage == "half":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    else:
        rng = random.Random(0)
        for _ in range(200):
            data[rng.randrange(4096, len(data))] ^= 0xFF
    path.write_bytes(bytes(data))
    if read_only:  # readers read the published view, not the store: they keep working; doctor finds it
        with Memory(tmp_path / "m", hash_config, read_only=True) as mem:
            assert len(mem) == 400 and mem.search("grid")
        res = CliRunner().invoke(cli, ["doctor", str(tmp_path / "m")])
        assert res.exit_code == 3 and "memory.duckdb" in res.output and "Traceback" not in res.output
        return
    with pytest.raises(CorruptMemoryError, match="damaged|restore"):  # was a raw duckdb.IOException
        with Memory(tmp_path / "m", hash_config) as mem:
            mem.search("grid")


@pytest.mark.parametrize("name", ["index.faiss", "keywords.npz", "own_whitener.npz", "topics.npz", "sentences.npz"])
def test_a_derived_file_copied_from_another_memory_is_not_used(tmp_path, name):
    import shutil
    import warnings

    if name in ("index.faiss", "keywords.npz", "sentences.npz"):  # no whitening: the two memories' index spaces are the same
        cfg = hash_cfg(32, topics=TopicsConfig(min_records=20))
    else:
        cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:32", own="hash:16", mode="dual", own_dim=8,
                                                     own_min_fit=20), topics=TopicsConfig(min_records=20))
    mine = [f"note {i} about {w}" for i, w in enumerate(["grid", "cell", "blue", "red"] * 10)]
    theirs = [f"entry {i} on {w}" for i, w in enumerate(["sky", "tree", "lake", "rock"] * 10)]
    for path, texts in ((tmp_path / "mine", mine), (tmp_path / "theirs", theirs)):
        with Memory(path, cfg) as mem:  # same config, same ids
            mem.add_many(texts)
            mem.wait()
    with Memory(tmp_path / "mine", cfg) as mem:
        clean = [[h.record.id for h in mem.search(t, k=3)] for t in mine[:10]]
    shutil.copy2(tmp_path / "theirs" / name, tmp_path / "mine" / name)
    if name == "index.faiss":
        shutil.copy2(tmp_path / "theirs" / "index.json", tmp_path / "mine" / "index.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Memory(tmp_path / "mine", cfg) as mem:
            mem.wait()
            again = [[h.record.id for h in mem.search(t, k=3)] for t in mine[:10]]
    assert again == clean  # was: the other memory's vectors, keywords or whitening used silently


def test_bit_flips_in_the_index_are_detected(tmp_path, hash_config):
    import random

    with Memory(tmp_path / "m", hash_config) as mem:
        texts = [f"note {i} about the {w} grid" for i, w in enumerate(["red", "blue", "green", "tiny"] * 13)]
        mem.add_many(texts)
        clean = [[h.record.id for h in mem.search(t, k=5, mode="dense")] for t in texts]
    path = tmp_path / "m" / "index.faiss"
    data = bytearray(path.read_bytes())
    rng = random.Random(0)
    for _ in range(8):
        data[rng.randrange(200, len(data))] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="checksum"):
        with Memory(tmp_path / "m", hash_config) as mem:
            assert [[h.record.id for h in mem.search(t, k=5, mode="dense")] for t in texts] == clean


def test_idempotency_keys_make_retries_safe(tmp_path, hash_config):
    with Memory(tmp_path / "m", hash_config) as mem:
        a = mem.add("first try", key="task-1/attempt-0")
        assert mem.add("first try", key="task-1/attempt-0") == a and len(mem) == 1
        ids = mem.add_many(["x", "y", "z"], keys=["k-x", "task-1/attempt-0", None])
        assert ids[1] == a and len(mem) == 3 and len(set(ids)) == 3
        assert mem.add_many(["x", "y", "z"], keys=["k-x", "task-1/attempt-0", "k-z"])[:2] == ids[:2]
        assert len(mem) == 4
        for bad in (["a", "a"], "ab", [1, 2], ["", None], ["\ud800", None], ["ok"]):
            with pytest.raises(InvalidInputError):
                mem.add_many(["p", "q"], keys=bad)
        assert len(mem) == 4
    with Memory(tmp_path / "m", hash_config) as mem:  # keys survive a reopen
        assert mem.add("first try", key="task-1/attempt-0") == a and len(mem) == 4


def test_a_full_disk_is_a_storage_error_and_loses_nothing(tmp_path, hash_config):
    import os

    from selfmem import StorageError

    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        acked: dict[int, str] = {}
        # the write that meets the full disk depends on timing (the record's insert, or the id sequence's own
        # commit just before it): either way a StorageError that says the file system refused it
        with pytest.raises(StorageError, match=r"file system refused (the|a) write"):
            mem = Memory(mnt / "m", hash_config)
            try:
                for i in range(100_000):
                    text = f"record {i} " + "padding " * 200
                    acked[mem.add(text, key=f"k{i}")] = text
            finally:
                try:
                    mem.close()
                except SelfmemError:
                    pass
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        with Memory(mnt / "m", hash_config) as mem:
            assert len(acked) > 10 and len(mem) >= len(acked)
            for rid, text in acked.items():
                assert mem.get(rid).text == text
            retry = mem.add(f"record {len(acked)} " + "padding " * 200, key=f"k{len(acked)}")
            assert len(mem) == len(acked) + 1 and retry not in acked  # retried once: no duplicate
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_an_interrupted_swap_cannot_save_the_old_index_under_the_new_whitening(tmp_path):
    """A Ctrl-C between swapping in a new whitening and its index used to let close() save the old index
    under the new signature: the memory then could not be opened, or missed most searches (issue 15)."""
    import numpy as np

    from selfmem.retrieval._post import Whitener

    cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own="hash:32", mode="dual", own_dim=16,
                                                 own_min_fit=20), background=False)
    texts = [f"note {i} about {w}" for i, w in enumerate(["grid", "cell", "blue", "red", "tree"] * 6)]
    with Memory(tmp_path / "m", cfg) as mem:
        mem.add_many(texts[:10])  # below own_min_fit: a general-only index (dim 64)
        _, own = mem._state.store.vectors("own")
        # the state a KeyboardInterrupt between the two assignments of VectorPart._set leaves behind:
        mem._state.views.whitener = Whitener(16).fit(np.vstack([own] * 3) + np.random.default_rng(0).normal(0, .01, (30, 32)))
    with Memory(tmp_path / "m", cfg) as mem:  # was: "vectors must have shape (n, 64), got (10, 80)"
        mem.add_many(texts[10:])
        assert all(mem.search(t, k=1, mode="dense")[0].record.text == t for t in texts)
