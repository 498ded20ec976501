# Two commands set everything up on a fresh machine with Python 3.11+:
#   make demo   — create .venv, install, run the sample-day job
#   make test   — create .venv, install, run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR := demo-state
# The report's browser test opens pages in Debian's chromium; make test installs it when missing.
CHROMIUM := /usr/bin/chromium
# The deployment test verifies the systemd units with systemd-analyze (package systemd).
ANALYZE  := /usr/bin/systemd-analyze
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test lint typecheck pytest bench install clean lock

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP) ## create the virtualenv and install the project

demo: $(STAMP) ## synthesize a sample day and run the main job on it
	$(BIN)/evoarena demo --out $(DEMO_DIR)

test: lint typecheck pytest ## ruff, mypy and the whole test suite

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/hadolint --failure-threshold info Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(CHROMIUM) $(ANALYZE)
	$(BIN)/python -m pytest

$(CHROMIUM):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium

$(ANALYZE):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y systemd

bench: $(STAMP) ## performance runs, JSON on stdout
	$(BIN)/python benchmarks/tick.py
	$(BIN)/python benchmarks/replay.py

lock: ## refresh constraints.txt from a clean resolve (review the diff)
	$(PYTHON) -m venv /tmp/evoarena-lock && /tmp/evoarena-lock/bin/pip install --quiet -e '.[dev,ray]' \
	  && /tmp/evoarena-lock/bin/pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .pytest_cache .ruff_cache
