"""The micro-batcher: coalescing, priority of queries over ingest, shedding, error isolation, draining."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

from trooply.batching import INGEST, QUERY, BatchPolicy, MicroBatcher, Overloaded
from trooply.errors import ServiceUnavailable


class RecordingModel:
    """Doubles its inputs; records every pass; can be held at the start of a pass, or fail on an item."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.passes: list[list] = []
        self.seconds = seconds
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, items: list) -> list:
        self.started.set()
        self.gate.wait(10)
        if any(item == "bad" for item in items):
            raise ValueError("a bad item")
        self.passes.append(list(items))
        time.sleep(self.seconds)
        return [item * 2 for item in items]


def batcher(model, **policy) -> MicroBatcher:
    return MicroBatcher("test", "item", model, BatchPolicy(**{"max_wait_s": 0.02, **policy}))


def test_concurrent_callers_share_passes_and_each_gets_its_own_row():
    model = RecordingModel(seconds=0.05)
    runtime = batcher(model, max_batch=8)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: runtime.map([i])[0], range(8)))
    assert results == [i * 2 for i in range(8)]
    assert len(model.passes) < 8 and sum(len(p) for p in model.passes) == 8
    runtime.stop()


def test_items_arriving_during_a_pass_wait_for_company_and_go_together():
    model = RecordingModel()
    runtime = batcher(model, max_batch=8, max_wait_s=0.3)
    model.gate.clear()
    first = runtime.submit([1])
    assert model.started.wait(5)
    second = runtime.submit([2])  # the model is busy: this one waits for company
    model.gate.set()
    time.sleep(0.05)
    third = runtime.submit([3])
    assert [f.result(5) for f in first + second + third] == [2, 4, 6]
    assert model.passes == [[1], [2, 3]]
    runtime.stop()


def test_a_lone_item_on_an_idle_model_does_not_wait_for_company():
    model = RecordingModel()
    runtime = batcher(model, max_batch=8, max_wait_s=10.0)
    started = time.monotonic()
    assert runtime.map([1]) == [2]
    assert time.monotonic() - started < 5.0  # far under the 10 s it would wait for company under traffic
    runtime.stop()


def test_queries_go_before_waiting_ingest_and_never_share_its_pass():
    model = RecordingModel()
    runtime = batcher(model, max_batch=4)
    model.gate.clear()
    first = runtime.submit([1], INGEST)  # the pass in progress, held open
    assert model.started.wait(5)
    ingest = runtime.submit([10, 11, 12, 13, 14], INGEST)
    query = runtime.submit([7], QUERY)
    model.gate.set()
    assert [f.result(5) for f in first + ingest + query] == [2, 20, 22, 24, 26, 28, 14]
    assert model.passes == [[1], [7], [10, 11, 12, 13], [14]]
    runtime.stop()


def test_ingest_passes_can_be_kept_smaller_than_query_passes():
    model = RecordingModel()
    runtime = batcher(model, max_batch=4, max_ingest_batch=2)
    model.gate.clear()
    held = runtime.submit([0], QUERY)
    assert model.started.wait(5)
    later = runtime.submit([1, 2, 3], INGEST) + runtime.submit([4, 5, 6, 7, 8], QUERY)
    model.gate.set()
    assert [f.result(5) for f in held + later] == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    assert model.passes == [[0], [4, 5, 6, 7], [8], [1, 2], [3]]
    runtime.stop()


def test_queries_are_shed_with_a_retry_time_when_the_expected_wait_is_over_budget():
    model = RecordingModel(seconds=0.2)
    runtime = batcher(model, max_batch=1, wait_budget_s=0.5)
    runtime.map([0])  # teaches the batcher what a pass costs
    shed_before = REGISTRY.get_sample_value("trooply_runtime_shed_total", {"model": "test"}) or 0
    model.gate.clear()
    held = runtime.submit([1, 2, 3], QUERY)  # a pass running, two queued: ~0.6 s ahead of a newcomer
    assert model.started.wait(5)
    with pytest.raises(Overloaded) as refused:
        runtime.submit([4], QUERY)
    assert refused.value.status == 503 and refused.value.code == "overloaded"
    assert refused.value.details["retry_after"] >= 1
    assert REGISTRY.get_sample_value("trooply_runtime_shed_total", {"model": "test"}) == shed_before + 1
    runtime.submit([5], INGEST)  # ingest is delayed, never refused
    model.gate.set()
    assert [f.result(5) for f in held] == [2, 4, 6]
    runtime.stop()


def test_a_query_that_times_out_is_withdrawn_and_never_run():
    model = RecordingModel()
    runtime = batcher(model, max_batch=1, query_timeout_s=0.2)
    model.gate.clear()
    held = runtime.submit([1], INGEST)
    assert model.started.wait(5)
    with pytest.raises(ServiceUnavailable) as timed_out:
        runtime.map([2], QUERY)  # waits behind the held pass past its timeout
    assert timed_out.value.code == "model_timeout" and timed_out.value.status == 503
    model.gate.set()
    assert held[0].result(5) == 2
    assert runtime.map([3]) == [6]
    assert model.passes == [[1], [3]]  # the withdrawn item never reached the model
    runtime.stop()


def test_a_full_queue_refuses_queries():
    model = RecordingModel()
    runtime = batcher(model, max_batch=2, max_queue=3)
    with pytest.raises(Overloaded):
        runtime.submit([1, 2, 3, 4], QUERY)
    runtime.stop()


def test_one_bad_item_fails_alone():
    model = RecordingModel()
    runtime = batcher(model, max_batch=4)
    model.gate.clear()
    futures = runtime.submit([1, "bad", 3], QUERY)
    model.gate.set()
    assert futures[0].result(5) == 2 and futures[2].result(5) == 6
    with pytest.raises(ValueError, match="a bad item"):
        futures[1].result(5)
    runtime.stop()


def test_stop_drains_what_is_queued_and_refuses_new_work():
    model = RecordingModel(seconds=0.02)
    runtime = batcher(model, max_batch=2)
    model.gate.clear()
    futures = runtime.submit(list(range(6)), INGEST)
    stopper = threading.Thread(target=runtime.stop)
    stopper.start()
    model.gate.set()
    stopper.join(10)
    assert [f.result(0) for f in futures] == [i * 2 for i in range(6)]
    with pytest.raises(ServiceUnavailable):
        runtime.submit([1])
