# The two commands of the README: `make demo` and `make test`. Each sets up what it needs first
# (a .venv with every package installed editable) and is fast when that is already done.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.convai-installed
PACKAGES := $(sort $(wildcard packages/convai-*))
INSTALL_INPUTS := requirements-dev.txt $(wildcard packages/*/pyproject.toml)

.PHONY: setup sysdeps demo demo-core demo-tts test test-all lint

setup: $(STAMP) sysdeps

sysdeps:
	@bash tools/install_system_deps.sh

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(INSTALL_INPUTS) | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -U pip wheel
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation \
		$(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

demo: setup
	$(PY) tools/demo.py

# TTS recipe: teacher corpus (piper voice, once) + 28 min of acoustic-model training on the CPU
demo-tts: setup
	$(PY) tools/demo_tts.py

demo-core: setup
	$(PY) tools/core_demo.py

# Two test processes (pytest-xdist), one thread each: the machines have two cores, and most tests
# are small models whose single process cannot keep both cores busy. A file's tests stay in one
# process (--dist loadfile), so a module's trained fixture is trained once, not once per process.
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile --durations=20

test-all: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check packages tests tools benchmarks
	$(VENV)/bin/lint-imports
