"""CLIP's load in its two stages, each on its own: the weights read once (`read_clip`), then the runtime that
serves them (`serve_clip`: ONNX towers exported if missing, opened, probed; a refusal falls back)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trooply.vision.clip_runtime import MANIFEST_FILE, PROBE_FLOOR, ExportRequest, OnnxExport, OnnxTowers
from trooply.vision.encoder import ClipWeights, read_clip, serve_clip

MODEL = "trooply-test-tiny"
TEXTS = ["navy wool coat", "gold bracelet"]


@pytest.fixture(scope="module")
def weights() -> ClipWeights:
    return read_clip(MODEL, "random", device="cpu")


def export_request(weights: ClipWeights) -> ExportRequest:
    size = weights.preprocess_cfg["size"]
    image_size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return ExportRequest(weights.model, weights.source.space.name, weights.source.config, image_size,
                         weights.tokenizer)


def test_one_read_serves_either_runtime(weights, tmp_path):
    on_torch = serve_clip(weights, "torch")
    assert on_torch.runtime.runtime == "torch" and on_torch.model is weights.model
    assert list(tmp_path.iterdir()) == []  # PyTorch needs no export
    on_onnx = serve_clip(weights, "onnx", tmp_path, onnx_threads=1)
    report = on_onnx.runtime
    assert (report.runtime, report.precision, report.threads) == ("onnx", "fp32", 1)
    assert on_onnx.model is None  # ONNX Runtime holds the weights: PyTorch's copy is not kept
    assert Path(report.folder).parent == tmp_path and report.probe_min_cosine >= PROBE_FLOOR["fp32"]
    tokens = weights.tokenizer(TEXTS)
    cosines = (on_torch.towers.encode_texts(tokens) * on_onnx.towers.encode_texts(tokens)).sum(axis=1)
    assert cosines.min() >= PROBE_FLOOR["fp32"]


def test_an_export_is_made_once_then_read_from_its_cache(weights, tmp_path):
    export = OnnxExport.of(export_request(weights), tmp_path, "fp32")
    assert export.folder.name.startswith(weights.source.space.name) and export.folder.name.endswith("-fp32")
    assert not export.cached
    assert export.export_if_missing().startswith("exported in") and export.cached
    manifest = (export.folder / MANIFEST_FILE).read_text()
    assert export.export_if_missing() == "reused"
    assert (export.folder / MANIFEST_FILE).read_text() == manifest  # not written again
    # The same weights name the same folder: another process finds the export there.
    assert OnnxExport.of(export_request(weights), tmp_path, "fp32").folder == export.folder

    towers = OnnxTowers.open(export.folder, threads=1)
    pixels = weights.preprocess(Image.new("RGB", (64, 48), (200, 30, 40)))[None]
    vectors = towers.encode_images(pixels)
    assert vectors.shape == (1, weights.source.space.size)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_opening_a_missing_export_fails_in_the_loader(tmp_path):
    with pytest.raises(Exception, match="image.onnx"):
        OnnxTowers.open(tmp_path / "never-exported", threads=1)


def test_a_refused_runtime_falls_back_to_pytorch_and_says_why(weights):
    served = serve_clip(weights, "onnx-int8", export_dir=None)
    assert served.runtime.runtime == "torch" and served.model is weights.model
    assert served.runtime.fallback == "onnx-int8: no export folder was given"
