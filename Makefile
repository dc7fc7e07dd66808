# Everything a fresh Debian/Ubuntu machine needs, then the two jobs of the README.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The project's CI and developers keep Pagila in ../shared/pagila; others download it.
ifneq ($(wildcard ../shared/pagila/pagila-data.sql),)
export PAGILA_DIR ?= $(abspath ../shared/pagila)
endif

.PHONY: setup demo test bench clean system

# The project's own modules compiled once (pip compiles what it installs): where
# PYTHONDONTWRITEBYTECODE is set, as in CI, Python never writes a .pyc, and every process (each
# `medallion` command, each test worker) compiled all 93 of medallion's modules again, about
# 0.3 s of CPU each time. Up-to-date files are skipped; an edited one is compiled in memory.
setup: system $(STAMP)
	@$(BIN)/python -m compileall -q medallion pagila_example bench tests dbt_medallion.py

system:
	@bash scripts/install-postgres.sh
	@bash scripts/install-lake.sh

$(STAMP): pyproject.toml constraints.txt constraints-airflow.txt scripts/install-python.sh
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@bash scripts/install-python.sh $(VENV)
	@touch $(STAMP)
	@echo "Python environment ready: $(VENV)"

demo: setup
	$(BIN)/medallion demo

# three workers (pytest-xdist), each with a cluster of its own; a test file stays on one worker.
# Three on two cores: with two, the cores were busy 64% of the time (the tests wait on
# subprocesses, servers and sleeps), and the suite took 19 min instead of 16.5
TEST_WORKERS ?= 3
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: setup
	$(BIN)/python -m bench

clean:
	-$(BIN)/medallion down
	rm -rf $(VENV) .medallion .medallion-test
