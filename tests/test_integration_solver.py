"""The solver side on real parts: SmolLM2 through transformers, a real `transformers serve` process, the real memory."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from selfmem import LLMResponseError, LLMUnavailableError, Memory
from selfmem.retrieval._causal import CausalLMWeights
from selfmem.solver import Generation, MemorySolver, OpenAICompatibleLLM, QATask, QATaskType, TransformersLLM

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smol():
    return TransformersLLM(device="cpu")


def test_transformers_llm_is_deterministic_and_batches(smol):
    a = smol.generate("Name one colour.", max_tokens=12)
    b = smol.generate([{"role": "user", "content": "Name one colour."}], max_tokens=12)
    assert isinstance(a, Generation) and a.text and a.text == b.text
    assert a.prompt_tokens > 5 and 0 < a.completion_tokens <= 12 and a.model == "SmolLM2-135M-Instruct"
    many = smol.generate_many(["Name one colour.", "Count from one to five."], max_tokens=12)
    assert many[0].text == a.text and many[1].text != a.text
    short = smol.generate("Count from one to twenty, separated by commas.", max_tokens=3)
    assert short.finish_reason == "length" and short.completion_tokens == 3
    cut = smol.generate("Count from one to twenty, separated by commas.", max_tokens=30, stop=[","])
    assert "," not in cut.text and cut.finish_reason == "stop"
    s1 = smol.generate("Say a random word.", max_tokens=8, temperature=1.0, seed=7)
    s2 = smol.generate("Say a random word.", max_tokens=8, temperature=1.0, seed=7)
    assert s1.text == s2.text


def test_one_copy_of_the_weights_serves_the_embedder_and_the_llm(smol):
    from selfmem.retrieval._own import CausalLMEmbedder

    emb = CausalLMEmbedder("smollm2", layer=9, device="cpu")
    emb.embed(["warm up"])
    _, view = emb._load(9)
    _, lm = smol._model()
    assert view.layers[0] is lm.model.layers[0] and view.embed_tokens.weight is lm.model.embed_tokens.weight
    assert len(view.layers) == 9 and len(lm.model.layers) == 30  # the full model is untouched


def test_end_to_end_memory_loop_across_processes(tmp_path, smol):
    path = tmp_path / "mem"
    tasks = [QATask("capital-france", "What is the capital of France?", check=lambda a: "paris" in a.lower()),
             QATask("capital-italy", "What is the capital of Italy?", check=lambda a: "rome" in a.lower())]
    with Memory(path) as mem:
        results = MemorySolver(smol, mem, QATaskType(), k=3, max_tokens=16).solve_all(tasks, session="s1")
        assert results[0].solved, results[0].attempts
        recorded = [mem.get(i) for r in results for i in r.recorded]
        assert {"output", "task", "solution"} <= {r.kind for r in recorded}
        second = [mem.get(i) for i in results[1].recorded if mem.get(i).kind == "output"]
        assert second and second[0].parents == results[1].context and results[1].context  # enriched by the first
    code = f"""
import json
from selfmem import Memory
from selfmem.solver import MemorySolver, QATask, QATaskType, TransformersLLM
llm = TransformersLLM(device="cpu")
with Memory({str(path)!r}) as mem:
    # what the first session left, before this session adds its own answer
    enriched = mem.enrich("Which city is the capital of France?", 3, mark_used=False)
    res = MemorySolver(llm, mem, QATaskType(), k=3, max_tokens=16).solve(
        QATask("capital-france-2", "Which city is the capital of France?", check=lambda a: "paris" in a.lower()))
    placed = [mem.get(i) for i in res.context]
print(json.dumps({{"kinds": [r.kind for r in placed], "solves": [r.metadata.get("solves") for r in placed],
                   "prompt": enriched.prompt}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert "capital-france" in seen["solves"]
    # the first session's verified answer (its wording depends on the CPU's float path) reaches the new prompt
    assert results[0].answer and f"Answer: {results[0].answer}" in seen["prompt"].split("</past_context>")[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """`transformers serve` on the dequantized SmolLM2 weights, on 127.0.0.1 (killed by the last test)."""
    model_dir = CausalLMWeights("smollm2").materialise()
    port = free_port()
    cli = Path(sys.executable).parent / "transformers"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([str(cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             str(model_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("transformers serve did not become healthy in 240 s")
    yield proc, url, str(model_dir)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_openai_compatible_chat_and_completions(server):
    _, url, model = server
    with OpenAICompatibleLLM(url + "/v1", model, read_timeout=300) as llm:
        a = llm.generate("Name one colour.", max_tokens=12)
        b = llm.generate("Name one colour.", max_tokens=12)
        assert a.text and a.text == b.text and a.completion_tokens > 0 and a.finish_reason in ("stop", "length")
        assert [g.text for g in llm.generate_many(["Name one colour."], max_tokens=12)] == [a.text]
    with OpenAICompatibleLLM(url + "/v1", model, endpoint="completions", read_timeout=300) as llm:
        c = llm.generate("The sky is", max_tokens=8)
        assert c.text and c.completion_tokens > 0


def test_openai_compatible_errors_say_what_failed(server):
    _, url, model = server
    with OpenAICompatibleLLM(url + "/nowhere", model, retries=0) as llm:  # a real server, a wrong route
        with pytest.raises(LLMResponseError, match="HTTP 404"):
            llm.generate("hi", max_tokens=2)
    with OpenAICompatibleLLM(f"http://127.0.0.1:{free_port()}/v1", model, retries=2, backoff=0.01) as llm:
        with pytest.raises(LLMUnavailableError, match="after 3 attempts"):
            llm.generate("hi", max_tokens=2)

    class NotTheApi(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.dumps({"result": "hello"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    other = http.server.HTTPServer(("127.0.0.1", 0), NotTheApi)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with OpenAICompatibleLLM(f"http://127.0.0.1:{other.server_port}/v1", model) as llm:
            with pytest.raises(LLMResponseError, match="not an OpenAI completion"):
                llm.generate("hi", max_tokens=2)
    finally:
        other.shutdown()


def test_server_killed_mid_run(server):
    """Last in this module: kills the shared server while a request is generating."""
    proc, url, model = server
    llm = OpenAICompatibleLLM(url + "/v1", model, retries=1, backoff=0.05, read_timeout=300)
    failure: list[BaseException] = []

    def long_request():
        try:
            llm.generate("Write a long story about a dragon.", max_tokens=400)
        except BaseException as exc:  # collected for the assertion below
            failure.append(exc)

    sent = threading.Event()  # the request has left the client: the server is working on it
    llm._client.event_hooks["request"].append(lambda request: sent.set())
    t = threading.Thread(target=long_request)
    t.start()
    assert sent.wait(60)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    t.join(60)
    assert failure and isinstance(failure[0], LLMUnavailableError), failure
    with pytest.raises(LLMUnavailableError):
        llm.generate("hi", max_tokens=2)


def test_generating_leaves_the_embedders_vectors_unchanged(smol):
    """The tokenizer is shared: a padded batch in the LLM must not pad the embedder's texts afterwards."""
    from selfmem.retrieval._own import CausalLMEmbedder

    texts = ["A short one.", "A much longer text about grids, colours and the way they are rotated."]
    emb = CausalLMEmbedder("smollm2", layer=9, device="cpu")
    before = emb.embed(texts)
    smol.generate_many(["Hi", "Tell me something about grids and colours, please."], max_tokens=4)
    after = emb.embed(texts)
    alone = emb.embed(texts[:1])
    assert abs(after - before).max() < 1e-5 and abs(after[0] - alone[0]).max() < 2e-2
