"""Shared by the compose and Kubernetes checks: strict YAML loading and the settings names that exist."""

import os
import re

import pytest
import yaml

from trooply.config import Settings

KNOWN_SETTINGS = Settings.variables()
TROOPLY_NAME = re.compile(r"TROOPLY_[A-Z0-9_]+")


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a container with exactly this environment would read them."""
    for name in [n for n in os.environ if n.startswith("TROOPLY_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def consumed_queues(argv: list[str]) -> set[str]:
    """The Celery queues a `trooply worker …` command consumes."""
    import workers.tasks  # noqa: F401  (declares every task, as `trooply worker` does)
    from trooply.cli import _parser
    from trooply.tasks.queue import worker_queues

    assert argv[:2] == ["trooply", "worker"], argv
    return set(worker_queues(_parser().parse_args(argv[1:]).queues))


def background_queues() -> set[str]:
    """The Celery queues of the background tasks, one per kind."""
    from trooply.tasks.names import (
        COLOUR_REFRESH_TASK,
        DROP_SPACE_TASK,
        FEED_SYNC_TASK,
        PURGE_TASK,
        REENCODE_TASK,
        RETOKENISE_TASK,
        SCAN_TASK,
    )
    from trooply.tasks.queue import queue_of

    tasks = (PURGE_TASK, SCAN_TASK, REENCODE_TASK, DROP_SPACE_TASK, COLOUR_REFRESH_TASK, FEED_SYNC_TASK,
             RETOKENISE_TASK)
    queues = {queue_of(name) for name in tasks}
    assert len(queues) == len(tasks), queues
    return queues


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key repeated in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=True) for key, _ in node.value
                if getattr(key, "value", None) != "<<"]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
        return super().construct_mapping(node, deep)
