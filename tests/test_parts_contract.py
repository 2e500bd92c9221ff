"""One contract, checked on every derived part (in the spirit of scikit-learn's estimator checks).

Every part of ``Memory._parts`` must: follow the ``DerivedPart`` protocol and name its files; give the
same search results after ``rebuild()`` as it had kept up by ``on_add``/``on_delete``; save and reopen
to the same results; reconcile with records a writer added without closing (a crash); and survive any
of its files being damaged or deleted (rebuilt from the store, then ``doctor`` finds nothing).
"""

from __future__ import annotations

import inspect
import shutil

import pytest

from helpers import Writer, hash_cfg, results, texts
from selfmem import Memory, TopicsConfig, doctor
from selfmem.memory._parts import DerivedPart, Part

CFG = hash_cfg(own=32, own_min_fit=40, background=False, topics=TopicsConfig(min_records=30))
PARTS = ("vector index", "keyword index", "sentence vectors", "topic model", "knowledge graph", "store checkpoint",
         "read view")
PROTOCOL_METHODS = tuple(n for n, v in vars(DerivedPart).items() if inspect.isfunction(v) and not n.startswith("_"))




def refit_keeping_the_space(p: DerivedPart) -> None:
    """``rebuild()``, except that the vector part keeps its whitening (its ``rebuild()`` refits it on every
    record, which changes the index-vector space by design)."""
    rebuild_index = getattr(p, "rebuild_index", None)
    (rebuild_index or p.rebuild)()


def part(mem: Memory, name: str) -> DerivedPart:
    found = [p for p in mem._state.parts if p.name == name]  # this test is about the parts themselves
    assert len(found) == 1, [p.name for p in mem._state.parts]
    return found[0]


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "m"
    with Memory(path, CFG, progress=False) as m:
        with m.session("s1"):
            ids = m.add_many(texts(80))
        m.add_many(texts(30, seed=1), session="s2", parents=[[ids[0]]] * 30)
        m.delete(ids[3:9])
        assert m.topics() and m.stats().index["mode"] == "dual"  # whitening and topics are fitted
    return path


def test_the_memory_has_exactly_these_parts(filled):
    with Memory(filled, progress=False) as m:
        assert tuple(p.name for p in m._state.parts) == PARTS


@pytest.mark.parametrize("name", PARTS)
def test_protocol_and_files(filled, name):
    with Memory(filled, progress=False) as m:
        p = part(m, name)
        # every method of the protocol, with the protocol's parameters (a part's own override included)
        for method in PROTOCOL_METHODS:
            want = list(inspect.signature(getattr(DerivedPart, method)).parameters)
            got = list(inspect.signature(getattr(type(p), method)).parameters)
            assert got == want, f"{name}.{method}{got} differs from the protocol's {want}"
        # a part keeps something: it overrides at least one of the calls that change or rebuild its state
        kept = [m for m in ("write", "on_add", "on_delete", "maintain", "rebuild")
                if getattr(type(p), m) is not getattr(Part, m)]
        assert kept, f"{name} overrides none of the calls that keep it up to date"
        assert isinstance(p.busy, bool) and isinstance(p.notes(), list)
        assert isinstance(p.files, tuple) and all(isinstance(f, str) and "/" not in f for f in p.files)
        others = {f for q in m._state.parts if q is not p for f in q.files}
        assert not set(p.files) & others  # no two parts own one file


@pytest.mark.parametrize("name", PARTS)
def test_rebuild_gives_what_incremental_upkeep_gave(filled, name):
    with Memory(filled, progress=False) as m:
        before = results(m)
        refit_keeping_the_space(part(m, name))
        assert results(m) == before
    assert doctor(filled).healthy


@pytest.mark.parametrize("name", PARTS)
def test_rebuild_is_what_open_builds_from_the_store_alone(filled, name):
    with Memory(filled, progress=False) as m:
        part(m, name).rebuild()
        after = results(m)
        files = part(m, name).files
    for f in files:
        target = filled / f
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    with Memory(filled, progress=False) as m:
        assert results(m) == after


@pytest.mark.parametrize("name", PARTS)
def test_save_and_reopen(filled, name):
    with Memory(filled, progress=False) as m:
        before = results(m)
        part(m, name).save()
    with Memory(filled, progress=False) as m:
        assert results(m) == before


@pytest.mark.parametrize("name", PARTS)
def test_reconciles_with_records_added_by_a_writer_that_crashed(filled, name):
    Writer(filled, add=["a late note about a rotated grid", "a late colour swap"], delete=[1, 2], config=None,
           mode="crash").start()  # adds and deletes, then exits without saving any part
    with Memory(filled, progress=False) as m:
        texts_found = {h.record.text for q in ("late note rotated grid", "late colour swap") for h in m.search(q, k=3)}
        assert {"a late note about a rotated grid", "a late colour swap"} <= texts_found
        assert not {1, 2} & {i for ids in results(m) for i in ids}
        incremental = results(m)
        refit_keeping_the_space(part(m, name))
        assert results(m) == incremental
    assert doctor(filled).healthy


@pytest.mark.parametrize("name", [n for n in PARTS if n not in ("knowledge graph", "store checkpoint")])
@pytest.mark.parametrize("damage", ["garbage", "missing"])
def test_a_damaged_or_missing_file_is_rebuilt(filled, name, damage):
    with Memory(filled, progress=False) as m:
        part(m, name).rebuild()  # what a rebuild from the store alone gives (the whitening on every record)
        before = results(m)
        files = [filled / f for f in part(m, name).files if (filled / f).exists()]
    assert files, f"{name} wrote none of its files"
    for f in files:
        if f.is_dir():
            shutil.rmtree(f) if damage == "missing" else [g.write_bytes(b"garbage") for g in f.iterdir() if g.is_file()]
        elif damage == "missing":
            f.unlink()
        else:
            f.write_bytes(b"\x00garbage" * 10)
    with pytest.warns(RuntimeWarning) if damage == "garbage" and name != "read view" else _nothing():
        with Memory(filled, progress=False) as m:
            assert results(m) == before
    assert doctor(filled).healthy


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
