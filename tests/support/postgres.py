"""A throwaway PostgreSQL server (Debian's `postgresql` package) on a free 127.0.0.1 port."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.services import free_port


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail("PostgreSQL is not installed: tests/run.sh installs Debian's postgresql")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package provides the `postgres` user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="trooply-pg-")
    data, port = os.path.join(directory, "data"), free_port()
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    subprocess.run(_as_postgres([_binary("initdb"), "-D", data, "-U", "trooply", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    server = subprocess.Popen(_as_postgres([_binary("postgres"), "-D", data, "-p", str(port), "-k", directory,
                                            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([_binary("pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True).returncode != 0:
            assert server.poll() is None and time.monotonic() < deadline, "PostgreSQL did not start"
            time.sleep(0.2)
        subprocess.run([_binary("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "trooply", "trooply"],
                       check=True)
        yield f"postgresql+psycopg://trooply@127.0.0.1:{port}/trooply"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(directory, ignore_errors=True)
