# syntax=docker/dockerfile:1.7
# The Trooply image: one image for `trooply serve | worker | beat | migrate` and for uvicorn.
# Multi-stage (build tools and pip caches stay in the builder), runs as the non-root user 10001.
#
#   docker build -t trooply:cpu .                                # CPU (default): torch from the PyTorch CPU index
#   docker build -t trooply:cuda --build-arg VARIANT=cuda .      # CUDA runtime base, torch's CUDA 13.0 wheels
#
# Build arguments:
#   VARIANT          cpu | cuda
#   PYTHON_IMAGE     the Python 3.11 slim base (CPU variant, and where uv comes from)
#   CUDA_IMAGE       the CUDA runtime base of the cuda variant; keep its CUDA major.minor equal to the torch index's
#   TORCH_INDEX_URL  overrides the variant's torch index (e.g. .../whl/cu128 together with a 12.8 CUDA_IMAGE)
#
# torch and torchvision are installed first as the pinned pair (pyproject.toml); the project's other
# dependencies are then installed from pyproject.toml and the project itself in editable mode from
# /app, so migrations/ and profiles/ are read from /app beside the package (a wheel carries them inside it).

ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------------
# uv, only to install Python 3.11 on the CUDA base (Ubuntu ships 3.12); it never reaches the final image.
FROM ${PYTHON_IMAGE} AS uv
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# ---------------------------------------------------------------------------------------------------
# Runtime bases: Python 3.11 and tini (PID 1: forwards signals, reaps children).
FROM ${PYTHON_IMAGE} AS base-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

FROM ${CUDA_IMAGE} AS base-cuda
# torch's CUDA wheels bring their own CUDA user-space libraries; the base supplies the CUDA runtime
# environment the NVIDIA container toolkit expects (NVIDIA_* variables, driver capability checks).
RUN --mount=type=bind,from=uv,source=/usr/local/bin/uv,target=/usr/local/bin/uv \
    apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && export UV_PYTHON_INSTALL_DIR=/opt/python UV_PYTHON_PREFERENCE=only-managed \
 && uv python install 3.11 \
 && ln -s "$(uv python find 3.11)" /usr/local/bin/python3.11 \
 && ln -s python3.11 /usr/local/bin/python3 \
 && ln -s python3.11 /usr/local/bin/python \
 && python3.11 -c "import ssl, sqlite3, ctypes; print('python', __import__('sys').version)"

# ---------------------------------------------------------------------------------------------------
FROM base-${VARIANT} AS builder
ARG VARIANT
ARG TORCH_INDEX_URL=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# The venv is made from the interpreter's real path so that it resolves the same in the runtime stage.
RUN "$(readlink -f "$(command -v python3.11)")" -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

RUN --mount=type=cache,target=/root/.cache/pip \
    case "$VARIANT" in \
      cpu)  index=https://download.pytorch.org/whl/cpu ;; \
      cuda) index=https://download.pytorch.org/whl/cu130 ;; \
      *)    echo "VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 1 ;; \
    esac \
 && pip install --index-url "${TORCH_INDEX_URL:-$index}" "torch==2.14.1" "torchvision==0.29.1"

WORKDIR /app
# Dependencies before sources, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgres"]))' > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && python -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'

COPY trooply trooply
COPY workers workers
COPY migrations migrations
COPY profiles profiles
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps -e . \
 && python -c 'from trooply.db import MIGRATIONS_DIR; from trooply.ranking.profiles import DEFAULT_PROFILES_DIR; assert (MIGRATIONS_DIR / "env.py").is_file(), MIGRATIONS_DIR; assert any(DEFAULT_PROFILES_DIR.glob("*.yaml")), DEFAULT_PROFILES_DIR' \
 && python -m compileall -q /app/trooply /app/workers /app/migrations

# ---------------------------------------------------------------------------------------------------
FROM base-${VARIANT} AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="trooply" \
      org.opencontainers.image.description="Self-hostable visual search backend for ecommerce" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.trooply.variant="${VARIANT}"

RUN groupadd --system --gid 10001 trooply \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/trooply --create-home --shell /usr/sbin/nologin trooply \
 && install -d -o trooply -g trooply -m 0750 /var/lib/trooply /var/cache/trooply

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

# HF_HOME: where open_clip's weights are downloaded (mount a volume there to download them once).
# TROOPLY_CLIP_EXPORT_DIR: CLIP's ONNX exports, made at the first start from the weights that start loads (the image
# holds no weights): on the same volume, every service sharing it reuses the first one's export.
# /var/lib/trooply: the working directory (Celery beat keeps its schedule file here) and the data
# directory of the embedded shape. The source tree under /app stays root-owned and read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/var/cache/trooply/huggingface \
    TROOPLY_CLIP_EXPORT_DIR=/var/cache/trooply/onnx \
    XDG_CACHE_HOME=/var/cache/trooply \
    TROOPLY_DATA_DIR=/var/lib/trooply/data \
    TROOPLY_HOST=0.0.0.0
WORKDIR /var/lib/trooply
USER 10001:10001
EXPOSE 8000

# For the default command (the API). Compose and Kubernetes set their own checks per service.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["tini", "--"]
# The embedded shape in one container; docker-compose.yml and deploy/kubernetes run the other commands.
CMD ["trooply", "serve"]
