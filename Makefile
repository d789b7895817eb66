# Janja geochemical prospectivity plugin. `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PLUGIN_NAME := janja
OUT := out
# Headless Qt/QGIS for every target that touches QGIS (see docs in README: Headless use).
export QT_QPA_PLATFORM := offscreen
export XDG_RUNTIME_DIR := /tmp/runtime-$(shell id -u)
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: compare setup demo test test-core test-processing test-e2e test-desktop lint package install-plugin bench clean

setup:
	@tools/setup.sh

demo: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PY) tools/run_demo.py --out $(OUT)

test: setup lint test-core test-processing test-e2e test-desktop
	@echo "make test: all tiers passed"

test-core: setup
	$(PYTEST) tests/core

test-processing: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PYTEST) tests/processing

test-e2e: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PYTEST) tests/e2e

test-desktop: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PYTEST) tests/desktop

lint: setup
	$(PY) -m ruff check .

package: setup
	$(PY) tools/package.py --out dist

install-plugin: setup
	$(PY) tools/install_plugin.py

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(OUT) dist .pytest_cache .ruff_cache

compare: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PY) tools/compare_methods.py --out $(OUT)
