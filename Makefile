# Hourly event ETL + segmentation on Airflow 3, GX, dbt-duckdb. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
LOCAL_S3_PORT ?= 5555

# Embedded defaults: Airflow on SQLite under var/airflow, the warehouse under var/warehouse, moto S3.
export EVENTS_HOME ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(CURDIR)/var/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS ?= admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE ?= $(CURDIR)/var/airflow/passwords.json
export AIRFLOW_CONN_EVENTS_S3 ?= {"conn_type": "aws", "login": "local-access-key", "password": "local-secret-key", "extra": {"endpoint_url": "http://127.0.0.1:$(LOCAL_S3_PORT)", "bucket": "events", "region_name": "us-east-1"}}
export LOCAL_S3_PORT
export PATH := $(BIN):$(PATH)
# astronomer-cosmos reports usage to an external endpoint from every dbt task unless told not to.
export AIRFLOW__COSMOS__ENABLE_TELEMETRY ?= False
# Scheduling latency of the hourly DAG's chain of short cosmos tasks, as in docker-compose.yml (see there).
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL ?= 1
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME ?= 0.5

# The dbt manifest the DAG renders its dbt tasks from (committed; see include/event_pipeline/dbt_cosmos.py).
DBT_MANIFEST := dbt_project/manifest/manifest.json
DBT_SOURCES := dbt_project/dbt_project.yml $(shell find dbt_project/models dbt_project/macros dbt_project/tests \
	dbt_project/seeds dbt_project/snapshots dbt_project/analyses -type f 2>/dev/null)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@command -v $(PYTHON_BIN) >/dev/null || { echo "Python 3.11 is required ($(PYTHON_BIN) not found); set PYTHON_BIN=..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON_BIN) -m venv $(VENV)
	@echo ">> installing pinned dependencies into $(VENV) (about 2 minutes the first time)"
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the pinned dependencies (only when they changed)

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	@echo ">> initialising the Airflow metadata DB (SQLite) in $(AIRFLOW_HOME)"
	@airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/migrate.log; exit 1; }
	@airflow pools set duckdb_warehouse 1 "one writer for the DuckDB warehouse" > /dev/null

.PHONY: airflow-db
airflow-db: $(AIRFLOW_HOME)/airflow.db ## Initialise Airflow's metadata DB and the warehouse pool

.PHONY: s3-up
s3-up: $(STAMP) ## Start the local S3 endpoint (moto server) on 127.0.0.1:$(LOCAL_S3_PORT)
	@$(BIN)/python -m event_pipeline.local_s3 start --port $(LOCAL_S3_PORT)

.PHONY: s3-down
s3-down: ## Stop the local S3 endpoint
	@test -x $(BIN)/python && $(BIN)/python -m event_pipeline.local_s3 stop || true

$(DBT_MANIFEST): $(DBT_SOURCES) | $(STAMP)
	@echo ">> dbt models changed: regenerating $(DBT_MANIFEST) (dbt parse)"
	@$(BIN)/python -m event_pipeline.dbt_cosmos manifest

.PHONY: dbt-manifest
dbt-manifest: $(STAMP) ## Regenerate the committed dbt manifest the DAG renders from (commit it with model changes)
	@$(BIN)/python -m event_pipeline.dbt_cosmos manifest

.PHONY: dbt-docs
dbt-docs: $(STAMP) ## Build the dbt docs site (models, tests, lineage, catalog) into var/dbt_docs (EVENTS_HOME)
	@$(BIN)/python -m event_pipeline.dbt_cosmos docs

.PHONY: demo
demo: $(STAMP) $(DBT_MANIFEST) airflow-db s3-up ## Run the hourly DAG through Airflow for the last 6 complete hours and print a summary
	@$(BIN)/python -m event_pipeline.demo

.PHONY: airflow
airflow: $(STAMP) $(DBT_MANIFEST) airflow-db s3-up ## Airflow standalone with the UI on http://localhost:8080 (login printed)
	@$(BIN)/python -m event_pipeline.airflow_login
	airflow standalone

.PHONY: test
test: $(STAMP) ## Run the whole test suite (unit, dbt, DAG integrity, Airflow integration)
	$(BIN)/python -m pytest

.PHONY: bench
bench: $(STAMP) s3-up ## Benchmark (defaults: under 10 min; BENCH_ARGS=--full: every target at full size): results in docs/benchmarks.md
	$(BIN)/python -m event_pipeline.bench $(BENCH_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff + sqlfluff
	$(BIN)/ruff check dags include tests
	$(BIN)/sqlfluff lint dbt_project/models --dialect duckdb

.PHONY: query
query: $(STAMP) ## Open the analysts' read-only snapshot in a Python DuckDB shell
	@$(BIN)/python -m event_pipeline.query

.PHONY: lock
lock: $(STAMP) ## Regenerate constraints.txt from the current venv
	@{ echo "# Full lock of every package the project installs, generated with pip freeze from a venv"; \
	   echo "# built from requirements-dev.txt (make lock regenerates it)."; \
	   $(BIN)/pip freeze --exclude-editable; } > constraints.txt

.PHONY: clean
clean: s3-down ## Remove local state (warehouse, Airflow DB, logs); keeps .venv
	rm -rf var dbt_project/target dbt_project/logs test-output
