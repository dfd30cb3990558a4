"""The embedded index's ownership of its data directory: one process at a time."""

import fcntl
from pathlib import Path

from trooply.errors import ServiceUnavailable


class DataDirLock:
    """An exclusive flock on `data_dir/index.lock`, held until `release()`. One per process: every index
    opened on the directory (one per vector space) shares it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        # A second process opening a shard breaks the first one's next flush: own the directory.
        self._file = open(data_dir / "index.lock", "a")  # noqa: SIM115 -- held, and locked, until release()
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise ServiceUnavailable(
                f"another Trooply process owns the data directory {data_dir}; stop it or use "
                "another TROOPLY_DATA_DIR", code="data_dir_locked") from None

    def release(self) -> None:
        self._file.close()  # releases the flock
