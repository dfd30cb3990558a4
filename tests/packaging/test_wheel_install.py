"""The wheel, not the source tree: it carries every file the service reads, and installed on its own it migrates and
serves. The fresh virtualenv borrows the test environment's dependencies (torch and the rest) through a .pth file."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port, stop, trooply_env, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
# What the Dockerfile copies: the wheel is built from these alone, never from a stale build/ of the checkout.
SOURCES = ("pyproject.toml", "README.md", "trooply", "workers", "migrations", "profiles")
# Top-level folders that the wheel carries inside the package (pyproject.toml's package-dir).
SHIPPED_AS = {"trooply": "trooply", "workers": "workers", "migrations": "trooply/_migrations",
              "profiles": "trooply/_profiles"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                    "-w", str(dist), str(source)], check=True)
    return next(dist.glob("trooply-*.whl"))


def test_the_wheel_carries_every_source_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{SHIPPED_AS[folder]}/{path.relative_to(ROOT / folder).as_posix()}"
                for folder in SHIPPED_AS for path in (ROOT / folder).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts}
    assert "trooply/vision/model_configs/trooply-test-tiny.json" in expected
    assert not expected - names, "missing from the wheel: add the package to pyproject.toml's [tool.setuptools]"


@pytest.mark.integration
def test_an_installed_wheel_migrates_and_serves(wheel: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    fresh_site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    # Only the dependencies: a plain directory on sys.path, so the checkout's editable-install hook is not run.
    borrowed = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (fresh_site / "test-dependencies.pth").write_text("\n".join(borrowed) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True)

    env = trooply_env(tmp_path / "data")
    env.pop("PYTHONPATH", None)
    located = subprocess.run(
        [python, "-c", "import trooply, trooply.db as db, trooply.ranking.profiles as profiles; "
                       "print(trooply.__file__, db.MIGRATIONS_DIR, profiles.DEFAULT_PROFILES_DIR, sep='\\n')"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    for path in located:
        assert Path(path).is_relative_to(fresh_site / "trooply"), f"{path} is not the installed wheel's"

    trooply = fresh / "bin" / "trooply"
    migrated = subprocess.run([trooply, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert migrated.returncode == 0 and "latest schema" in migrated.stdout, migrated.stderr

    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([trooply, "serve", "--port", str(port)], cwd=tmp_path, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, 60, process)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        # The merchant portal comes with the wheel: no Node.js, no build step at install time.
        portal = httpx.get(f"http://127.0.0.1:{port}/portal/", timeout=10)
        assert portal.status_code == 200 and "js/main.js" in portal.text
        assert httpx.get(f"http://127.0.0.1:{port}/portal/js/views/match-analysis.js", timeout=10).status_code == 200
    finally:
        stop(process)
        print(log_path.read_text())  # shown when the test fails
