# BrokerX: `make run` starts the platform, `make test` runs every test. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean-data bench-tools bench-orders soak load

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m brokerx.devstack run

test: $(STAMP)
	$(PY) -m brokerx.devstack test $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run --settings=brokerx.settings.test

clean-data:
	rm -rf .data

# The platform under random faults on its own embedded Postgres and Redis, then every invariant checked
# (tools/soak.py; .data/soak/). `make soak SOAK_SECONDS=60` is CI's short one.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	timeout $$(( $(SOAK_SECONDS) + 600 )) $(PY) tools/soak.py --seconds $(SOAK_SECONDS)

# Benchmarks (against a platform started with `make run`; see benchmarks/).
bench-tools:
	command -v wrk >/dev/null && command -v hey >/dev/null && command -v pgbench >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk hey postgresql-client)

bench-orders: $(STAMP) bench-tools
	$(PY) benchmarks/order_ack_bench.py

# Locust load tests against a running platform (load/; README, "Load tests"): SCENARIO=steady|ramp|fanout,
# BROKERX_URL (default http://127.0.0.1:8000), LOAD_ARGS e.g. "--users 100 --run-time 30s". Exits 1 on a FAIL line.
SCENARIO ?= steady
load: $(STAMP)
	timeout 900 $(PY) load/run.py $(SCENARIO) $(LOAD_ARGS)
