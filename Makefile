# The two commands: `make demo` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error
export HF_HUB_DISABLE_PROGRESS_BARS := 1

.PHONY: demo test dev dev-postgres bench install clean-data

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# the demo's shop is generated: its pseudonyms may use the public demo key (set GOVERNANCE_PSEUDONYM_KEY for real data)
demo: export GOVERNANCE_DEMO ?= 1
demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m assets.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

dev: export GOVERNANCE_DEMO ?= 1
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

# the same UI over a PostgreSQL-backed instance (runs, event log, schedules) and quality store: one server,
# named once in GOVERNANCE_POSTGRES_URL (postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB)
dev-postgres: export GOVERNANCE_DEMO ?= 1
dev-postgres: $(STAMP)
	@test -n "$$GOVERNANCE_POSTGRES_URL" || { echo "set GOVERNANCE_POSTGRES_URL=postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB"; exit 1; }
	mkdir -p $(DAGSTER_HOME)/postgres
	cp dagster.postgres.yaml $(DAGSTER_HOME)/postgres/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME)/postgres $(BIN)/dagster dev -w workspace.yaml

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean-data:
	rm -rf data .dagster_home
