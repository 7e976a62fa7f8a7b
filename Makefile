# Two entry points for a fresh machine with Python 3.10+:
#   make demo   - set up .venv and run `kerasdrop demo`
#   make test   - set up .venv and run the whole test suite
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
# TensorFlow's C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL and are flushed at exit, after pytest's summary.
QUIET_TF := grep --line-buffered -v -E '^(WARNING: All log messages before absl|[IWE][0-9]{4} [0-9:.]+ +[0-9]+ [a-z_]+\.cc:[0-9]+\])'
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/kerasdrop demo 2>&1 | $(QUIET_TF)

test: $(STAMP)
	PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest -n 2 -q 2>&1 | $(QUIET_TF)

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check kerasdrop tests examples benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
