import threading
import time

from trooply.catalog.queue import InProcessQueue


def test_delayed_tasks_run_after_their_delay_and_a_failing_task_does_not_stop_the_pool():
    ran, done = [], threading.Event()

    def run(tenant_id, job_id, product_ids):
        ran.append((product_ids[0], time.monotonic()))
        if product_ids[0] == "boom":
            raise RuntimeError("bug in one batch")
        if len(ran) == 3:
            done.set()

    pool = InProcessQueue(workers=2)
    pool.start(run)
    try:
        started = time.monotonic()
        pool.dispatch("t", "j", ["late"], delay=0.3)
        pool.dispatch("t", "j", ["boom"])
        pool.dispatch("t", "j", ["now"])
        assert done.wait(5)
        order = [name for name, _ in ran]
        assert order[-1] == "late" and set(order) == {"late", "boom", "now"}
        assert dict(ran)["late"] - started >= 0.3
        pool.ping()
    finally:
        pool.stop()
    assert pool.depth() == 0
