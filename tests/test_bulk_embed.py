"""The bulk embedding pipeline (selfmem.retrieval._bulk): batching, and the pipeline on CPU with a toy model."""

from __future__ import annotations

import numpy as np

from selfmem.retrieval import _bulk
from selfmem.retrieval._embedders import HashEmbedder


def test_pack_batches_cover_every_text_once_under_the_budget() -> None:
    rng = np.random.default_rng(0)
    encs = [list(rng.integers(1, 100, size=int(n))) for n in rng.integers(1, 40, size=300)]
    got = _bulk.pack_batches(encs, pad_id=0, token_budget=256, max_rows=50)
    rows = np.concatenate([r for r, _, _ in got])
    assert sorted(rows.tolist()) == list(range(len(encs)))
    for r, ids, mask in got:
        assert ids.shape == mask.shape and ids.shape[0] <= 50
        assert ids.size <= max(256, ids.shape[1])
        for row, i in enumerate(r):
            n = len(encs[i])
            assert ids[row, :n].tolist() == encs[i] and mask[row].sum() == n and (ids[row, n:] == 0).all()


def _toy_role(name: str, dim: int) -> _bulk._Role:
    """Token ids are the characters' codes; the 'model' is a fixed embedding table, mean-pooled."""
    import torch

    table = torch.randn(256, dim, generator=torch.Generator().manual_seed(dim))

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [[ord(c) % 256 for c in t] or [0] for t in texts]

    def model_on(device: str):
        def run(ids, mask):
            m = mask.unsqueeze(-1).float()
            return (table[ids] * m).sum(1) / m.sum(1)
        return run

    return _bulk._Role(name, dim, 0, tokenize, model_on)


def test_pipeline_matches_a_direct_computation_in_order() -> None:
    import torch

    texts = [f"text number {i} " + "x" * (i % 13) for i in range(1000)]
    roles = [_toy_role("general", 8), _toy_role("own", 5)]
    got = _bulk.run_pipeline(roles, texts, ["cpu", "cpu"], chunk=97, workers=3)
    for role in roles:
        run = role.model_on("cpu")
        want = []
        for t in texts:
            ids = torch.tensor([role.tokenize([t])[0]])
            want.append(torch.nn.functional.normalize(run(ids, torch.ones_like(ids)), dim=-1)[0].numpy())
        assert np.allclose(got[role.name], np.stack(want), atol=1e-5)


def test_bulk_embed_leaves_cpu_and_hash_embedders_to_the_ordinary_path() -> None:
    texts = [f"t {i}" for i in range(_bulk.BULK_MIN + 1)]
    assert _bulk.bulk_embed({"general": HashEmbedder(16)}, texts) == {}
    assert _bulk.bulk_embed({"general": HashEmbedder(16)}, texts[:3]) == {}


def test_pipeline_tokenizes_in_worker_processes_with_truncation_counted() -> None:
    import dataclasses

    from tokenizers import Tokenizer, models, pre_tokenizers

    words = [f"w{i}" for i in range(50)]
    tok = Tokenizer(models.WordLevel({w: i + 1 for i, w in enumerate(words)} | {"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [" ".join(words[(i * 7 + j) % 50] for j in range(1 + i % 9)) for i in range(300)]
    cuts: list[int] = []
    role = dataclasses.replace(_toy_role("own", 6), spec=(tok.to_str(), False, 6, 1, 0), on_cut=cuts.append)
    table_run = role.model_on("cpu")
    role = dataclasses.replace(role, model_on=lambda device: lambda ids, mask: table_run(ids % 256, mask))
    got = _bulk.run_pipeline([role], texts, ["cpu"], chunk=64, workers=2)["own"]
    import torch

    for i in (0, 8, 17, 299):
        ids = torch.tensor([tok.encode(texts[i], add_special_tokens=False).ids[:6]])
        want = torch.nn.functional.normalize(table_run(ids, torch.ones_like(ids)), dim=-1)[0].numpy()
        assert np.allclose(got[i], want, atol=1e-5)
    assert sum(cuts) == sum(1 + i % 9 > 6 for i in range(300))
