#!/usr/bin/env bash
# The test command: installs what the suite needs on a fresh machine, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real services and media tools come from Debian: redis-server for the Celery tests, PostgreSQL for the
# SQL backend tests, espeak-ng and ffmpeg to speak and encode the voice-search test audio, chromium for the
# portal's browser tests (Playwright drives Debian's build; it never downloads its own).
missing=()
for tool in redis-server:redis-server espeak-ng:espeak-ng ffmpeg:ffmpeg chromium:chromium; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# setuptools as pyproject.toml's build-system requires: tests/packaging builds the wheel offline, without isolation.
.venv/bin/pip install -q --upgrade pip "setuptools>=77"
# torch and torchvision as the pinned pair first, then the project with its test extras.
.venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/pip install -q -e ".[test,postgres]"
# The client generator of tests/integration/test_generated_client.py pins httpx below ours: a venv of its own.
[ -x .venv-openapi/bin/openapi-python-client ] || { "$PYTHON" -m venv .venv-openapi &&
  .venv-openapi/bin/pip install -q "openapi-python-client==0.29.1"; }

# Lint, type-check and check the import layers before any test runs: a finding fails the run (configured in pyproject.toml).
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports  # the layer contract in pyproject.toml: no import runs back up

exec .venv/bin/python -m pytest "$@"
