"""The runtime loads CLIP from the settings through its stages: the runtime the settings name, its export in
the export folder they name."""

from pathlib import Path

from tests.conftest import make_settings
from trooply.runtime.inference import ModelRuntime


def test_the_runtime_loads_clip_on_the_runtime_and_export_folder_of_the_settings(tmp_path):
    runtime = ModelRuntime(make_settings(tmp_path, clip_runtime="onnx", onnx_threads=1,
                                         clip_export_dir=tmp_path / "exports"))
    try:
        report = runtime.clip().describe()["runtime"]
        assert (report["requested"], report["runtime"], report["threads"]) == ("onnx", "onnx", 1)
        assert Path(report["folder"]).parent == tmp_path / "exports"
        assert runtime.describe()["clip"]["loaded"] is True
    finally:
        runtime.stop()

    on_torch = ModelRuntime(make_settings(tmp_path / "other"))  # the tests' default: PyTorch
    try:
        assert on_torch.clip().describe()["runtime"] == {"requested": "torch", "runtime": "torch",
                                                         "precision": "fp32"}
        assert not (tmp_path / "other" / "onnx").exists()
    finally:
        on_torch.stop()
