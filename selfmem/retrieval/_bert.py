"""A small BERT encoder in plain torch, for sentence-transformers directories of the common shape.

``import sentence_transformers`` alone took 3.7 s on the 2-core machine (it imports most of
transformers), so every ``memctl search`` paid 4 s before the first query. A BERT encoder with
mean pooling and normalisation (all-MiniLM-L6-v2's modules) is about sixty lines of torch: it loads
the same ``model.safetensors`` and ``tokenizer.json`` and gives the same vectors (cosine > 0.99999 to
sentence-transformers' in float32; ``tests/test_embeddings_real.py`` checks it). Directories of any
other shape keep using sentence-transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._tensors import Dtype, Tensor

__all__ = ["BertEncoder", "fits", "limits"]


def limits(path: Path) -> tuple[int, int]:
    """The model's token limit (sentence-transformers' ``max_seq_length``) and pad token id, from its configs."""
    cfg = json.loads((path / "config.json").read_text())
    st = json.loads((path / "sentence_bert_config.json").read_text()) if (
        path / "sentence_bert_config.json").is_file() else {}
    return int(st.get("max_seq_length") or cfg["max_position_embeddings"]), int(cfg.get("pad_token_id") or 0)


def fits(path: Path) -> bool:
    """True when ``path`` is Transformer(BertModel) -> mean Pooling [-> Normalize] with a tokenizer.json."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        config = json.loads((path / "config.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text())
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    return (types in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
            and config.get("architectures") == ["BertModel"] and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute" and bool(mean_only)
            and (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file())


class BertEncoder:
    """BERT forward pass + attention-masked mean pooling: token ids (b, t) -> sentence vectors (b, hidden).

    Parameters
    ----------
    path : Path
        A directory that :func:`fits`.
    device : str
    dtype : torch.dtype
    """

    def __init__(self, path: Path, device: str, dtype: Dtype) -> None:
        from safetensors.torch import load_file

        cfg = json.loads((path / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.hidden = int(cfg["hidden_size"])
        self.max_seq_length, self.pad_token_id = limits(path)
        weights = load_file(str(path / "model.safetensors"), device="cpu")
        self.w = {k.removeprefix("bert."): v.to(device=device, dtype=dtype) for k, v in weights.items()
                  if not k.endswith("position_ids")}
        self.device = device

    def __call__(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Mean-pooled last hidden states, shape (b, hidden), in the model's dtype."""
        import torch.nn.functional as F

        w = self.w
        b, t = ids.shape
        h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        h = F.layer_norm(h, (self.hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        keep = mask.bool()[:, None, None, :]  # (b, 1, 1, t): True where a key may be attended to
        d = h.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(x: Tensor, name: str, p: str = p) -> Tensor:
                return F.linear(x, w[p + name + ".weight"], w[p + name + ".bias"])

            q, k, v = (lin(h, f"attention.self.{n}").view(b, t, self.heads, d).transpose(1, 2)
                       for n in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(b, t, -1)
            h = F.layer_norm(lin(a, "attention.output.dense") + h, (self.hidden,), w[p + "attention.output.LayerNorm.weight"],
                             w[p + "attention.output.LayerNorm.bias"], self.eps)
            f = lin(F.gelu(lin(h, "intermediate.dense")), "output.dense")
            h = F.layer_norm(f + h, (self.hidden,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                             self.eps)
        m = mask.to(h.dtype)[:, :, None]
        return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
