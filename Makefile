# Every target sets itself up: a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint typecheck pytest install bench docs docs-check clean

$(BIN)/python:
	@echo "Creating $(VENV) with $(PYTHON)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# The demo needs far less than the test suite: only the "demo" extra, unless the whole dev
# set is already installed. pip is not silenced, so a first run shows what it is doing.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $@; else \
		echo "Installing what the demo needs into $(VENV) (first run only, about a minute)..."; \
		$(BIN)/python -m pip install --disable-pip-version-check -e ".[demo]" && touch $@; fi

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test: not a failure of the code under test.
# Up to 4 workers (pytest-xdist): the tests mostly wait on emulators, not on the CPU.
PYTEST_ARGS ?= -n auto --maxprocesses 4
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] && echo "pytest: no tests collected" && exit 0; exit $$status

# The main job: on a local emulator unless PHOSPHO_API_KEY is set.
demo: $(DEMO_STAMP)
	$(BIN)/phospho-embed demo

# pytest also runs the rendered check (tests/docs/test_rendered.py) on a build of its own.
test: lint typecheck docs pytest

# The documentation site (mkdocs.yml, docs/) built into site/; --strict: a broken link or
# API reference entry fails the build. Its examples run in pytest (tests/docs).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The built home page as a person sees it: headless chromium renders it from a local server
# (title, navigation, a screenshot that is not blank, kept in build/docs-home.png).
# Skipped, saying so, when chromium is not installed: .ci/run installs Debian's.
docs-check: docs
	DOCS_SITE_DIR=site DOCS_SCREENSHOT=build/docs-home.png $(BIN)/pytest -q -rs tests/docs/test_rendered.py

# Writes docs/benchmarks.md; BENCH_ARGS=--quick for a smoke run.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site build/docs-home.png
