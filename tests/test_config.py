import pytest

from selfmem import ConfigError, EmbeddingConfig, IndexConfig, MemoryConfig, SelfmemError
from helpers import hash_cfg


def test_roundtrip(tmp_path):
    cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:32", own=None, mode="general", alpha=0.3, batch_size=8),
                       kinds=("output", "task", "idea"), max_text_chars=500)
    path = tmp_path / "config.toml"
    cfg.write(path)
    assert MemoryConfig.read(path) == cfg


def test_defaults_roundtrip(tmp_path):
    MemoryConfig().write(tmp_path / "c.toml")
    assert MemoryConfig.read(tmp_path / "c.toml") == MemoryConfig()


@pytest.mark.parametrize("kwargs", [
    {"alpha": 1.5}, {"alpha": float("nan")}, {"mode": "fancy"}, {"mode": "dual", "own": None},
    {"batch_size": 0}, {"device": "tpu"}, {"general": ""}, {"own_layer": True},
])
def test_bad_embedding_values(kwargs):
    with pytest.raises(ConfigError):
        EmbeddingConfig(**kwargs)


def test_bad_memory_values():
    with pytest.raises(ConfigError):
        MemoryConfig(kinds=())
    with pytest.raises(ConfigError):
        MemoryConfig(kinds=("has space",))
    with pytest.raises(ConfigError):
        IndexConfig(kind="magic")


def test_newer_version_is_refused(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("config_version = 99\n")
    with pytest.raises(ConfigError, match="upgrade selfmem"):
        MemoryConfig.read(p)


def test_unknown_key_and_bad_toml(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("config_version = 1\n[embedding]\nsurprise = 1\n")
    with pytest.raises(ConfigError, match="surprise"):
        MemoryConfig.read(p)
    p.write_text("this is = = not toml")
    with pytest.raises(SelfmemError, match="not valid TOML"):
        MemoryConfig.read(p)


def test_frozen():
    cfg = MemoryConfig()
    with pytest.raises(AttributeError):
        cfg.max_text_chars = 3  # type: ignore[misc]


def test_a_config_cut_short_is_an_error_not_defaults(tmp_path):
    from selfmem import SearchConfig

    cfg = hash_cfg(search=SearchConfig(mode="dense"), kinds=("note", "idea"))
    p = tmp_path / "config.toml"
    cfg.write(p)
    assert MemoryConfig.read(p) == cfg
    text = p.read_text()
    for cut in (len(text) // 3, text.index("[graph]"), len(text) - 30):
        p.write_text(text[:text.rindex("\n", 0, cut) + 1])  # cut at a line end: still valid TOML
        with pytest.raises(ConfigError, match="cut short"):
            MemoryConfig.read(p)
    p.write_text("config_version = 1\n[search]\nmode = \"dense\"\n")  # written by an older selfmem: still opens
    assert MemoryConfig.read(p).search.mode == "dense"


def test_a_missing_store_beside_derived_files_is_an_error(tmp_path):
    from selfmem import CorruptMemoryError, Memory

    cfg = hash_cfg()
    with Memory(tmp_path / "m", cfg) as mem:
        mem.add("remember me")
    (tmp_path / "m" / "memory.duckdb").unlink()
    with pytest.raises(CorruptMemoryError, match="store is missing"):
        Memory(tmp_path / "m", cfg)
    assert not (tmp_path / "m" / "memory.duckdb").exists()  # nothing new was created


def test_a_config_of_the_previous_version_opens_without_the_keys_added_since(tmp_path):
    """config_version 7 had no embedding.sentences nor search.sentence_weight, 6 no search.length_weight
    either, 5 no search.replies either, 4 no search.entity_weight nor graph.entities either (3 no
    search.feedback either): such a file opens with the defaults; a version-8 file that lacks them was
    damaged."""
    from selfmem import MemoryConfig

    p = tmp_path / "config.toml"
    MemoryConfig().write(p)
    full = p.read_text().splitlines()
    current = [ln for ln in full if not ln.startswith(("sentences =", "sentence_weight ="))]
    assert len(current) == len(full) - 2
    p.write_text("\n".join(current).replace("config_version = 8", "config_version = 7") + "\n")
    cfg = MemoryConfig.read(p)
    assert cfg.embedding.sentences is True and cfg.search.sentence_weight == MemoryConfig().search.sentence_weight
    current = [ln for ln in current if not ln.startswith("length_weight =")]
    p.write_text("\n".join(current).replace("config_version = 8", "config_version = 6") + "\n")
    assert MemoryConfig.read(p).search.length_weight == MemoryConfig().search.length_weight
    whole = [ln for ln in current if not ln.startswith("replies =")]
    p.write_text("\n".join(whole).replace("config_version = 8", "config_version = 5") + "\n")
    assert MemoryConfig.read(p).search.replies is MemoryConfig().search.replies
    lines = [ln for ln in whole if not ln.startswith(("entity_weight =", "entities ="))]
    assert len(lines) == len(whole) - 2
    p.write_text("\n".join(lines).replace("config_version = 8", "config_version = 4") + "\n")
    cfg = MemoryConfig.read(p)
    assert cfg.search.entity_weight == 0.0 and cfg.graph.entities is True
    older = [ln for ln in lines if not ln.startswith(("feedback =", "feedback_weight ="))]
    assert len(older) == len(lines) - 2
    p.write_text("\n".join(older).replace("config_version = 8", "config_version = 3") + "\n")
    cfg = MemoryConfig.read(p)
    assert cfg.search.feedback == 0 and cfg.search.feedback_weight == 0.5 and cfg.search.entity_weight == 0.0
    p.write_text("\n".join(current) + "\n")  # still version 8: a gap is damage
    with pytest.raises(ConfigError, match="sentence"):
        MemoryConfig.read(p)
