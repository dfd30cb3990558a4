#!/usr/bin/env bash
# The test command: installs what the suite needs on a fresh machine, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real services and media tools come from Debian (redis-server for the Celery integration tests).
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
  else
    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch and torchvision as the pinned pair first, then the project with its test extras.
.venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/pip install -q -e ".[test]"

exec .venv/bin/python -m pytest "$@"
