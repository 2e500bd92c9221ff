"""The first layers of a Llama-architecture model in plain torch, for own-model embeddings.

The own embedder pools one early layer (layer 6 of SmolLM2's 30). Loading the whole causal LM through
transformers took 3 s of a 5 s ``memctl search`` (importing its model and tokenizer machinery), and
held all 30 layers in memory. When no full model is loaded in the process already (a solver's LLM
shares its weights with the embedder instead), :class:`LlamaPrefix` loads just the embedding table
and the first ``layers`` blocks from the same safetensors file and runs them: RMSNorm, rotary
attention with grouped key/value heads, SwiGLU. The pooled vectors match transformers' within the
dtype's rounding (``tests/test_embeddings_real.py`` compares them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .._types import JSON
from ._tensors import Dtype, Tensor

__all__ = ["LlamaPrefix", "fits", "special_ids"]


def special_ids(cfg: dict[str, JSON]) -> tuple[int, int]:
    """The EOS and pad token ids of a Llama config (pad falls back to EOS)."""
    eos = int(cfg.get("eos_token_id") or 0)
    pad = cfg.get("pad_token_id")
    return eos, int(eos if pad is None else pad)


def fits(path: Path) -> bool:
    """True when ``path`` holds a plain Llama config (default rotary embedding, no biases) and one safetensors file."""
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    return (cfg.get("model_type") == "llama" and cfg.get("hidden_act") == "silu"
            and not cfg.get("attention_bias") and not cfg.get("mlp_bias")
            and rope.get("rope_type", "default") == "default" and (path / "model.safetensors").is_file()
            and (path / "tokenizer.json").is_file())


class LlamaPrefix:
    """Embedding table + the first ``layers`` decoder blocks: token ids (b, t) -> hidden states (b, t, hidden).

    Parameters
    ----------
    path : Path
        A directory that :func:`fits`.
    layers : int
        Blocks to load and run (the output is the raw output of block ``layers``, no final norm).
    device : str
    dtype : torch.dtype
    """

    def __init__(self, path: Path, layers: int, device: str, dtype: Dtype) -> None:
        from safetensors import safe_open

        cfg = json.loads((path / "config.json").read_text())
        self.layers = layers
        self.heads = int(cfg["num_attention_heads"])
        self.kv_heads = int(cfg.get("num_key_value_heads") or self.heads)
        self.head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // self.heads)
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        rope = cfg.get("rope_parameters") or {}
        self.theta = float(rope.get("rope_theta") or cfg.get("rope_theta") or 10000.0)
        self.eos_token_id, self.pad_token_id = special_ids(cfg)
        keep = ("model.embed_tokens.",) + tuple(f"model.layers.{i}." for i in range(layers))
        with safe_open(str(path / "model.safetensors"), framework="pt", device="cpu") as f:
            self.w = {k.removeprefix("model."): f.get_tensor(k).to(device=device, dtype=dtype)
                      for k in f.keys() if k.startswith(keep)}
        self.device = device
        self.dtype = dtype

    def _rms(self, x: Tensor, weight: Tensor) -> Tensor:
        import torch

        xf = x.float()
        return weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)

    def _rotary(self, t: int) -> tuple[Tensor, Tensor]:
        import torch

        inv = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=self.device)
                                    / self.head_dim))
        freqs = torch.outer(torch.arange(t, dtype=torch.float32, device=self.device), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    def __call__(self, ids: Tensor, mask: Tensor, outputs: Sequence[int]) -> dict[int, Tensor]:
        """Outputs of the 1-based blocks ``outputs`` (each <= ``layers``) for right-padded ``ids`` (b, t) with
        ``mask`` (b, t): {block: (b, t, hidden)}."""
        import torch
        import torch.nn.functional as F

        w = self.w
        b, t = ids.shape
        h = w["embed_tokens.weight"][ids]
        cos, sin = self._rotary(t)

        def rotate(x: Tensor) -> Tensor:
            half = x.shape[-1] // 2
            return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

        causal = torch.ones(t, t, dtype=torch.bool, device=self.device).tril()
        allowed = causal[None, None] & mask.bool()[:, None, None, :]  # (b, 1, t, t)
        group = self.heads // self.kv_heads
        out = {}
        for i in range(max(outputs)):
            p = f"layers.{i}."
            x = self._rms(h, w[p + "input_layernorm.weight"])
            q = F.linear(x, w[p + "self_attn.q_proj.weight"]).view(b, t, self.heads, self.head_dim).transpose(1, 2)
            k = F.linear(x, w[p + "self_attn.k_proj.weight"]).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
            v = F.linear(x, w[p + "self_attn.v_proj.weight"]).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = rotate(q), rotate(k)
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).transpose(1, 2).reshape(b, t, -1)
            h = h + F.linear(a, w[p + "self_attn.o_proj.weight"])
            x = self._rms(h, w[p + "post_attention_layernorm.weight"])
            h = h + F.linear(F.silu(F.linear(x, w[p + "mlp.gate_proj.weight"])) * F.linear(x, w[p + "mlp.up_proj.weight"]),
                             w[p + "mlp.down_proj.weight"])
            if i + 1 in outputs:
                out[i + 1] = h
        return out
