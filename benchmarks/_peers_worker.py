"""Worker for ``_peers.py``: runs INSIDE the peers' venv (mem0ai==2.2.1, txtai==9.14.0).

Usage: ``python _peers_worker.py INPUT.json OUTPUT.json`` (``_peers.peer_rankings`` writes
the input and sets the environment: HF offline, mem0 telemetry off, HOME/MEM0_DIR in the
work folder).  For each conversation it builds, from scratch:

* mem0: ``Memory`` with a local on-disk Qdrant store in the work folder, the huggingface
  (sentence-transformers) embedder on the local all-MiniLM-L6-v2 folder (384 dims), and
  every turn added verbatim with ``add(text, user_id=conv, infer=False,
  metadata={"dia_id": ...})`` (one call per turn: metadata is per call).  mem0 insists on
  an LLM at construction, so it gets an OpenAI config with a dummy key and a loopback
  base URL; its ``generate_response`` is replaced by a counter that raises, so any LLM
  use would fail loudly (the count is reported and must be 0).
* txtai: ``Embeddings(path=<MiniLM>, method="sentence-transformers", hybrid=True,
  content=True)``, i.e. dense MiniLM + BM25 with score fusion, ids = dia_ids.

Then each question of that conversation is searched with top-k and mapped back to
dia_ids.  Output JSON: ``rankings`` ({system: {qid: [dia_id, ...]}}), ``timing`` (per
system: model/index construction, ingest, per-query latency) and ``checks`` (stored
memory counts vs turns, LLM calls, network attempts, which optional mem0 scoring
features were active).  Sockets to anything but loopback are refused and recorded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LOOPBACK = ("127.", "::1", "localhost")
NETWORK_ATTEMPTS: list[str] = []


def _guard_network() -> None:
    """Refuse (and record) every socket connection or DNS lookup that is not loopback/unix."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def allowed(address: Any) -> bool:
        if isinstance(address, (str, bytes)):  # AF_UNIX path
            return True
        host = str(address[0]) if isinstance(address, tuple) and address else str(address)
        return host.startswith(_LOOPBACK)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family == getattr(socket, "AF_UNIX", None) or allowed(address):
            return real_connect(self, address)
        NETWORK_ATTEMPTS.append(f"connect {address!r}")
        raise ConnectionRefusedError(f"network disabled in the peer worker: {address!r}")

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family == getattr(socket, "AF_UNIX", None) or allowed(address):
            return real_connect_ex(self, address)
        NETWORK_ATTEMPTS.append(f"connect {address!r}")
        return 111

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is None or allowed((host,)):
            return real_getaddrinfo(host, *args, **kwargs)
        NETWORK_ATTEMPTS.append(f"resolve {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"network disabled in the peer worker: {host!r}")

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _stats(latencies_s: list[float]) -> dict[str, float]:
    if not latencies_s:
        return {}
    ms = sorted(x * 1000 for x in latencies_s)
    return {
        "mean": round(statistics.fmean(ms), 3),
        "p50": round(ms[len(ms) // 2], 3),
        "p95": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 3),
        "max": round(ms[-1], 3),
    }


def _dedupe(ids: list[str], k: int) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in ids:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out[:k]


class _Peer:
    """One system over one conversation: build(turns), then rank(question)."""

    def build(self, turns: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def rank(self, question: str, k: int) -> list[str]:
        raise NotImplementedError

    def checks(self, turns: list[dict[str, Any]]) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class Mem0Peer(_Peer):
    def __init__(self, conv_id: str, index: int, model_path: str, workdir: Path) -> None:
        from mem0 import Memory

        self.conv_id = conv_id
        self.llm_calls = 0
        store = workdir / "mem0" / f"qdrant-{index}"
        config = {
            "vector_store": {
                "provider": "qdrant",
                "config": {
                    "collection_name": f"locomo_{index}",
                    "embedding_model_dims": 384,
                    "path": str(store),
                    "on_disk": True,
                },
            },
            "embedder": {
                "provider": "huggingface",
                "config": {"model": model_path, "embedding_dims": 384, "model_kwargs": {"device": "cpu"}},
            },
            "llm": {
                "provider": "openai",
                "config": {"api_key": "sk-dummy-never-used", "openai_base_url": "http://127.0.0.1:9/v1"},
            },
            "history_db_path": str(workdir / "mem0" / f"history-{index}.db"),
        }
        self.memory = Memory.from_config(config)

        def no_llm(*args: Any, **kwargs: Any) -> Any:
            self.llm_calls += 1
            raise RuntimeError("mem0 tried to call its LLM although infer=False")

        self.memory.llm.generate_response = no_llm  # type: ignore[method-assign]

    def build(self, turns: list[dict[str, Any]]) -> None:
        for t in turns:
            self.memory.add(t["text"], user_id=self.conv_id, infer=False, metadata={"dia_id": t["dia_id"]})

    def rank(self, question: str, k: int) -> list[str]:
        res = self.memory.search(question, top_k=k, filters={"user_id": self.conv_id}, threshold=0.0)
        return _dedupe([str((r.get("metadata") or {}).get("dia_id")) for r in res["results"]], k)

    def checks(self, turns: list[dict[str, Any]]) -> dict[str, Any]:
        stored = self.memory.get_all(filters={"user_id": self.conv_id}, top_k=len(turns) + 100)["results"]
        got = sorted(((m.get("metadata") or {}).get("dia_id", ""), m["memory"]) for m in stored)
        want = sorted((t["dia_id"], t["text"]) for t in turns)
        out: dict[str, Any] = {"turns": len(turns), "stored": len(stored), "verbatim": got == want}
        try:  # which of mem0's optional scoring signals are live (both need downloads)
            from mem0.utils.spacy_models import get_nlp_full

            out["bm25_active"] = self.memory.vector_store._get_bm25_encoder() is not None
            out["entity_boost_active"] = get_nlp_full() is not None
        except Exception as e:  # private API; informative only
            out["features_error"] = repr(e)
        return out

    def close(self) -> None:
        try:
            self.memory.vector_store.client.close()
        except Exception:
            pass


class TxtaiPeer(_Peer):
    def __init__(self, conv_id: str, index: int, model_path: str, workdir: Path) -> None:
        from txtai import Embeddings

        self.embeddings = Embeddings(path=model_path, method="sentence-transformers", hybrid=True, content=True)

    def build(self, turns: list[dict[str, Any]]) -> None:
        self.embeddings.index([{"id": t["dia_id"], "text": t["text"]} for t in turns])

    def rank(self, question: str, k: int) -> list[str]:
        return _dedupe([str(r["id"]) for r in self.embeddings.search(question, k)], k)

    def checks(self, turns: list[dict[str, Any]]) -> dict[str, Any]:
        return {"turns": len(turns), "stored": int(self.embeddings.count())}

    def close(self) -> None:
        self.embeddings.close()


PEERS: dict[str, Callable[[str, int, str, Path], _Peer]] = {"mem0": Mem0Peer, "txtai": TxtaiPeer}


def run(data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    k = int(data["k"])
    shutil.rmtree(workdir / "mem0", ignore_errors=True)  # every run starts from empty stores
    model_path = data["model_path"]
    convs = data["conversations"]
    by_conv: dict[str, list[dict[str, Any]]] = {}
    for q in data["questions"]:
        by_conv.setdefault(q["conv"], []).append(q)
    rankings: dict[str, dict[str, list[str]]] = {}
    timing: dict[str, Any] = {}
    checks: dict[str, Any] = {}
    for system in data["systems"]:
        ranks: dict[str, list[str]] = {}
        latencies: list[float] = []
        per_conv: dict[str, Any] = {}
        sys_checks: dict[str, Any] = {}
        init_s = ingest_s = 0.0
        n_turns = 0
        t_sys = time.perf_counter()
        for i, conv in enumerate(convs):
            questions = by_conv.get(conv["id"], [])
            turns = conv["turns"]
            t0 = time.perf_counter()
            peer = PEERS[system](conv["id"], i, model_path, workdir)
            t1 = time.perf_counter()
            peer.build(turns)
            t2 = time.perf_counter()
            conv_lat = []
            for q in questions:
                tq = time.perf_counter()
                ranks[q["id"]] = peer.rank(q["question"], k)
                conv_lat.append(time.perf_counter() - tq)
            sys_checks[conv["id"]] = peer.checks(turns)
            if isinstance(peer, Mem0Peer):
                sys_checks[conv["id"]]["llm_calls"] = peer.llm_calls
            peer.close()
            init_s += t1 - t0
            ingest_s += t2 - t1
            n_turns += len(turns)
            latencies += conv_lat
            per_conv[conv["id"]] = {
                "init_s": round(t1 - t0, 3),
                "ingest_s": round(t2 - t1, 3),
                "turns": len(turns),
                "queries": len(conv_lat),
                "query_ms": _stats(conv_lat),
            }
            print(
                f"[peers] {system} {conv['id']}: {len(turns)} turns in {t2 - t1:.1f}s, "
                f"{len(conv_lat)} queries, mean {statistics.fmean(conv_lat) * 1000 if conv_lat else 0:.1f} ms",
                flush=True,
            )
        rankings[system] = ranks
        checks[system] = sys_checks
        timing[system] = {
            "total_s": round(time.perf_counter() - t_sys, 3),
            "init_s": round(init_s, 3),
            "ingest_s": round(ingest_s, 3),
            "ingest_ms_per_turn": round(1000 * ingest_s / max(n_turns, 1), 3),
            "turns": n_turns,
            "queries": len(latencies),
            "query_ms": _stats(latencies),
            "per_conversation": per_conv,
        }
    checks["network_attempts"] = list(NETWORK_ATTEMPTS)
    return {"k": k, "rankings": rankings, "timing": timing, "checks": checks}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: _peers_worker.py INPUT.json OUTPUT.json", file=sys.stderr)
        return 2
    _guard_network()
    _quiet()
    inp, out = Path(argv[1]), Path(argv[2])
    data = json.loads(inp.read_text())
    result = run(data, out.parent)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
