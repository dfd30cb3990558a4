"""The ONNX Runtime towers: exported once and reused, probed against PyTorch, and PyTorch whenever either fails."""

import logging
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from PIL import Image
from prometheus_client import REGISTRY

from tests.conftest import make_settings
from tests.support.models import write_local_dir_model
from trooply.batching import INGEST, BatchPolicy
from trooply.vision.clip_runtime import IMAGE_FILE, PROBE_FLOOR, ingest_workers, resolve_runtime
from trooply.vision.encoder import ClipEncoder

MODEL = "trooply-test-tiny"
REPO = Path(__file__).resolve().parents[3]  # `python -c` puts its cwd on sys.path


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def reference() -> ClipEncoder:
    return ClipEncoder.load(MODEL, "random", device="cpu")


def onnx_encoder(export_dir: Path, runtime: str = "onnx", **options) -> ClipEncoder:
    return ClipEncoder.load(MODEL, "random", device="cpu", runtime=runtime, export_dir=export_dir, **options)


def photos(count: int, seed: int) -> list[Image.Image]:
    """Not the probe's pictures: smooth colour fields of different sizes."""
    rng = np.random.default_rng(seed)
    pictures = []
    for _ in range(count):
        height, width = rng.integers(60, 200, 2)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        channels = [127 + 100 * np.sin(x / rng.uniform(5, 40) + phase) * np.cos(y / rng.uniform(5, 40))
                    for phase in rng.uniform(0, 3, 3)]
        pictures.append(Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)))
    return pictures


TEXTS = ["navy wool coat", "a ceramic teapot with a bamboo handle", "gold bracelet", "kids' rain boots"]


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_text_and_image_vectors_match_pytorch_within_the_runtimes_tolerance(export_dir, reference, runtime):
    encoder = onnx_encoder(export_dir, runtime)
    described = encoder.describe()["runtime"]
    floor = PROBE_FLOOR[described["precision"]]
    assert described["runtime"] == "onnx" and described["probe_min_cosine"] >= floor
    images = photos(5, seed=3)
    image_cosines = (encoder.encode_images(images) * reference.encode_images(images)).sum(axis=1)
    text_cosines = (encoder.encode_texts(TEXTS) * reference.encode_texts(TEXTS)).sum(axis=1)
    print(f"{runtime}: image cosine min {image_cosines.min():.6f}, text {text_cosines.min():.6f}")
    assert image_cosines.min() >= floor and text_cosines.min() >= floor
    vectors = encoder.encode_images(images[:2])
    assert vectors.dtype == np.float32 and vectors.shape == (2, reference.space.size)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert encoder.space == reference.space  # one vector space: the index takes either runtime's vectors
    encoder.close()


def test_the_export_is_reused_at_the_next_start(tmp_path):
    first = onnx_encoder(tmp_path)
    report = first.describe()["runtime"]
    assert report["export"].startswith("exported in")
    folder = Path(report["folder"])
    written = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    vectors = first.encode_texts(TEXTS)
    first.close()

    second = onnx_encoder(tmp_path)
    assert second.describe()["runtime"]["export"] == "reused"
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == written
    # No second copy and no scratch folder left behind: the export and its lock file.
    assert {path.name for path in tmp_path.iterdir()} == {folder.name, f".{folder.name}.lock"}
    np.testing.assert_array_equal(second.encode_texts(TEXTS), vectors)
    second.close()


def test_an_export_killed_midway_leaves_nothing_the_next_start_reads(tmp_path):
    first = onnx_encoder(tmp_path)
    folder = Path(first.describe()["runtime"]["folder"])
    first.close()
    shutil.rmtree(folder)
    half_done = tmp_path / f".{folder.name}-killed"  # a scratch folder with a partial file, as a kill leaves it
    half_done.mkdir()
    (half_done / IMAGE_FILE).write_bytes(b"partial")

    again = onnx_encoder(tmp_path)
    report = again.describe()["runtime"]
    assert report["runtime"] == "onnx" and report["export"].startswith("exported in")
    assert not half_done.exists()
    again.close()


def test_processes_starting_together_export_once(tmp_path):
    """The API and a worker on one data dir: one exports while the other waits, then reuses it."""
    code = ("import sys; from pathlib import Path; from trooply.vision.encoder import ClipEncoder; "
            f"encoder = ClipEncoder.load({MODEL!r}, 'random', device='cpu', runtime='onnx', "
            "export_dir=Path(sys.argv[1])); "
            "sys.stdout.write(encoder.describe()['runtime'].get('export', 'none'))")
    starts = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    exports = sorted(process.communicate(timeout=120)[0] for process in starts)
    assert exports[0].startswith("exported in") and exports[1] == "reused", exports


def test_int8_and_fp32_are_exported_apart(export_dir):
    fp32, int8 = onnx_encoder(export_dir, "onnx"), onnx_encoder(export_dir, "onnx-int8")
    assert fp32.describe()["runtime"]["folder"] != int8.describe()["runtime"]["folder"]
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    fp32.close()
    int8.close()


def test_a_failed_export_serves_with_pytorch_and_says_so_in_one_line(tmp_path, reference, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the export folder should be")
    with caplog.at_level(logging.WARNING, logger="trooply.vision.clip_runtime"):
        encoder = onnx_encoder(blocked)
    report = encoder.describe()["runtime"]
    assert report["requested"] == "onnx" and report["runtime"] == "torch" and report["precision"] == "fp32"
    assert report["fallback"].startswith("onnx: export to") and "failed" in report["fallback"]
    lines = [record for record in caplog.records if record.name == "trooply.vision.clip_runtime"]
    assert len(lines) == 1 and "serving with PyTorch" in lines[0].getMessage()
    np.testing.assert_array_equal(encoder.encode_texts(TEXTS), reference.encode_texts(TEXTS))
    encoder.close()


def break_weights(path: Path) -> None:
    """The graph as exported, its weight matrices replaced by noise of the same spread."""
    model = onnx.load(str(path))
    rng = np.random.default_rng(1)
    for initializer in model.graph.initializer:
        weights = numpy_helper.to_array(initializer)
        if weights.dtype == np.float32 and weights.ndim == 2:
            noise = rng.standard_normal(weights.shape).astype(np.float32) * (weights.std() or 1.0)
            initializer.CopyFrom(numpy_helper.from_array(noise, initializer.name))
    onnx.save(model, str(path))


def test_a_runtime_whose_vectors_drift_is_refused_by_the_probe(tmp_path, reference, caplog):
    healthy = onnx_encoder(tmp_path)
    folder = Path(healthy.describe()["runtime"]["folder"])
    healthy.close()
    break_weights(folder / IMAGE_FILE)

    with caplog.at_level(logging.WARNING, logger="trooply.vision.clip_runtime"):
        refused = onnx_encoder(tmp_path)
    report = refused.describe()["runtime"]
    assert report["runtime"] == "torch" and report["probe_floor"] == 0.999
    assert report["probe_min_cosine"] < 0.999 and "probe cosine" in report["fallback"]
    assert any("probe cosine" in record.getMessage() for record in caplog.records)
    images = photos(2, seed=4)
    np.testing.assert_array_equal(refused.encode_images(images), reference.encode_images(images))
    refused.close()


def test_a_refused_int8_serves_with_onnx_fp32_and_says_so_in_one_line(tmp_path, reference, caplog, monkeypatch):
    monkeypatch.setitem(PROBE_FLOOR, "int8", 1.01)  # no int8 vector reaches it: int8 is refused
    with caplog.at_level(logging.WARNING, logger="trooply.vision.clip_runtime"):
        encoder = onnx_encoder(tmp_path, "onnx-int8")
    report = encoder.describe()["runtime"]
    assert (report["requested"], report["runtime"], report["precision"]) == ("onnx-int8", "onnx", "fp32")
    assert report["fallback"].startswith("onnx-int8: probe cosine") and report["folder"].endswith("-fp32")
    assert report["probe_min_cosine"] >= PROBE_FLOOR["fp32"] and encoder.precision == "fp32"
    lines = [record.getMessage() for record in caplog.records if record.name == "trooply.vision.clip_runtime"]
    assert len(lines) == 1 and lines[0].endswith("serving with ONNX Runtime fp32")
    images = photos(3, seed=5)
    cosines = (encoder.encode_images(images) * reference.encode_images(images)).sum(axis=1)
    assert cosines.min() >= PROBE_FLOOR["fp32"]
    encoder.close()


def test_int8_and_then_fp32_refused_serve_with_pytorch(tmp_path, reference, caplog, monkeypatch):
    monkeypatch.setitem(PROBE_FLOOR, "int8", 1.01)
    monkeypatch.setitem(PROBE_FLOOR, "fp32", 1.01)
    with caplog.at_level(logging.WARNING, logger="trooply.vision.clip_runtime"):
        encoder = onnx_encoder(tmp_path, "onnx-int8")
    report = encoder.describe()["runtime"]
    assert report["runtime"] == "torch" and report["folder"].endswith("-int8")
    assert report["fallback"].startswith("onnx-int8: probe cosine")
    assert "; then onnx (fp32): probe" in report["fallback"]
    lines = [record.getMessage() for record in caplog.records if record.name == "trooply.vision.clip_runtime"]
    assert len(lines) == 1 and lines[0].endswith("serving with PyTorch")
    np.testing.assert_array_equal(encoder.encode_texts(TEXTS), reference.encode_texts(TEXTS))
    encoder.close()


def image_passes() -> float:
    return REGISTRY.get_sample_value("trooply_runtime_batch_size_count", {"model": MODEL, "kind": "image"}) or 0


def test_the_batcher_coalesces_concurrent_queries_on_onnx(export_dir):
    encoder = onnx_encoder(export_dir, policy=BatchPolicy(max_batch=8, max_wait_s=0.05))
    images = photos(8, seed=5)
    alone = [encoder.encode_images([image])[0] for image in images]
    passes_before = image_passes()
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda image: encoder.encode_images([image])[0], images))
    assert image_passes() - passes_before < 8  # coalesced into shared passes
    for mine, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(mine, single, atol=1e-5)
    # An ingest batch (several images: preprocessed on the pool) gives the vectors queries get.
    np.testing.assert_allclose(encoder.encode_images(images, priority=INGEST), np.stack(alone), atol=1e-5)
    encoder.close()


def test_a_local_dir_model_exports_and_new_weights_export_again(tmp_path):
    """A SigLIP-style folder model (its own size, preprocessing and context length): the exporter sees the loaded
    model, wherever it came from; retrained weights in the same folder are a new export, never the old one reused."""
    name = write_local_dir_model(tmp_path / "model", seed=7)
    first = ClipEncoder.load(name, "", device="cpu", runtime="onnx-int8", export_dir=tmp_path / "onnx")
    report = first.describe()["runtime"]
    assert report["runtime"] == "onnx" and report["probe_min_cosine"] >= 0.99
    first.close()

    write_local_dir_model(tmp_path / "model", seed=8)
    second = ClipEncoder.load(name, "", device="cpu", runtime="onnx-int8", export_dir=tmp_path / "onnx")
    again = second.describe()["runtime"]
    assert again["export"].startswith("exported in") and again["folder"] != report["folder"]
    second.close()


def test_onnx_threads_follow_the_setting_else_torchs(export_dir):
    sized = onnx_encoder(export_dir, onnx_threads=1)
    assert sized.describe()["runtime"]["threads"] == 1
    default = onnx_encoder(export_dir)
    assert default.describe()["runtime"]["threads"] == torch.get_num_threads()
    sized.close()
    default.close()


def test_auto_is_onnx_on_a_cpu_and_pytorch_on_cuda():
    assert resolve_runtime("auto", torch.device("cpu")) == "onnx"
    assert resolve_runtime("auto", torch.device("cuda")) == "torch"
    assert resolve_runtime("onnx-int8", torch.device("cpu")) == "onnx-int8"


@pytest.mark.parametrize(("runtime", "device", "cores", "workers"), [
    ("torch", "cpu", 2, 2), ("torch", "cpu", 16, 2), ("auto", "cuda", 2, 2),
    ("onnx-int8", "cpu", 2, 4), ("onnx", "cpu", 1, 4), ("auto", "cpu", 3, 6), ("onnx-int8", "cpu", 32, 8),
])
def test_ingest_workers_keep_the_runtimes_model_busy(tmp_path, monkeypatch, runtime, device, cores, workers):
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    settings = make_settings(tmp_path, ingest_workers=None, clip_runtime=runtime, clip_device=device)
    assert ingest_workers(settings) == workers


def test_ingest_workers_set_by_the_operator_win(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert ingest_workers(make_settings(tmp_path, ingest_workers=3, clip_runtime="onnx-int8")) == 3


def test_pytorch_is_asked_for_by_name(export_dir, reference):
    encoder = onnx_encoder(export_dir, "torch")
    assert encoder.describe()["runtime"] == {"requested": "torch", "runtime": "torch", "precision": "fp32"}
    np.testing.assert_array_equal(encoder.encode_texts(TEXTS), reference.encode_texts(TEXTS))
    encoder.close()
