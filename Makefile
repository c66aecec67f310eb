# `make demo`: set up, run the quickstart notebook, write demo.html (offline) and start JupyterLab.
# `make test`: set up if needed, then lint, type checks, vitest and pytest (browser tests included).

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# torch in the same pip command as the rest: this spec takes the CPU wheel on this machine's disk;
# any other can pull a multi-GB CUDA build (see DESIGN.md).
TORCH := torch==2.13.0
PORT ?= 8888
JS_SOURCES := $(shell find js -name '*.ts' -o -name '*.mjs' 2>/dev/null)
# Let Python keep the bytecode it compiles (this machine's environment sets
# PYTHONDONTWRITEBYTECODE=1, and the install below skips byte-compiling): otherwise every process
# compiles what it imports from source again, ~3.5 s more per `import torch` on a fresh .venv,
# paid by each kernel, torchrun rank and notebook the tests start.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test checks lint typecheck vitest warm pytest build chromium clean

setup: $(VENV)/.installed python/layerscope/static/.built

node_modules/.installed: package.json package-lock.json
	# `npm install`, not `npm ci`: the lock holds only this platform's optional packages, which `npm ci` rejects.
	npm install --no-audit --no-fund
	touch $@

python/layerscope/static/.built: node_modules/.installed $(JS_SOURCES)
	npm run build
	touch $@

$(VENV)/.installed: pyproject.toml requirements-dev.txt package.json node_modules/.installed
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# --no-compile: byte-compiling every installed file took half the install (171 -> 80 s here);
	# Python compiles what it imports, once, on first use (see PYTHONDONTWRITEBYTECODE above).
	$(PIP) install --no-compile $(TORCH) -r requirements-dev.txt -e .
	# The editable build's hook runs `npm install` again, which rewrites package-lock.json: mark
	# node_modules as installed after it, or every later `make` would reinstall everything.
	touch node_modules/.installed
	touch $@

build: python/layerscope/static/.built

chromium:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium fonts-liberation; }

demo: setup
	@start=$$(date +%s); \
	$(PY) -m layerscope.export notebooks/quickstart.ipynb --execute -o demo.html && \
	echo "executed notebooks/quickstart.ipynb and wrote demo.html in $$(( $$(date +%s) - start )) s"
	@token=$$($(PY) -c 'import secrets; print(secrets.token_hex(24))'); \
	echo ""; \
	echo "Offline page (no kernel, no network): file://$(CURDIR)/demo.html"; \
	echo "JupyterLab on the notebook:           http://127.0.0.1:$(PORT)/lab/tree/notebooks/quickstart.ipynb?token=$$token"; \
	echo ""; \
	exec $(VENV)/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) --ServerApp.port_retries=0 \
		--IdentityProvider.token=$$token --ServerApp.allow_root=True --ServerApp.root_dir=$(CURDIR) \
		--LabApp.default_url=/lab/tree/notebooks/quickstart.ipynb

lint: setup
	$(VENV)/bin/ruff check python tests bench docs
	$(VENV)/bin/ruff format --check python tests bench docs
	npx biome check js

typecheck: setup
	$(VENV)/bin/mypy
	npx tsc --noEmit -p .

vitest: setup
	npx vitest run

# Compile the numba code the tests run (pynndescent's, our fused collect kernel: cache=True)
# into its on-disk caches beside the single-threaded linters, not inside the first tests that
# use it (~30 s of a fresh checkout's pytest).
warm: setup
	$(PY) tests/warm.py

pytest: setup chromium
	$(PY) -m pytest --durations=30

# The checks are mostly single-threaded: run them side by side (one per core), then pytest.
checks: lint typecheck vitest warm

test: setup chromium
	@$(MAKE) --no-print-directory -j$(shell nproc) --output-sync=target checks
	@$(MAKE) --no-print-directory pytest

clean:
	rm -rf python/layerscope/static dist build demo.html tests/artifacts
