"""A real bash session for tests that run documented commands as a reader would type them, one at a time, with
the shell's state (variables, background jobs) kept between them."""

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType


class Shell:
    """Everything the session prints goes to `log`; what a test reads comes back through files."""

    def __init__(self, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.cwd = cwd
        self._count = 0
        with open(log, "ab") as out:
            self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)

    def run(self, command: str, timeout: float = 120.0) -> int:
        """Runs one command in the session; answers its exit status."""
        self._count += 1
        done = self.cwd / f".status-{self._count}"
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\necho $? > {done}\n".encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while not done.exists() or not done.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no answer within {timeout}s from: {command}")
            time.sleep(0.05)
        return int(done.read_text())

    def value(self, name: str) -> str:
        target = self.cwd / ".value"
        assert self.run(f'printf %s "${name}" > {target}') == 0
        return target.read_text()

    def __enter__(self) -> "Shell":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # The session's group holds its background jobs (a server, an image host) too.
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
