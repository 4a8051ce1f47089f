# `make run` and `make test` each create .venv if it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-unit test-integration lint typecheck bench clean

$(BIN)/dataops: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: its CPU wheel is on disk; a looser resolve pulls CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/dataops

run: $(BIN)/dataops
	$(BIN)/dataops demo

test: $(BIN)/dataops
	$(BIN)/ruff check .
	$(BIN)/mypy
	# The replay eval set gates on evals/thresholds.yaml (exit 1 on a miss).
	$(BIN)/dataops eval run evals/cases --memory off --report .dataops/eval-report-memory-off.md
	$(BIN)/dataops eval run evals/cases --memory on --report .dataops/eval-report-memory-on.md
	$(BIN)/python -m pytest -q

test-unit: $(BIN)/dataops
	$(BIN)/python -m pytest -q -m "not integration"

test-integration: $(BIN)/dataops
	$(BIN)/python -m pytest -q -m integration

lint: $(BIN)/dataops
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(BIN)/dataops
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_dedup.py

clean:
	rm -rf .dataops .pytest_cache .mypy_cache .ruff_cache
