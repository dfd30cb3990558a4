"""Every task name is declared once (trooply/tasks/names.py), has one function in the container, and one Celery
task that runs that function."""

from tests.conftest import make_settings
from trooply.container import Container
from trooply.tasks.names import FEED_SYNC_TASK, INGEST_TASK, POPULARITY_TASK, TASK_NAMES
from trooply.tasks.queue import INGEST_QUEUE, is_background, queue_of


def test_names_are_unique_and_background_ones_have_their_own_queue():
    assert len(set(TASK_NAMES)) == len(TASK_NAMES)
    assert queue_of(INGEST_TASK) == queue_of(POPULARITY_TASK) == INGEST_QUEUE
    assert is_background(FEED_SYNC_TASK) and queue_of(FEED_SYNC_TASK) == "trooply.background.sync_feed"


def test_the_container_registers_one_function_per_declared_name(tmp_path):
    container = Container(make_settings(tmp_path))
    try:
        assert set(container.tasks()) == set(TASK_NAMES)
    finally:
        container.db.close()


def test_celery_has_one_task_per_name_that_runs_the_registered_function(tmp_path, monkeypatch):
    import workers.tasks
    from workers.celery_app import app

    assert set(TASK_NAMES) <= set(app.tasks)
    ran = []

    class Dispatcher:
        def run(self, name, args):
            ran.append((name, args))
            return 7

    class Worker:
        dispatcher = Dispatcher()

    monkeypatch.setattr(workers.tasks, "container", lambda: Worker())
    assert app.tasks[FEED_SYNC_TASK]("tenant", "sync") == 7
    assert ran == [(FEED_SYNC_TASK, ["tenant", "sync"])]
