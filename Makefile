# Two commands from a fresh clone:  make up   (start the suite)   make test   (run every test)
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
export PYTHONWARNINGS ?= ignore::DeprecationWarning

.PHONY: help venv rabbit up down status test test-unit demo bench bench-quick boundaries clean

help:
	@echo "make up      start RabbitMQ checks, the five agency services and the gateway (per jurisdiction)"
	@echo "make demo    walk one project per jurisdiction from declaration to approval over HTTP"
	@echo "make down    stop everything make up started"
	@echo "make test    run every test (unit, service and flow tests on the real RabbitMQ, SQLite and PostgreSQL)"
	@echo "make bench   run the benchmarks (not part of make test)"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	@scripts/bootstrap.sh

rabbit:
	@scripts/ensure_rabbitmq.sh

up: venv rabbit
	@$(PY) scripts/suite.py up

down:
	@if [[ -x $(PY) ]]; then $(PY) scripts/suite.py down; else python3 scripts/suite.py down; fi

status: venv
	@$(PY) scripts/suite.py status

demo: venv
	@$(PY) scripts/demo.py

test: venv rabbit tools
	@$(PY) -m pytest

test-unit: venv
	@$(PY) -m pytest tests/unit

boundaries: venv
	@$(PY) -m pytest tests/unit/test_boundaries.py -q

bench: venv rabbit
	@$(PY) bench/run.py

bench-quick: venv rabbit
	@$(PY) bench/run.py --quick

clean: down
	rm -rf var

tools:
	@scripts/ensure_tools.sh
