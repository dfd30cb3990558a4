"""Celery's tasks: one per task name (trooply/tasks/names.py), each running the function the container
registers under that name (`Container.tasks`), in this worker's container. A new task is its name in names.py and
its function in `Container.tasks`: nothing here. The names are the contract with messages already queued, so they
never change."""

from typing import Any

from celery import Task

from trooply.tasks.names import TASK_NAMES
from trooply.tasks.queue import ENTER_TASK, TURN_TASK, CeleryDispatcher
from workers.celery_app import app, container


def _celery_task(name: str) -> Task:
    def run(*args: Any) -> object:
        return container().dispatcher.run(name, list(args))

    run.__name__ = run.__qualname__ = name.removeprefix("trooply.")
    return app.task(name=name)(run)


def _celery_dispatcher() -> CeleryDispatcher:
    dispatcher = container().dispatcher
    assert isinstance(dispatcher, CeleryDispatcher), "a Celery worker needs TROOPLY_REDIS_URL"
    return dispatcher


@app.task(name=TURN_TASK, bind=True)
def take_turn(self: Task, queue: str) -> None:
    """One turn of the tenants' round robin (trooply/tasks/fair_share.py): what most messages are now."""
    _celery_dispatcher().take_turn(queue, self.request.id)


@app.task(name=ENTER_TASK)
def enter_line(name: str, args: list) -> None:
    """A delayed task (a retry) whose time has come: it joins its tenant's line."""
    _celery_dispatcher().enter(name, args)


# Each task name still runs directly: messages sent by name (beat's, and those queued before the tenants' lines).
CELERY_TASKS = {name: _celery_task(name) for name in TASK_NAMES}
