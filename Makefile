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
# Offline training (torch) lives in its own venv; QGIS's Python never sees it.
TPY := .venv-train/bin/python

.PHONY: detect-bench compare setup setup-train train train-dense train-smoke train-tianshan train-anomaly test-training wa-stack demo test test-matrix-clear test-chroots test-core test-processing test-e2e test-desktop lint package install-plugin bench bench-quick clean clean-chroots

setup:
	@tools/setup.sh

demo: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PY) tools/run_demo.py --out $(OUT)

# QGIS version matrix (README: QGIS versions). QGIS=all: the host's 3.22 and every chroot version;
# QGIS=3.22: the host alone; QGIS=3.40 or 3.44: that version's QGIS tiers alone, in its Debian chroot.
QGIS ?= all
CHROOT_QGIS := 3.40 3.44
ifeq ($(QGIS),all)
TEST_TIERS := lint test-core test-processing test-e2e test-desktop test-training test-chroots
else ifeq ($(QGIS),3.22)
TEST_TIERS := lint test-core test-processing test-e2e test-desktop test-training
CHROOT_QGIS :=
else
TEST_TIERS := test-chroots
CHROOT_QGIS := $(QGIS)
endif

test: test-matrix-clear $(TEST_TIERS)
	@echo "make test: tier counts per QGIS version"; cat $(OUT)/test-matrix/*.txt
	@echo "make test: all tiers passed (QGIS=$(QGIS))"

test-matrix-clear:
	@rm -rf $(OUT)/test-matrix

test-core: setup
	@tools/test_tier.sh $(PY) core

test-processing: setup
	@tools/test_tier.sh $(PY) processing

test-e2e: setup
	@tools/test_tier.sh $(PY) e2e

test-desktop: setup
	@tools/test_tier.sh $(PY) desktop

# Each chroot version runs core, processing, e2e and desktop; all versions run, then any failure fails.
test-chroots:
	@rc=0; for v in $(CHROOT_QGIS); do tools/qgis_chroot.sh $$v test || rc=1; done; \
	if [ $$rc != 0 ]; then echo "make test: tier counts per QGIS version"; cat $(OUT)/test-matrix/*.txt; \
	    echo "make test: FAILED (see the lines marked FAILED above)" >&2; fi; exit $$rc

test-training: setup-train
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	@tools/test_tier.sh $(TPY) training

setup-train:
	@tools/setup_train.sh

# The Western Australia element stacks every training run starts from (janja:krige through qgis_process).
wa-stack: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PY) tools/make_wa_stack.py --cell-size 250 --out $(OUT)/wa

train: setup-train wa-stack
	$(TPY) -m janja_plugin.training train --config janja_plugin/training/configs/wa_au.json --out $(OUT)/train_wa --bundle wa_au_inception

# The fast shared-trunk model (frozen trunk once over the stack, logistic head, smoothed logit map; about 3 min,
# 6 GB): its trunk/head parts lie beside the model; janja:prospectivity runs it on the shared trunk by default.
train-dense: setup-train wa-stack
	$(TPY) -m janja_plugin.training train --config janja_plugin/training/configs/wa_au_dense_logistic.json --out $(OUT)/train_wa_dense_logistic

# The same pipeline on the South Tianshan gridded survey (10 Au deposits, 1 km cells; ../shared/data).
train-tianshan: setup-train
	$(PY) tools/make_tianshan_stack.py --out $(OUT)/tianshan
	$(TPY) -m janja_plugin.training train --config janja_plugin/training/configs/tianshan_au.json --out $(OUT)/train_tianshan

train-smoke: setup-train
	$(TPY) -m janja_plugin.training smoke --out $(OUT)/train_smoke

train-anomaly: setup-train wa-stack
	$(TPY) -m janja_plugin.training.anomaly --stack $(OUT)/wa/wa_stack_250m.tif --out $(OUT)/train_anomaly --bundle wa_anomaly_fanogan

lint: setup
	$(PY) -m ruff check .

# `make package` builds a development zip; `make package RELEASE=1` the plugins.qgis.org zip (refused while placeholders remain).
package: setup
	$(PY) tools/package.py --out dist $(if $(RELEASE),--release)

install-plugin: setup
	$(PY) tools/install_plugin.py

# Every benchmark, under 30 minutes on 2 cores (bench/run_all.py; BENCH_ARGS="--only kriging" for one script).
bench: setup wa-stack
	$(PY) bench/run_all.py $(BENCH_ARGS)

# Which map finds held-out deposits best (nested spatial-block CV; README "Detection benchmark").
# DETECT_ARGS=--quick for the reduced mode that tests/core runs (no reference row). The reference row (the
# study's Inception-v3 + GAN configuration) and the shared-trunk model's row (bench/detect_dense.py) need .venv-train
# (make setup-train); they are cached first.
# DETECT_CNN="d4 d4-test finetune multiwin": the CNN variants too (hours on 2 cores; README: CNN variants)
DETECT_CNN ?=
detect-bench: setup wa-stack
	@mkdir -p $(OUT)/detect_bench
	@case "$(DETECT_ARGS)" in *--quick*) ;; *) if [ -x $(TPY) ]; then \
		OMP_NUM_THREADS=1 nice -n 10 $(TPY) bench/detect_reference.py --out $(OUT)/detect_bench; \
		OMP_NUM_THREADS=1 nice -n 10 $(TPY) bench/detect_dense.py --out $(OUT)/detect_bench; \
		for v in $(DETECT_CNN); do OMP_NUM_THREADS=1 nice -n 10 $(TPY) bench/detect_cnn_variants.py \
			--variant $$v --repeats 2 --out $(OUT)/detect_bench; done; \
		else echo "no .venv-train (make setup-train): the reference row is left out"; fi;; esac
	nice -n 10 $(PY) bench/detect_bench.py --out $(OUT)/detect_bench $(DETECT_ARGS)

# the reduced form (kriging 2,000 -> 200 x 200 and the variogram at 5,000 samples, every contender on 1 thread)
bench-quick: setup
	$(PY) bench/bench_kriging.py --quick

clean:
	rm -rf $(OUT) dist .pytest_cache .ruff_cache

# The QGIS matrix chroots (several GB); never while a test run uses them.
clean-chroots:
	rm -rf --one-file-system .chroots

compare: setup
	@mkdir -p -m 0700 $(XDG_RUNTIME_DIR)
	$(PY) tools/compare_methods.py --out $(OUT)
