# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup setup-test demo test bench lint clean

setup: $(VENV)/.runtime-installed

$(VENV)/.runtime-installed: requirements.txt
	@scripts/setup_system.sh runtime
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	@touch $@

setup-test: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.runtime-installed requirements-dev.txt requirements-train.txt
	@scripts/setup_system.sh test
	$(PIP) install -r requirements-dev.txt
	$(PIP) install -r requirements-train.txt
	@touch $@

demo: setup
	$(PY) main.py render --source assets/portrait.png --output out/demo.mp4 --duration 10

test: setup-test
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: setup-test
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
