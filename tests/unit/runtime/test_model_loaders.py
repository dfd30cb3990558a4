"""The optional models load through their loaders, on the runtime's slots: the ONNX detector from the path the
settings name (its contract checked at load), Whisper from the shipped tiny.en model."""

import pytest
from PIL import Image

from tests.conftest import make_settings
from tests.support.detector_graph import tiny_detector_graph
from tests.support.speech import spoken_wav
from trooply.runtime.inference import ModelRuntime, SlotDetector


def test_the_onnx_detector_loads_on_first_use_from_the_settings_path(tmp_path):
    path = tmp_path / "detector.onnx"
    tiny_detector_graph(path, boxes=[[8, 8, 40, 40]], scores=[0.9], labels=[0])
    runtime = ModelRuntime(make_settings(tmp_path, detector="onnx", detector_onnx_path=path))
    try:
        assert runtime.detector is not None and runtime.describe()["detector"]["loaded"] is False
        detections, _ = SlotDetector(runtime.detector).detect(Image.new("RGB", (128, 128)))
        assert [(d.class_id, d.box) for d in detections] == [(0, (16.0, 16.0, 80.0, 80.0))]
        described = runtime.describe()["detector"]
        assert described["loaded"] is True and described["model"] == str(path) and described["input_size"] == [64, 64]
    finally:
        runtime.stop()


def test_a_detector_graph_without_the_contract_fails_its_load_not_the_start(tmp_path):
    from onnx import TensorProto, helper, save

    path = tmp_path / "wrong.onnx"
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "wrong",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    save(model, str(path))
    runtime = ModelRuntime(make_settings(tmp_path, detector="onnx", detector_onnx_path=path))
    try:
        assert runtime.detector is not None
        with pytest.raises(ValueError, match="boxes, scores and labels"):
            SlotDetector(runtime.detector).detect(Image.new("RGB", (32, 32)))
        assert runtime.describe()["detector"]["loaded"] is False
    finally:
        runtime.stop()


def test_whisper_loads_on_first_use_and_transcribes(tmp_path):
    runtime = ModelRuntime(make_settings(tmp_path))
    try:
        assert runtime.describe()["whisper"]["loaded"] is False
        text = runtime.transcribe(spoken_wav("blue running shoes under fifty dollars", tmp_path).read_bytes())
        assert "running shoes" in text.lower()
        described = runtime.describe()["whisper"]
        assert (described["loaded"], described["device"], described["precision"]) == (True, "cpu", "int8")
    finally:
        runtime.stop()
