"""Does enrichment make the answers right? LoCoMo answer quality with one reader for every memory (issue 29).

Usage::

    python benchmarks/answers.py prompts [--data ../shared/data] [--out runs/answers] [--peers] [--search k=v,...]
    python benchmarks/answers.py read    --out runs/answers [--model smollm2] [--device auto] [--batch 64]
                                         [--resume] [--max-seconds S]
    python benchmarks/answers.py server  --out runs/answers [--system enrich-k50-relevance@512] [--conv conv-26]
    python benchmarks/answers.py score   --out runs/answers [--all] [--against runs/answers-before]

``--search replies=false`` builds selfmem's prompts with another search (the default before a change) into its
own ``--out`` (``--reuse`` with a link to the same ``memories``); ``score --against`` then compares every enrich
system of the two runs on the same questions. ``gpu_run.py pack-reader`` carries the reader to the GPU machine.

The stages are separate so that the reader can run where it is fast (``read`` needs only torch,
transformers and ``gguf``: it runs on the GPU machine with the model carried there):

``prompts`` (CPU): one memory per LoCoMo conversation with the default config, filled as a user fills
one (one ``add_many`` per session, the session's date as ``created_at``; ``retrieval.fill_incrementally``).
For every question and every system a prompt is built *with the same template*:
``build_prompt`` (the enrich block: kind, session, date and cosine distance of each turn, quoted) and the
question, under a token budget of 256 / 512 / 1,024 tokens counted with the reader's tokenizer. Systems:

- ``none``: the question alone;
- ``recent@B``: the most recent turns that fit (a plain context window), oldest first;
- ``enrich-k{K}-{order}@B``: ``Memory.enrich(question, k=K, budget_tokens=B)`` with the default config;
  ``order=time`` shows the memories it chose oldest first (K in 5/20/50);
- ``bm25@B`` / ``dense@B``: the budget filled from ``search(mode="keyword")`` / ``search(mode="dense")``;
- ``mem0@B`` / ``txtai@B`` (``--peers``): mem0 (``infer=False``, the same MiniLM) and txtai hybrid, installed
  in a separate virtual environment by ``benchmarks/_peers.py``; their ranked turns fill the budget.

Turns from rankings that are not selfmem's own show selfmem's dense cosine distance (the same number an
enrich block would show for that turn), so the block differs between systems only in which turns it holds.

``read``: the reader (SmolLM2-135M-Instruct through ``TransformersLLM``, greedy, 32 new tokens at most)
answers every distinct prompt; the system message is the same for all. ``server``: the same reader through a
real OpenAI-compatible server (``transformers serve`` on 127.0.0.1, ``OpenAICompatibleLLM``) on a subset,
compared answer by answer with ``read``.

``score``: LoCoMo's own metric (``task_eval/evaluation.py`` of the LoCoMo release: token F1 after
normalisation and Porter stemming; multi-hop answers split at commas; open-domain answers cut at ';';
adversarial questions score 1 when the answer says "no information available" or "not mentioned"), exact
match (the release's set-of-tokens rule) and the share of answers containing the normalised gold answer,
per system, budget and category. "Overall" is categories 1-4 (the adversarial category 5 is shown
apart, as the peers report it). The enrich setting (k, order) is chosen by leave-one-conversation-out: for
each conversation the setting with the best F1 over the other four (mean of the three budgets) is scored
on it; the held-out F1 is the headline.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import string
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

BUDGETS = (256, 512, 1024)
ENRICH_K = (5, 20, 50)
ORDERS = ("relevance", "time")
_SUFFIX = {"relevance": "", "time": "-time"}
POOL = 50  # turns ranked by every retrieval system; the budget decides how many are placed
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
SYSTEM = ("You answer questions about a long chat between two people, using the notes from it when they "
          "help. Reply with the answer only, in a few words.")
MAX_NEW_TOKENS = 32


# -- the answer and its score (LoCoMo's task_eval/evaluation.py, written here from its definition) ------
def extract_answer(text: str) -> str:
    """The reader's answer: its first non-empty line, without an "Answer:" prefix or wrapping quotes."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(short answer|answer|a)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip('"').strip()[:300]


def normalize(s: str) -> str:
    """Lower case, no commas or punctuation, no articles (a, an, the) nor 'and', single spaces."""
    s = s.replace(",", "").lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the|and)\b", " ", s)
    return " ".join(s.split())


def _stems(s: str) -> list[str]:
    from nltk.stem import PorterStemmer

    ps = _STEMMER.setdefault("ps", PorterStemmer())
    return [ps.stem(w) for w in normalize(s).split()]


_STEMMER: dict[str, Any] = {}


def token_f1(prediction: str, gold: str) -> float:
    """Token F1 of the stemmed, normalised strings."""
    p, g = _stems(prediction), _stems(gold)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def locomo_f1(prediction: str, gold: str, category: int) -> float:
    """The LoCoMo score of one answer for its question category."""
    if category == 5:
        low = prediction.lower()
        return float("no information available" in low or "not mentioned" in low)
    if category == 3:
        gold = gold.split(";")[0].strip()
    if category == 1:
        preds = [p.strip() for p in prediction.split(",")]
        golds = [g.strip() for g in gold.split(",")]
        return sum(max(token_f1(p, g) for p in preds) for g in golds) / len(golds)
    return token_f1(prediction, gold)


def exact_match(prediction: str, gold: str) -> float:
    """LoCoMo's exact match: the same set of normalised tokens."""
    return float(set(normalize(prediction).split()) == set(normalize(gold).split()))


def contains_gold(prediction: str, gold: str) -> float:
    """The normalised gold answer appears in the normalised answer."""
    g = normalize(gold)
    return float(bool(g) and g in normalize(prediction))


# -- stage 1: prompts ------------------------------------------------------------------------------------
def _key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def build_prompts(args: argparse.Namespace) -> None:
    from _data import load_locomo
    from retrieval import fill_incrementally
    from tqdm import tqdm

    from selfmem import Memory, MemoryConfig, SearchConfig
    from selfmem.retrieval._enrich import build_prompt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    convs = load_locomo(args.data)
    if args.conversations:
        convs = [c for c in convs if c.name in args.conversations.split(",")]
    peers = _peer_rankings(convs, out) if args.peers else {}
    ours = not args.peers_only
    rows: list[dict[str, Any]] = []
    prompts: dict[str, str] = {}
    timing: dict[str, list[float]] = defaultdict(list)

    def emit(qid: str, conv: str, q: Any, system: str, budget: int | None, text: str, n_hits: int) -> None:
        pid = _key(text)
        prompts[pid] = text
        rows.append(dict(qid=qid, conv=conv, category=q.category, question=q.question, answer=q.answer,
                         system=system, budget=budget, prompt=pid, placed=n_hits))

    default = MemoryConfig()
    every = default.replace(search=SearchConfig(mode="dense", dedupe=1.0))
    if args.search:  # the selfmem systems with another search, e.g. the default before a change
        default = default.replace(search=replace(default.search, **search_overrides(args.search)))
    for c in tqdm(convs, desc="conversations"):
        path = out / "memories" / c.name
        if not (args.reuse and (path / "memory.duckdb").is_file()):
            fill_incrementally(path, c, default)
        # selfmem's dense cosine distance of every turn to every question, shown for other systems' turns
        with Memory(path, every, progress=False) as mem:
            n = len(mem)
            records = {r.id: r for r in (mem.get(i) for i in range(1, n + 1))}
            by_dia = {r.metadata["dia_id"]: r.id for r in records.values()}
            scored = [{h.record.id: h for h in mem.search(q.question, k=n)} for q in c.questions]
        with Memory(path, default, progress=False) as mem:
            count = mem._state.views.count_tokens  # the reader's tokenizer, as enrich counts
            newest = sorted(records.values(), key=lambda r: (r.created_at, r.id), reverse=True)
            for i, q in enumerate(c.questions):
                qid = f"{c.name}/{i}"
                hits_of = scored[i]

                def as_hits(ids: Iterable[int], hits_of: dict = hits_of) -> list[Any]:
                    return [replace(hits_of[j], rank=r) for r, j in enumerate(ids) if j in hits_of]

                ranked: dict[str, list[Any]] = {}
                for system, table in peers.items():
                    ranked[system] = as_hits(by_dia[d] for d in table.get(qid, []) if d in by_dia)
                for mode, name in (("keyword", "bm25"), ("dense", "dense")):
                    t = time.perf_counter()
                    ranked[name] = mem.search(q.question, k=POOL, mode=mode)
                    timing[f"{name} search"].append(time.perf_counter() - t)
                if not ours:  # the peers in both orders; BM25 and dense oldest first (the first run had them as ranked)
                    for budget in BUDGETS:
                        for name, hits in ranked.items():
                            for order in ORDERS if name in peers else ("time",):
                                built = build_prompt(q.question, hits, budget, count, order)
                                emit(qid, c.name, q, f"{name}{_SUFFIX[order]}@{budget}", budget, built.prompt,
                                     len(built.hits))
                            # at most 5 turns, oldest first: the setting chosen for enrich, given to every ranking
                            built = build_prompt(q.question, hits[:5], budget, count, "time")
                            emit(qid, c.name, q, f"{name}-k5-time@{budget}", budget, built.prompt, len(built.hits))
                    continue
                emit(qid, c.name, q, "none", None, q.question, 0)
                recent = as_hits(r.id for r in newest)
                for budget in BUDGETS:
                    out_r = build_prompt(q.question, recent, budget, count, order="time")
                    emit(qid, c.name, q, f"recent@{budget}", budget, out_r.prompt, len(out_r.hits))
                    for name, hits in ranked.items():
                        built = build_prompt(q.question, hits, budget, count, "relevance")
                        emit(qid, c.name, q, f"{name}@{budget}", budget, built.prompt, len(built.hits))
                    for k in ENRICH_K:
                        t = time.perf_counter()
                        got = mem.enrich(q.question, k=k, budget_tokens=budget, mark_used=False, order="relevance")
                        timing[f"enrich k={k}"].append(time.perf_counter() - t)
                        emit(qid, c.name, q, f"enrich-k{k}-relevance@{budget}", budget, got.prompt, len(got.hits))
                        timed = build_prompt(q.question, got.hits, budget, count, order="time")
                        emit(qid, c.name, q, f"enrich-k{k}-time@{budget}", budget, timed.prompt, len(timed.hits))
                # the library's plain default: enrich(question, budget_tokens=B), k and order left at their defaults
                for budget in BUDGETS:
                    got = mem.enrich(q.question, budget_tokens=budget, mark_used=False)
                    emit(qid, c.name, q, f"enrich-default@{budget}", budget, got.prompt, len(got.hits))
    tag = args.tag or ("-peers" if args.peers_only else "")
    with gzip.open(out / f"prompts{tag}.jsonl.gz", "wt") as fh:
        for pid, text in prompts.items():
            fh.write(json.dumps({"id": pid, "user": text}) + "\n")
    with gzip.open(out / f"rows{tag}.jsonl.gz", "wt") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    (out / f"retrieval_timing{tag}.json").write_text(json.dumps(
        {k: {"n": len(v), "p50_ms": 1000 * sorted(v)[len(v) // 2]} for k, v in timing.items()}, indent=1))
    print(f"{len(rows)} question-system rows, {len(prompts)} distinct prompts -> {out}")


def search_overrides(text: str) -> dict[str, Any]:
    """``"replies=false,feedback=1"`` as SearchConfig fields: true/false, numbers, else the text."""
    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--search takes key=value pairs separated by commas, got {item!r}")
        low = value.strip().lower()
        if low in ("true", "false"):
            out[key.strip()] = low == "true"
            continue
        try:
            out[key.strip()] = int(low) if re.fullmatch(r"-?\d+", low) else float(low)
        except ValueError:
            out[key.strip()] = value.strip()
    return out


def _peer_rankings(convs: list[Any], out: Path) -> dict[str, dict[str, list[str]]]:
    from _peers import ensure_peer_venv, peer_rankings

    python = ensure_peer_venv(out.parent / "peers-venv")
    conversations = [{"id": c.name, "turns": [{"dia_id": t.dia_id, "text": t.record_text(), "date": t.date}
                                              for t in c.turns]} for c in convs]
    questions = [{"id": f"{c.name}/{i}", "conv": c.name, "question": q.question}
                 for c in convs for i, q in enumerate(c.questions)]
    cache = out / "peer_rankings.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    got = peer_rankings(python, conversations, questions, k=POOL, workdir=out / "peers")
    cache.write_text(json.dumps(got))
    return got


# -- stage 2: the reader -----------------------------------------------------------------------------------
def messages(user: str) -> list[dict[str, str]]:
    """The chat every system's prompt is sent as (one system message, written once)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def read(args: argparse.Namespace) -> None:
    from selfmem.solver._transformers_llm import TransformersLLM

    out = Path(args.out)
    with gzip.open(Path(args.prompts or out / "prompts.jsonl.gz"), "rt") as fh:
        prompts = [json.loads(line) for line in fh]
    dest = Path(args.answers or out / "answers.jsonl.gz")
    answers: dict[str, dict[str, Any]] = {}
    if args.resume and dest.is_file():  # a run cut short: its answers kept, the rest read
        answers = load_answers(dest)[1]
        prompts = [p for p in prompts if p["id"] not in answers]
    llm = TransformersLLM(args.model, device=args.device, batch_size=args.batch)
    tok, _ = llm._model()
    lengths = [len(tok(p["user"])["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lengths.__getitem__)  # similar lengths share a batch: less padding
    t0 = time.perf_counter()
    step = args.batch * 8
    import torch

    meta = dict(model=llm.name, device=args.device, cuda=torch.cuda.get_device_name() if torch.cuda.is_available()
                else None, dtype=llm.dtype, batch=args.batch)
    for start in range(0, len(order), step):
        if args.max_seconds and time.perf_counter() - t0 > args.max_seconds:
            print(f"stopped after {args.max_seconds} s: {len(order) - start} prompts left (read again with --resume)")
            break
        part = [prompts[i] for i in order[start:start + step]]
        gens = llm.generate_many([messages(p["user"]) for p in part], max_tokens=MAX_NEW_TOKENS, seed=0)
        for p, g in zip(part, gens):
            answers[p["id"]] = dict(text=g.text, prompt_tokens=g.prompt_tokens, completion_tokens=g.completion_tokens,
                                    latency_s=g.latency_s / min(args.batch, len(part)))
        print(f"read {len(answers)} prompts in {time.perf_counter() - t0:.0f} s", flush=True)
    meta["seconds"] = time.perf_counter() - t0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(dest, "wt") as fh:
        fh.write(json.dumps({"meta": meta}) + "\n")
        for pid, a in answers.items():
            fh.write(json.dumps({"id": pid, **a}) + "\n")
    print(json.dumps(meta))


def load_answers(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The reader's answers of every ``answers*.jsonl.gz`` beside ``path`` (one per ``read`` run)."""
    meta, answers = {}, {}
    for f in sorted(path.parent.glob("answers*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            lines = [json.loads(line) for line in fh]
        meta[f.name] = lines[0]["meta"]
        answers |= {a["id"]: a for a in lines[1:]}
    return meta, answers


def load_rows(out: Path) -> list[dict[str, Any]]:
    rows = []
    for f in sorted(out.glob("rows*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            rows += [json.loads(line) for line in fh]
    return rows


# -- the same reader through a real OpenAI-compatible server ------------------------------------------------
def through_server(args: argparse.Namespace) -> None:
    import os
    import signal
    import socket
    import subprocess

    import httpx

    from selfmem.retrieval._causal import CausalLMWeights
    from selfmem.solver import OpenAICompatibleLLM

    out = Path(args.out)
    rows = [r for r in load_rows(out) if r["system"] == args.system and r["conv"] == args.conv][:args.limit]
    prompts = {}
    for f in sorted(out.glob("prompts*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            prompts |= {p["id"]: p["user"] for p in map(json.loads, fh)}
    _, local = load_answers(out / "answers.jsonl.gz")  # every answers*.jsonl.gz there
    model_dir = CausalLMWeights(args.model).materialise()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Path(sys.executable).parent / "transformers"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([str(cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             str(model_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("transformers serve did not start")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        same = f1s = f1_read = 0.0
        t0 = time.perf_counter()
        with OpenAICompatibleLLM(url + "/v1", str(model_dir), read_timeout=300) as llm:
            for r in rows:
                g = llm.generate(messages(prompts[r["prompt"]]), max_tokens=MAX_NEW_TOKENS, seed=0)
                ans = extract_answer(g.text)
                mine = extract_answer(local[r["prompt"]]["text"])
                same += ans == mine
                f1s += locomo_f1(ans, r["answer"], r["category"])
                f1_read += locomo_f1(mine, r["answer"], r["category"])
        n = max(len(rows), 1)
        print(json.dumps({"system": args.system, "conv": args.conv, "questions": len(rows),
                          "same_answer_as_read": same / n, "f1_server": f1s / n, "f1_read": f1_read / n,
                          "seconds_per_question": (time.perf_counter() - t0) / n}))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- stage 3: scores ---------------------------------------------------------------------------------------
def score_rows(rows: list[dict[str, Any]], answers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row of the systems whose prompts were all read, scored; the others are named on stderr (a read
    of some systems only)."""
    scored = []
    unread = {r["system"] for r in rows if r["prompt"] not in answers}  # a system is scored whole or not at all
    if unread:
        print(f"not read, left out: {', '.join(sorted(unread))}", file=sys.stderr)
    for r in rows:
        if r["system"] in unread:
            continue
        a = answers[r["prompt"]]
        pred = extract_answer(a["text"])
        scored.append(r | dict(pred=pred, f1=locomo_f1(pred, r["answer"], r["category"]),
                               em=exact_match(pred, r["answer"]), contains=contains_gold(pred, r["answer"]),
                               tokens=a["prompt_tokens"], latency=a["latency_s"]))
    return scored


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def table(scored: list[dict[str, Any]], systems: list[str]) -> list[dict[str, Any]]:
    """One row per system: F1 overall (categories 1-4) and per category, EM, contains, tokens, latency."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        by[r["system"]].append(r)
    out = []
    for s in systems:
        rs, main = by[s], [r for r in by[s] if r["category"] != 5]
        row = dict(system=s, n=len(main), f1=_mean(r["f1"] for r in main), em=_mean(r["em"] for r in main),
                   contains=_mean(r["contains"] for r in main), tokens=_mean(r["tokens"] for r in rs),
                   placed=_mean(r["placed"] for r in rs), latency_ms=1000 * _mean(r["latency"] for r in rs))
        for c, name in CATEGORIES.items():
            row[name] = _mean(r["f1"] for r in rs if r["category"] == c)
        out.append(row)
    return out


def held_out(scored: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Leave one conversation out over the enrich settings (k, order); the chosen rows, relabelled."""
    settings = [f"enrich-k{k}-{o}" for k in ENRICH_K for o in ORDERS]
    convs = sorted({r["conv"] for r in scored})
    f1: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in scored:
        if r["category"] != 5 and r["system"].split("@")[0] in settings:
            f1[(r["conv"], r["system"].split("@")[0])].append(r["f1"])
    chosen, picked = [], {}
    for c in convs:
        def dev(s: str, c: str = c) -> float:
            return _mean(x for d in convs if d != c for x in f1[(d, s)])
        best = max(settings, key=dev)
        picked[c] = best
        chosen += [r | dict(system="enrich-held-out@" + r["system"].split("@")[1]) for r in scored
                   if r["conv"] == c and r["system"].split("@")[0] == best]
    return chosen, picked


def paired_difference(scored: list[dict[str, Any]], a: str, b: str, reps: int = 2000) -> tuple[float, float, float]:
    """Mean F1 of system ``a`` minus ``b`` over the same questions (categories 1-4), with a 95% interval
    from a paired bootstrap over questions (seeded)."""
    import numpy as np

    fa = {r["qid"]: r["f1"] for r in scored if r["system"] == a and r["category"] != 5}
    fb = {r["qid"]: r["f1"] for r in scored if r["system"] == b and r["category"] != 5}
    d = np.array([fa[q] - fb[q] for q in sorted(fa.keys() & fb.keys())])
    if not len(d):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(0)
    means = d[rng.integers(0, len(d), size=(reps, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def score(args: argparse.Namespace) -> None:
    out = Path(args.out)
    meta, answers = load_answers(out / "answers.jsonl.gz")
    scored = score_rows(load_rows(out), answers)
    chosen, picked = held_out(scored)
    scored += chosen
    present = sorted({r["system"] for r in scored})
    # enrich-default rows were made when the default order was "relevance": they equal enrich-k5-relevance;
    # the default now (k=5, oldest first) is enrich-k5-time
    base = ["none", *(s for s in present if s.startswith(("recent", "enrich-held-out", "enrich-k5-time", "bm25",
                                                            "dense", "mem0", "txtai")))]
    settings = [s for s in present if s.startswith("enrich-k")]
    fmt: Callable[[float], str] = lambda x: f"{x:.3f}"  # noqa: E731
    cols = ["f1", *CATEGORIES.values(), "em", "contains", "tokens", "placed"]
    lines = ["| system | questions | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for row in table(scored, sorted(base, key=lambda s: (int(s.split("@")[1]) if "@" in s else 0, s))
                     + (settings if args.all else [])):
        lines.append(f"| {row['system']} | {row['n']} | " + " | ".join(
            f"{row[c]:.0f}" if c in ("tokens",) else f"{row[c]:.1f}" if c == "placed" else fmt(row[c])
            for c in cols) + " |")
    print(f"reader: {meta}")
    print("held-out choice per conversation: " + ", ".join(f"{c}: {s}" for c, s in picked.items()))
    lines += ["", "| budget | enrich (held-out) minus | F1 difference [95% paired bootstrap] |", "|---|---|---|"]
    for budget in BUDGETS:
        ours = f"enrich-held-out@{budget}"
        for other in ("none", "recent", "bm25", "dense", "mem0", "mem0-time", "mem0-k5-time", "txtai", "txtai-time",
                      "txtai-k5-time"):
            name = other if other == "none" else f"{other}@{budget}"
            if name in present:
                m, lo, hi = paired_difference(scored, ours, name)
                lines.append(f"| {budget} | {other} | {m:+.3f} [{lo:+.3f}, {hi:+.3f}] |")
    if args.against:  # the same systems from another prompts run (e.g. the search before a change), paired
        theirs = load_answers(Path(args.against) / "answers.jsonl.gz")[1]
        other = score_rows(load_rows(Path(args.against)), answers | theirs)
        other += held_out(other)[0]
        lines += ["", f"| system | this run minus {args.against} | F1 difference [95% paired bootstrap] | "
                  "this run | that run |", "|---|---|---|---|---|"]
        for s in (s for s in present if s.startswith("enrich")):
            here = [r for r in scored if r["system"] == s]
            there = [r | dict(system=s + " (that)") for r in other if r["system"] == s]
            if there:
                m, lo, hi = paired_difference(here + there, s, s + " (that)")
                lines.append(f"| {s} | {m:+.3f} [{lo:+.3f}, {hi:+.3f}] | {table(here, [s])[0]['f1']:.3f} | "
                             f"{table(there, [s + ' (that)'])[0]['f1']:.3f} |")
    print("\n".join(lines))
    (out / "scores.md").write_text("\n".join(lines) + "\n")
    with gzip.open(out / "scored.jsonl.gz", "wt") as fh:
        for r in scored:
            fh.write(json.dumps(r) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["prompts", "read", "server", "score"])
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="runs/answers")
    ap.add_argument("--conversations", default="", help="comma-separated names (default: all five)")
    ap.add_argument("--peers", action="store_true", help="also mem0 and txtai (builds their virtual environment)")
    ap.add_argument("--reuse", action="store_true", help="reuse the memories of an earlier prompts run")
    ap.add_argument("--peers-only", action="store_true", help="only the peers' rows (with --peers --reuse)")
    ap.add_argument("--tag", default="", help="suffix of the prompts/rows files written")
    ap.add_argument("--prompts", default=None)
    ap.add_argument("--answers", default=None)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--resume", action="store_true", help="read: keep the answers already in --answers")
    ap.add_argument("--max-seconds", type=float, default=0, help="read: stop starting new batches after this")
    ap.add_argument("--system", default="enrich-k5-time@512")
    ap.add_argument("--conv", default="conv-26")
    ap.add_argument("--limit", type=int, default=40, help="server: questions sent through the server")
    ap.add_argument("--all", action="store_true", help="score: every enrich setting too")
    ap.add_argument("--search", default="", help="prompts: SearchConfig overrides for selfmem's systems, e.g. "
                    "replies=false (with --tag or another --out)")
    ap.add_argument("--against", default=None, help="score: another prompts run's --out, compared system by "
                    "system on the same questions (its answers may sit in either folder)")
    args = ap.parse_args()
    if args.data is None:
        from _data import DEFAULT_DATA

        args.data = DEFAULT_DATA
    {"prompts": build_prompts, "read": read, "server": through_server, "score": score}[args.stage](args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
