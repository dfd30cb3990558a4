"""Celery's tasks: one per task name (trooply/tasks/names.py), each running the function the container
registers under that name (`Container.tasks`), in this worker's container. A new task is its name in names.py and
its function in `Container.tasks`: nothing here. The names are the contract with messages already queued, so they
never change."""

from typing import Any

from celery import Task

from trooply.tasks.names import TASK_NAMES
from workers.celery_app import app, container


def _celery_task(name: str) -> Task:
    def run(*args: Any) -> object:
        return container().dispatcher.run(name, list(args))

    run.__name__ = run.__qualname__ = name.removeprefix("trooply.")
    return app.task(name=name)(run)


CELERY_TASKS = {name: _celery_task(name) for name in TASK_NAMES}
