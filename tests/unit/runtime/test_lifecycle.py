"""One model lifecycle for CLIP, Whisper and the detector: load once on first use, unload on request or when idle,
load again after an unload, and after close the closed model stays."""

import threading
import time

from trooply.runtime.lifecycle import ModelLifecycle


class Model:
    def __init__(self, number: int) -> None:
        self.number, self.closed = number, False


def counting_lifecycle(idle_unload_s: float | None = None) -> tuple[ModelLifecycle[Model], list[Model]]:
    made: list[Model] = []

    def load() -> Model:
        time.sleep(0.01)  # long enough for concurrent callers to meet here
        made.append(Model(len(made)))
        return made[-1]

    def unload(model: Model) -> None:
        model.closed = True

    return ModelLifecycle("test", load, unload=unload, idle_unload_s=idle_unload_s,
                          describe=lambda model: {"number": model.number}), made


def test_concurrent_first_calls_load_once_and_share_the_model():
    lifecycle, made = counting_lifecycle()
    got: list[Model] = []
    threads = [threading.Thread(target=lambda: got.append(lifecycle.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and all(model is made[0] for model in got)
    assert lifecycle.describe() == {"loaded": True, "number": 0}


def test_an_unloaded_model_is_closed_and_the_next_call_loads_a_new_one():
    lifecycle, made = counting_lifecycle()
    assert lifecycle.describe() == {"loaded": False} and not lifecycle.unload()
    first = lifecycle.get()
    assert lifecycle.unload() and first.closed and not lifecycle.loaded
    assert lifecycle.get() is made[1] and not made[1].closed


def test_idle_unload_waits_for_the_idle_spell_and_never_applies_without_one():
    lifecycle, made = counting_lifecycle(idle_unload_s=0.05)
    lifecycle.get()
    assert not lifecycle.unload_if_idle()
    time.sleep(0.06)
    assert lifecycle.unload_if_idle() and made[0].closed
    kept, _ = counting_lifecycle(idle_unload_s=None)
    kept.get()
    time.sleep(0.01)
    assert not kept.unload_if_idle() and kept.loaded


def test_after_close_a_late_caller_gets_the_closed_model_not_a_new_one():
    lifecycle, made = counting_lifecycle()
    lifecycle.get()
    lifecycle.close()
    assert lifecycle.get() is made[0] and made[0].closed and len(made) == 1 and not lifecycle.loaded
    assert lifecycle.describe() == {"loaded": False}  # /readyz agrees with `loaded`


def test_describing_a_model_does_not_count_as_a_use():
    lifecycle, made = counting_lifecycle(idle_unload_s=0.05)
    lifecycle.get()
    time.sleep(0.06)
    assert lifecycle.describe() == {"loaded": True, "number": 0}
    assert lifecycle.unload_if_idle() and made[0].closed
