"""Sentence vectors (``embedding.sentences``) and the sentence term of search (``search.sentence_weight``)."""

import dataclasses

import numpy as np
import pytest

from selfmem import ConfigError, EmbeddingConfig, Memory, SearchConfig
from selfmem.memory._part_sentences import SENTENCES_FILE
from selfmem.retrieval._sentences import MAX_UNITS, best_match, rerank, sentence_units


def test_sentence_units_carry_the_speaker_label():
    assert sentence_units("Caroline: I ran a race. It was for charity! Why? Fun") == [
        "Caroline: I ran a race.", "Caroline: It was for charity!", "Caroline: Why?", "Caroline: Fun"]
    assert sentence_units("one line\nanother line") == ["one line", "another line"]
    assert sentence_units("see http://example.org: it works. Really.") == [
        "see http://example.org: it works.", "Really."]  # a colon late in a sentence is not a label
    long_label = "this is far too long a label: text. more"
    assert sentence_units(long_label) == ["this is far too long a label: text.", "more"]
    assert sentence_units("   ") == ["   "]  # never empty
    many = sentence_units("Bo: " + " ".join(f"s{i}." for i in range(40)))
    assert len(many) == MAX_UNITS and all(u.startswith("Bo: ") for u in many)
    assert many[-1].endswith("s39.") and "s15." in many[-1]  # the rest joined into the last unit


def test_best_match_and_rerank():
    q = np.array([1.0, 0.0], np.float32)
    units = [np.array([[0.0, 1.0], [1.0, 0.0]], np.float16), None, np.array([[0.6, 0.8]], np.float16)]
    best = best_match(units, q)
    assert best[0] == pytest.approx(1.0) and np.isnan(best[1]) and best[2] == pytest.approx(0.6, abs=1e-3)
    assert rerank(np.array([0.1, 0.2, 0.9]), 0.0).tolist() == [0, 1, 2]  # weight 0: the order kept
    assert rerank(np.array([0.1, 0.2, 0.9]), 5.0).tolist()[0] == 2  # a strong best match moves up
    assert rerank(np.array([0.5, np.nan, 0.5]), 5.0).tolist() == [0, 1, 2]  # all alike, unknown at 0: kept
    assert rerank(np.array([]), 5.0).tolist() == []


DILUTED = ("zebra crossing road. The weather was cold. We ate soup with bread. Trains were late again. "
           "My aunt called about the garden. The cat slept all afternoon.")
FILLER = [f"note {i} about apples pears and plums number {i}" for i in range(40)]


def _first(tmp_path, hash_config, name, weight, sentences=True):
    emb = dataclasses.replace(hash_config.embedding, sentences=sentences)
    cfg = hash_config.replace(embedding=emb, search=SearchConfig(length_weight=0.0, sentence_weight=weight, dedupe=1.0))
    with Memory(tmp_path / name, cfg) as m:
        ids = m.add_many([DILUTED, "zebra crossing", *FILLER])
        got = m.search("zebra crossing road", k=3)
        return ids, [h.record.id for h in got], [h.rank for h in got]


def test_a_memory_with_a_sentence_that_matches_moves_up(tmp_path, hash_config):
    ids, order, ranks = _first(tmp_path, hash_config, "off", 0.0)
    assert order[0] == ids[1]  # the whole diluted text matches worse than the short one
    ids, order, ranks = _first(tmp_path, hash_config, "on", 10.0)
    assert order[0] == ids[0] and ranks == [0, 1, 2]  # its first sentence is the query: it moves up
    ids, order, _ = _first(tmp_path, hash_config, "none", 10.0, sentences=False)
    assert order[0] == ids[1]  # no sentence vectors kept: the term has nothing to read
    assert not (tmp_path / "none" / SENTENCES_FILE).exists()


def test_sentence_vectors_are_saved_forgotten_and_rebuilt(tmp_path, hash_config):
    path = tmp_path / "m"
    with Memory(path, hash_config) as m:
        a, b = m.add_many(["Ann: one. two.", "Bo: three"])
        units = m._state.sentences.units
        assert {i: len(u) for i, u in units.items()} == {a: 2, b: 1}
        m.delete(a)
        assert set(units) == {b}
    assert (path / SENTENCES_FILE).is_file()
    with Memory(path, hash_config) as m:  # loaded from the file
        assert set(m._state.sentences.units) == {b} and m._state.sentences.since == 0
        assert not [n for n in m.stats().notes if "sentence" in n]
    (path / SENTENCES_FILE).unlink()  # lost (a crash before the first save): embedded again at open
    with Memory(path, hash_config) as m:
        assert set(m._state.sentences.units) == {b}
    (path / SENTENCES_FILE).write_bytes(b"not an npz")  # damaged: derived, so embedded again whole
    with pytest.warns(RuntimeWarning, match=SENTENCES_FILE):
        with Memory(path, hash_config) as m:
            assert set(m._state.sentences.units) == {b}


def test_a_memory_from_before_sentences_embeds_its_old_records_on_rebuild(tmp_path, hash_config):
    path = tmp_path / "m"
    off = hash_config.replace(embedding=dataclasses.replace(hash_config.embedding, sentences=False))
    with Memory(path, off) as m:  # as a memory made by an older version: no sentence vectors kept
        a, b = m.add_many(["Ann: one. two.", "Bo: three"])
    assert not (path / SENTENCES_FILE).exists()
    with Memory(path, hash_config) as m:
        c = m.add("Cy: four. five.")
        part = m._state.sentences
        assert set(part.units) == {c} and part.since == b  # the old records are not embedded at open
        assert [n for n in m.stats().notes if "rebuild" in n and "sentence" in n]
    with Memory(path, hash_config) as m:  # every process of the store agrees on where they start
        assert set(m._state.sentences.units) == {c} and m._state.sentences.since == b
        m.rebuild()
        assert set(m._state.sentences.units) == {a, b, c} and m._state.sentences.since == 0
        assert not [n for n in m.stats().notes if "sentence" in n]


def test_sentence_config_is_checked():
    with pytest.raises(ConfigError, match="sentences"):
        EmbeddingConfig(sentences="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sentence_weight"):
        SearchConfig(sentence_weight=-1.0)


def test_a_reader_uses_what_the_writer_saved_and_embeds_nothing(tmp_path, hash_config, monkeypatch):
    from selfmem.memory import _part_sentences

    path = tmp_path / "m"
    with Memory(path, hash_config) as w:
        first = w.add_many(["Ann: one. two.", "Bo: three"])
    monkeypatch.setattr(_part_sentences, "SAVE_AFTER", 4)
    with Memory(path, hash_config) as w:
        late = w.add("Cy: four. five.")
        with Memory(path, hash_config, read_only=True) as r:
            assert set(r._state.sentences.units) == set(first)  # the writer has not saved `late` yet
            assert r.search("one two", k=2)
        w.add("Dee: six.")  # four held: saved while the writer is open
        with Memory(path, hash_config, read_only=True) as r:
            assert set(r._state.sentences.units) == {*first, late, late + 1}
