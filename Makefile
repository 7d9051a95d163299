# transfer-nb: `make run` (set up + execute the tutorials), `make test` (set up + all tests),
# `make docs` (set up + the documentation site in build/docs/, offline, notebooks not executed).
# Everything lives in .venv; a fresh clone with only Python 3.11 is enough.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.transfer-nb-installed
# torch/torchvision pinned: on this machine pip takes both from local disk (DESIGN.md).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
export TRANSFER_NB_CACHE ?= $(CURDIR)/.cache/transfer_nb
export MPLBACKEND ?= Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run run-full test test-unit test-notebooks test-browser test-load bench lab docs docs-widgets clean

setup: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q $(TORCH_PINS)
	$(VPY) -m pip install -q -e ".[dev]"
	touch $@

# Main job: execute every notebook headless (fast mode unless TRANSFER_NB_FAST=0),
# write executed notebooks + HTML under build/, print one line per notebook.
run: $(STAMP)
	TRANSFER_NB_FAST=$${TRANSFER_NB_FAST:-1} $(VENV)/bin/transfer-nb run --out build

run-full: $(STAMP)
	TRANSFER_NB_FAST=0 $(VENV)/bin/transfer-nb run --out build/full

# Whole suite: unit + property + widget + notebooks (nbval, fast mode) + browser.
# TQDM_MININTERVAL: fewer progress-bar messages, so nbval never waits behind a flooded iopub.
test: $(STAMP)
	bash scripts/install_browser.sh
	TRANSFER_NB_FAST=1 TQDM_MININTERVAL=2 $(VPY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider --timeout=900 --durations=25

test-unit: $(STAMP)
	$(VPY) -m pytest tests -m "not browser" -p no:cacheprovider

test-notebooks: $(STAMP)
	TRANSFER_NB_FAST=1 TQDM_MININTERVAL=2 $(VPY) -m pytest notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

# Each browser test has its own JupyterLab server and workspace; a failure leaves
# <test>.failure.png, <test>.server.log and <test>.failure.txt (its step) in build/browser/.
test-browser: $(STAMP)
	bash scripts/install_browser.sh
	$(VPY) -m pytest tests/browser -p no:cacheprovider

# Stability under load: RUNS runs of `make WHAT` in a row with a CPU hog beside them
# (started here, killed after). Stops at the first red run: a proof, never a retry.
RUNS ?= 5
WHAT ?= test-browser
test-load: $(STAMP)
	@$(PYTHON) -c "while True: pass" & hog=$$!; trap "kill $$hog" EXIT; \
	for i in $$(seq $(RUNS)); do \
	  start=$$(date +%s); \
	  if ! $(MAKE) --no-print-directory $(WHAT); then \
	    echo "test-load: run $$i of $(RUNS) of $(WHAT) FAILED after $$(( $$(date +%s) - start )) s"; exit 1; \
	  fi; \
	  echo "test-load: run $$i of $(RUNS) of $(WHAT) green in $$(( $$(date +%s) - start )) s"; \
	done

# The site: tutorials from their committed outputs, API from the docstrings, CLI --help;
# warnings are errors. `make docs-widgets` re-captures the widgets' still images
# (docs/_static/widgets/, committed) after a notebook's widgets change (npm + Chromium).
docs: $(STAMP)
	$(VPY) -m sphinx -b html -W --keep-going -q docs build/docs
	@echo "docs: open build/docs/index.html"

docs-widgets: $(STAMP)
	bash scripts/install_browser.sh
	$(VPY) docs/capture_widgets.py

bench: $(STAMP)
	$(VPY) benchmarks/bench_transrate.py
	$(VPY) benchmarks/bench_extraction.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf build .cache .pytest_cache
