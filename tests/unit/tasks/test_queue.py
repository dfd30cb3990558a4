import threading
import time

import pytest

import trooply.tasks.queue as queue_module
from trooply.tasks.queue import InProcessQueue, TaskRegistry, background_task

SCAN, REENCODE = "tests.queue.scan", "tests.queue.reencode"


@pytest.fixture
def background_kinds(monkeypatch):
    """Two background task names, declared for this test only (the declarations are process-wide)."""
    monkeypatch.setattr(queue_module, "_background_queues", dict(queue_module._background_queues))
    background_task(SCAN)
    background_task(REENCODE)


def test_delayed_tasks_run_after_their_delay_and_a_failing_task_does_not_stop_the_pool():
    ran, done = [], threading.Event()

    def run(tenant_id, job_id, product_ids):
        ran.append((product_ids[0], time.monotonic()))
        if product_ids[0] == "boom":
            raise RuntimeError("bug in one batch")
        if len(ran) == 3:
            done.set()

    pool = InProcessQueue(workers=2)
    pool.register("ingest", run)
    pool.start()
    try:
        started = time.monotonic()
        pool.send("ingest", ["t", "j", ["late"]], delay=0.3)
        pool.send("ingest", ["t", "j", ["boom"]])
        pool.send("ingest", ["t", "j", ["now"]])
        assert done.wait(5)
        order = [name for name, _ in ran]
        assert order[-1] == "late" and set(order) == {"late", "boom", "now"}
        assert dict(ran)["late"] - started >= 0.3
        pool.ping()
    finally:
        pool.stop()
    assert pool.depth() == 0
    with pytest.raises(RuntimeError, match="not running"):
        pool.ping()


def test_tasks_sent_before_start_wait_for_the_pool_and_run_by_name(background_kinds):
    ran, done = [], threading.Event()

    def ingest(*args):
        ran.append(("ingest", *args))
        done.set()

    pool = InProcessQueue(workers=1)
    pool.register(SCAN, lambda tenant_id, scan_id: ran.append(("scan", tenant_id, scan_id)))
    pool.register("ingest", ingest)
    pool.send("ingest", ["t", "j", ["p1"]])
    assert pool.depth() == 1 and ran == []  # queued, nothing runs before start (`trooply reindex` leaves it so)
    pool.start()
    try:
        assert done.wait(5)
        pool.send(SCAN, ["t", "dup_1"])
        deadline = time.monotonic() + 5
        while len(ran) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pool.stop()
    assert ran == [("ingest", "t", "j", ["p1"]), ("scan", "t", "dup_1")]


def test_a_long_running_task_never_holds_up_the_batches(background_kinds):
    release, batch_ran = threading.Event(), threading.Event()
    pool = InProcessQueue(workers=1)  # one batch thread: a scan on it would block every ingest batch
    pool.register(SCAN, lambda: release.wait(10))
    pool.register("ingest", batch_ran.set)
    pool.start()
    try:
        pool.send(SCAN, [])
        pool.send("ingest", [])
        assert batch_ran.wait(5), "the batch waited for the long task"
        deadline = time.monotonic() + 5
        while pool.depth():  # ingest batches only: the scan, still running, is not one
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        release.set()
        pool.stop()


def test_each_kind_of_background_task_runs_one_at_a_time_beside_the_others(background_kinds):
    """A migration queues a re-encode per tenant at once: a merchant's scan must not wait behind them all."""
    release, scanned, all_done = threading.Event(), threading.Event(), threading.Event()
    running, most_at_once, finished, lock = [0], [0], [0], threading.Lock()

    def reencode() -> None:
        with lock:
            running[0] += 1
            most_at_once[0] = max(most_at_once[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
            finished[0] += 1
            if finished[0] == 3:
                all_done.set()

    pool = InProcessQueue(workers=1)
    pool.register(REENCODE, reencode)
    pool.register(SCAN, scanned.set)
    pool.start()
    try:
        for _ in range(3):
            pool.send(REENCODE, [])
        pool.send(SCAN, [])
        assert scanned.wait(5), "the scan waited behind the re-encodes"
        assert finished[0] == 0  # the first re-encode still runs
    finally:
        release.set()
        assert all_done.wait(5)
        pool.stop()
    assert most_at_once[0] == 1


def test_an_unknown_task_is_an_error_where_it_runs_and_a_name_registers_once():
    tasks = TaskRegistry()
    tasks.register("ingest", lambda x: x * 2)
    assert tasks.run("ingest", [21]) == 42
    with pytest.raises(ValueError, match="twice"):
        tasks.register("ingest", print)
    with pytest.raises(LookupError, match="no task 'purge'"):
        tasks.run("purge", [])


@pytest.mark.parametrize("kind, workers", [(SCAN, 1), ("ingest", 2)])
def test_tenants_take_turns_so_a_flood_from_one_delays_another_by_one_task(background_kinds, kind, workers):
    ran, release, all_done = [], threading.Event(), threading.Event()

    def task(tenant_id, label, *_):
        ran.append((tenant_id, label))
        release.wait(5)
        if len(ran) == 10:
            all_done.set()

    pool = InProcessQueue(workers=workers)
    pool.register(kind, task)
    for number in range(6):  # six scans of one tenant (thresholds 0.5, 0.5001, ...), queued first
        pool.send(kind, ["flood", f"f{number}"])
    for number in range(2):
        pool.send(kind, ["other", f"o{number}"])
    pool.send(kind, ["third", "t0"])
    pool.send(kind, ["flood", "f6"])
    pool.start()
    try:
        release.set()
        assert all_done.wait(10)
    finally:
        pool.stop()
    order = [label for _, label in ran]
    assert order.index("o0") <= workers and order.index("t0") <= workers + 1, order
    assert order.index("o1") < order.index("f3"), "each tenant's next task comes round in turn"
    assert [label for label in order if label.startswith("f")] == [f"f{n}" for n in range(7)]
