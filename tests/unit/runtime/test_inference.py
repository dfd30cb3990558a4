"""The model runtime's optional models: loaded on first use, one call at a time, unloaded when idle."""

import threading
import time

import pytest

from trooply.batching import Overloaded
from trooply.runtime.inference import ModelSlot


class Loads:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"model-{self.count}"


def test_a_slot_loads_on_first_use_and_unloads_after_idle():
    loads = Loads()
    slot = ModelSlot("opt", loads, idle_unload_s=0.2, max_queue=4, describe=lambda m: {"name": m})
    assert slot.status() == {"loaded": False, "waiting": 0} and loads.count == 0
    assert slot.run(lambda model: model.upper()) == "MODEL-1"
    assert slot.status() == {"loaded": True, "waiting": 0, "name": "model-1"}
    assert slot.unload_if_idle() is False  # used just now
    time.sleep(0.25)
    assert slot.unload_if_idle() is True and not slot.loaded
    assert slot.run(lambda model: model) == "model-2"  # loaded again on demand
    slot.close()


def test_a_slot_runs_one_call_at_a_time_and_refuses_beyond_its_queue():
    slot = ModelSlot("opt", Loads(), idle_unload_s=60, max_queue=2)
    gate, inside = threading.Event(), []

    def held(model):
        inside.append(model)
        gate.wait(5)
        return len(inside)

    calls = [threading.Thread(target=slot.run, args=(held,)) for _ in range(2)]
    for call in calls:
        call.start()
    while not inside:
        time.sleep(0.01)
    assert len(inside) == 1  # the second waits its turn
    with pytest.raises(Overloaded):
        slot.run(held)
    gate.set()
    for call in calls:
        call.join(5)
    assert len(inside) == 2
    slot.close()
