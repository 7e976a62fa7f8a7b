# Two entry points for a fresh machine with Python 3.10+:
#   make demo       - set up .venv and run `kerasdrop demo`
#   make test       - set up .venv and run the fast tier on TensorFlow, JAX and PyTorch: every test not marked `slow`
#                     (4 min 18 s on a 2-core machine with .venv made)
# and the full tier, which CI runs (.ci/run):
#   make test-all   - set up .venv and run every test, `slow` ones included: whole trainings (`fit`), saved and
#                     exported models (`.keras`, SavedModel, TensorFlow Lite), subprocesses (the CLI, the examples,
#                     the demo), studies, and on JAX the tests that compile a program per case (14 min 13 s there
#                     from a fresh clone, .venv included)
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
# TensorFlow's C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL and are flushed at exit, after pytest's summary.
QUIET_TF := grep --line-buffered -v -E '^(WARNING: All log messages before absl|[IWE][0-9]{4} [0-9:.]+ +[0-9]+ [a-z_]+\.cc:[0-9]+\])'
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[tensorflow,dev]"
	touch $(STAMP)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/kerasdrop demo 2>&1 | $(QUIET_TF)

# The suite on TensorFlow, then on JAX and PyTorch the tests of what differs per backend: every layer's contract,
# the Monte Carlo sampler and its packed masks, predictors shared by threads, joint Monte Carlo draws (every layer,
# Keras's RNNs, the weight-noise layers), per-step noise in RNN loops, data-parallel sampling, imports, and the KL
# warm-up inside each backend's compiled training step. The whole suite also runs on those backends
# (`KERAS_BACKEND=jax .venv/bin/python -m pytest -n 2`), skipping TensorFlow's own features.
WARMUP_TESTS := tests/test_callbacks.py::test_changing_the_factor_needs_no_retrace \
	tests/test_callbacks.py::test_factor_is_saved_with_the_model_and_the_schedule_resumes
BACKEND_TESTS := tests/layers/test_contract.py tests/test_sampler.py tests/test_ops.py tests/test_distribution_jax.py \
	tests/test_imports.py tests/test_mc_threads.py tests/test_mc_joint_draws.py tests/test_keras_rnn_joint_draws.py \
	tests/layers/test_joint_draws_weight_noise.py tests/layers/test_recurrent_loops.py $(WARMUP_TESTS)
PYTEST := PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest -n 2 -q

# $(call on_every_backend,TIER,PYTEST ARGUMENTS): the suite on TensorFlow, BACKEND_TESTS on JAX and on PyTorch.
define on_every_backend
	@echo "== TensorFlow: the suite, $(1)"
	$(PYTEST) $(2) 2>&1 | $(QUIET_TF)
	@echo "== JAX: the backend tests, $(1)"
	KERAS_BACKEND=jax $(PYTEST) $(2) $(BACKEND_TESTS) 2>&1 | $(QUIET_TF)
	@echo "== PyTorch: the backend tests, $(1)"
	KERAS_BACKEND=torch $(PYTEST) $(2) $(BACKEND_TESTS) 2>&1 | $(QUIET_TF)
endef

test: $(STAMP)
	$(call on_every_backend,fast tier (not slow),-m "not slow")

test-all: $(STAMP)
	$(call on_every_backend,every test,)

# Every benchmark at its default size, but the UCI one, which needs the data (`--data-dir`, see its docstring).
bench: $(STAMP)
	for script in $(filter-out benchmarks/bench_uci_stacked.py,$(wildcard benchmarks/bench_*.py)); do \
		$(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check kerasdrop kerasdrop_cli.py tests examples benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
