"""The memory loop on the hash embedder with a small scripted LLM (the real models: test_integration_solver.py)."""

from __future__ import annotations

import time

import pytest

from selfmem import (
    InvalidInputError,
    LLMError,
    Memory,
    SelfmemError,
    TaskTypeError,
)
from selfmem.solver import LLM, Generation, MemorySolver, QATask, QATaskType, Verdict
from helpers import hash_cfg

CFG = hash_cfg(background=False)


class Scripted:
    """A stand-in for a model: answers questions from a table, and counts the prompts it saw."""

    name = "scripted"

    def __init__(self, answers: dict[str, str], default: str = "I do not know") -> None:
        self.answers, self.default, self.prompts = answers, default, []

    def generate(self, prompt, *, max_tokens=256, temperature=0.0, stop=None, seed=None):
        self.prompts.append(prompt)
        text = next((a for q, a in self.answers.items() if q in prompt.split("</past_context>")[-1]), self.default)
        return Generation(text, len(prompt.split()), len(text.split()), "stop", 0.001, self.name)

    def generate_many(self, prompts, **kw):
        return [self.generate(p, **kw) for p in prompts]


TASKS = [QATask("t1", "What colour is the sky on a clear day?", answer="blue"),
         QATask("t2", "How many legs does a spider have?", answer="eight"),
         QATask("t3", "What is the capital of Norway?", answer="Oslo")]


def test_scripted_llm_is_an_llm():
    assert isinstance(Scripted({}), LLM)


def test_solve_records_outputs_tasks_and_solutions(tmp_path):
    llm = Scripted({"sky": "Answer: Blue.", "spider": "six", "Norway": "Oslo"})
    with Memory(tmp_path / "m", CFG) as mem:
        mem.add("Spiders are arachnids with eight legs.", kind="note")
        solver = MemorySolver(llm, mem, QATaskType(), k=3)
        results = solver.solve_all(TASKS, session="run-1")
        assert [r.solved for r in results] == [True, False, True]
        assert results[0].answer == "Blue."
        spider = results[1]
        assert spider.context  # the note enriched its prompt
        recs = [mem.get(i) for i in spider.recorded]
        out = next(r for r in recs if r.kind == "output")
        assert out.parents == spider.context and out.session == "run-1"
        assert out.metadata | {} == out.metadata and out.metadata["task_id"] == "t2"
        assert out.metadata["verified"] is False and out.metadata["model"] == "scripted"
        assert {"prompt_tokens", "completion_tokens", "attempt", "score", "finish_reason"} <= set(out.metadata)
        assert out.importance == pytest.approx(0.3)
        assert [r.kind for r in recs] == ["output", "task"]
        sky = [mem.get(i) for i in results[0].recorded]
        solution = next(r for r in sky if r.kind == "solution")
        assert solution.metadata["solves"] == "t1" and solution.importance == 2.0
        assert "Blue." in solution.text and next(r for r in sky if r.kind == "task").metadata["solved"] is True


def test_a_similar_task_in_a_later_session_sees_the_solution(tmp_path):
    with Memory(tmp_path / "m", CFG) as mem:
        MemorySolver(Scripted({"Norway": "Oslo"}), mem, QATaskType()).solve(TASKS[2])
    llm = Scripted({})
    with Memory(tmp_path / "m", CFG) as mem:  # a new session on the same directory
        res = MemorySolver(llm, mem, QATaskType(), k=2).solve(
            QATask("t9", "What is the capital city of Norway?", answer="Oslo"))
        assert "Answer: Oslo" in llm.prompts[0].split("</past_context>")[0]
        placed = [mem.get(i) for i in res.context]
        assert any(r.kind == "solution" and r.metadata["solves"] == "t3" for r in placed)


def test_repeated_failures_are_merged_not_stored_again(tmp_path):
    task = QATask("hard", "What is the airspeed of an unladen swallow?", answer="24 mph")
    with Memory(tmp_path / "m", CFG) as mem:
        solver = MemorySolver(Scripted({}, default="no idea"), mem, QATaskType(), attempts=3, keep_failures=2)
        for _ in range(5):
            solver.solve(task)
        outputs = [h.record for h in mem.search("swallow", k=50, kinds=["output"])]
        tasks = [h.record for h in mem.search("swallow", k=50, kinds=["task"])]
        assert len(outputs) == 1 and len(tasks) == 1  # 15 identical failures -> one record, one task
        varied = iter(f"guess number {i}" for i in range(100))
        llm = Scripted({})
        llm.generate = lambda prompt, **kw: Generation(next(varied), 1, 1, "stop", 0.0, "scripted")
        MemorySolver(llm, mem, QATaskType(), attempts=4, keep_failures=2).solve(task)
        assert len([h for h in mem.search("swallow guess", k=50, kinds=["output"])]) == 2  # the cap


def test_failing_parts_raise_selfmem_errors_and_record_nothing(tmp_path):
    class Broken(QATaskType):
        name = "broken"

        def verify(self, task, answer):
            raise ZeroDivisionError("bad verifier")

    class Unrenderable(QATaskType):
        def render(self, task):
            raise KeyError("no text")

    class Down(Scripted):
        def generate(self, prompt, **kw):
            raise ConnectionResetError("peer went away")

    with Memory(tmp_path / "m", CFG) as mem:
        before = len(mem)
        with pytest.raises(TaskTypeError, match="bad verifier"):
            MemorySolver(Scripted({"sky": "blue"}), mem, Broken()).solve(TASKS[0])
        with pytest.raises(TaskTypeError, match="render"):
            MemorySolver(Scripted({}), mem, Unrenderable()).solve(TASKS[0])
        with pytest.raises(LLMError, match="ConnectionResetError"):
            MemorySolver(Down({}), mem, QATaskType()).solve(TASKS[0])
        assert len(mem) == before
        for bad in (dict(k=0), dict(attempts=0), dict(budget_tokens=0), dict(keep_failures=-1)):
            with pytest.raises(InvalidInputError):
                MemorySolver(Scripted({}), mem, QATaskType(), **bad)
        with pytest.raises(InvalidInputError):
            MemorySolver(object(), mem, QATaskType())
        with pytest.raises(InvalidInputError):
            MemorySolver(Scripted({}), "not a memory", QATaskType())
    with pytest.raises(InvalidInputError):
        QATask("x", "q")  # neither answer nor check
    assert issubclass(TaskTypeError, SelfmemError) and issubclass(LLMError, SelfmemError)


def test_qa_task_type_parse_and_verify():
    qa = QATaskType()
    assert qa.parse("\n  Answer: Oslo\nbecause ...") == "Oslo"
    assert qa.verify(TASKS[2], "oslo!").ok and not qa.verify(TASKS[2], "Bergen").ok
    custom = QATask("c", "Name an even number.", check=lambda a: a.strip().isdigit() and int(a) % 2 == 0)
    assert qa.verify(custom, "42") == Verdict(True, 1.0, "custom check")


def test_timings_are_reported(tmp_path):
    with Memory(tmp_path / "m", CFG) as mem:
        t = time.perf_counter()
        res = MemorySolver(Scripted({"sky": "blue"}), mem, QATaskType()).solve(TASKS[0])
        wall = time.perf_counter() - t
    assert 0 <= res.retrieve_s + res.generate_s + res.record_s <= wall
