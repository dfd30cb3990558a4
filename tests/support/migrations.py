"""Waiting on a model migration in a test, as an operator polls `GET /admin/v1/models` until it is ready."""

import time


def wait_ready(container, timeout: float = 60.0):
    """The migration's status once every tenant is re-encoded (it may cut over now); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (migrating := container.model_migration.status().migrating).ready:
        assert time.monotonic() < deadline, migrating
        time.sleep(0.05)
    return migrating
