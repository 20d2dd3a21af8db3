# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup setup-test demo demo-render serve test bench mutation-check lint clean

setup: $(VENV)/.runtime-installed

$(VENV)/.runtime-installed: requirements.txt
	@scripts/setup_system.sh runtime
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	@# `src` importable from scripts/ and tools, as `pip install -e .` would make it (no sys.path patching per script)
	$(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "puppetcam.pth").write_text(str(pathlib.Path.cwd()) + "\n")'
	@touch $@

setup-test: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.runtime-installed requirements-dev.txt requirements-train.txt requirements-ray.txt
	@scripts/setup_system.sh test
	$(PIP) install -r requirements-dev.txt
	$(PIP) install -r requirements-train.txt
	$(PIP) install -r requirements-ray.txt
	@touch $@

# The live main job: the bundled portrait speaking the bundled speech on a loop, with idle motion,
# served to the WebRTC preview (and a window when a display exists). DEMO_SECONDS bounds it (0: until Ctrl+C).
DEMO_SECONDS ?= 120
DEMO_WINDOW := $(if $(DISPLAY),--output window,)
DEMO_DURATION := $(if $(filter 0,$(DEMO_SECONDS)),,--duration $(DEMO_SECONDS))

demo: setup
	$(PY) main.py run --source assets/portrait.png --audio assets/speech_en.wav --output webrtc $(DEMO_WINDOW) $(DEMO_DURATION)

# The offline job: the same talking portrait rendered to an mp4 with its sound.
demo-render: setup
	$(PY) main.py render --source assets/portrait.png --audio assets/speech_en.wav --output out/demo.mp4

# Many avatar sessions from one server: the studio page at http://127.0.0.1:8080/ (see README, "serve").
serve: setup
	$(PY) main.py serve

test: setup-test
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

bench: setup-test
	$(PY) scripts/benchmark.py

# Does the suite notice broken central behaviours? One mutation at a time on a scratch copy (a few minutes).
mutation-check: setup-test
	$(PY) scripts/mutation_check.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .mypy_cache
