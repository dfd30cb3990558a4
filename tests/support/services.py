"""Real processes for integration tests: redis-server, `trooply serve`, `trooply worker` — all on 127.0.0.1."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: .ci/run installs Debian's redis-server")
    port = free_port()
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, 10, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def trooply_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TROOPLY_")}
    env.update({
        "TROOPLY_DATA_DIR": str(data_dir), "TROOPLY_CLIP_MODEL": "trooply-test-tiny",
        "TROOPLY_CLIP_PRETRAINED": "random", "TROOPLY_FETCH_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        "TROOPLY_INGEST_RETRY_BASE_DELAY": "0.05", "TROOPLY_ENCODE_BATCH_SIZE": "4", "TROOPLY_CLIP_RUNTIME": "torch",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def start_trooply(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:  # the child holds its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "trooply.cli", *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


@contextmanager
def serving(env: dict[str, str], log_path: Path, timeout: float = 120) -> Iterator[str]:
    """A real `trooply serve` on a free 127.0.0.1 port, stopped afterwards; yields its base URL."""
    port = free_port()
    process = start_trooply(["serve", "--port", str(port)], env, log_path)
    try:
        wait_for_port(port, timeout, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def kill_hard(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group: a crash, not a shutdown."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            kill_hard(process)


def create_tenant_cli(env: dict[str, str]) -> dict:
    import json

    out = subprocess.run([sys.executable, "-m", "trooply.cli", "tenants", "create", "shop", "--plan", "free",
                          "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)
