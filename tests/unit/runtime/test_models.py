"""The model runtime's optional models: loaded on first use, one call at a time, unloaded when idle."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from tests.support.images import solid_png
from trooply.api.app import create_app
from trooply.batching import Overloaded
from trooply.runtime.models import ModelSlot


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


def test_a_query_over_the_runtime_queue_is_a_503_with_retry_after(tmp_path):
    settings = make_settings(tmp_path, runtime_max_queue=1)
    with TestClient(create_app(settings)) as client:
        keys = new_tenant(client)
        files = [("files", (f"{i}.png", solid_png(40, 40, (i * 90, 0, 0)), "image/png")) for i in range(2)]
        response = client.post("/v1/search/multi", files=files, headers=auth(keys.publishable_key))
        assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"
        assert int(response.headers["retry-after"]) >= 1
        metrics = client.get("/metrics").text
        assert 'trooply_runtime_shed_total{model="trooply-test-tiny"}' in metrics
