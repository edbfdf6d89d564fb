# Every target sets itself up: a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test: not a failure of the code under test.
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] && echo "pytest: no tests collected" && exit 0; exit $$status

# The main job: on a local emulator unless PHOSPHO_API_KEY is set.
demo: $(STAMP)
	$(BIN)/phospho-embed demo

test: lint typecheck pytest

# Writes docs/benchmarks.md; BENCH_ARGS=--quick for a smoke run.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
