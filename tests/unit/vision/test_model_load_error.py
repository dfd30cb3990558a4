"""CLIP weights that cannot load: one domain error naming the model, the source and the fix; one line from `serve`."""

import subprocess
import sys

import open_clip
import pytest

from tests.support.services import free_port, trooply_env
from trooply.vision.encoder import ClipEncoder, ModelLoadError

MODEL = "trooply-test-tiny"
FIX = "TROOPLY_CLIP_PRETRAINED=random"


def test_a_missing_checkpoint_names_the_model_and_the_setting() -> None:
    with pytest.raises(ModelLoadError) as caught:
        ClipEncoder.load(MODEL, "/nonexistent.pt", device="cpu")
    assert caught.value.code == "model_unavailable"
    assert "'/nonexistent.pt'" in caught.value.message and f"'{MODEL}'" in caught.value.message
    assert FIX in caught.value.message


def test_a_corrupt_checkpoint_is_one_line_naming_the_file(tmp_path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError) as caught:
        ClipEncoder.load(MODEL, str(path), device="cpu")
    message = caught.value.message
    assert str(path) in message and "checkpoint file" in message and FIX in message
    assert "\n" not in message


def test_weights_that_cannot_be_downloaded_name_the_hub(monkeypatch) -> None:
    def offline(*_args, **_kwargs):
        raise RuntimeError("Failed to download weights for tag 'openai':\n no network")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", offline)
    with pytest.raises(ModelLoadError) as caught:
        ClipEncoder.load("ViT-B-32", "openai", device="cpu")
    message = caught.value.message
    assert message.startswith("CLIP model 'ViT-B-32' could not load its weights 'openai' from the Hugging Face "
                              "hub (timm/vit_base_patch32_clip_224.openai): ")
    assert FIX in message and "Cause: Failed to download weights for tag 'openai': no network" in message


@pytest.mark.parametrize("pretrained, source", [("openai", "Hugging Face hub"), ("/nonexistent.pt", "/nonexistent.pt")])
def test_serve_prints_one_line_and_exits_non_zero(tmp_path, pretrained: str, source: str) -> None:
    # HF_HUB_OFFLINE fails the download at once; an empty HF_HOME keeps a developer's cached weights out.
    env = trooply_env(tmp_path / "data", TROOPLY_CLIP_MODEL="ViT-B-32", TROOPLY_CLIP_PRETRAINED=pretrained,
                      TROOPLY_PORT=str(free_port()), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, "-m", "trooply.cli", "serve"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error [model_unavailable]: ")]
    assert len(errors) == 1, result.stderr
    assert "'ViT-B-32'" in errors[0] and source in errors[0] and FIX in errors[0]


def test_serve_on_a_hub_model_out_of_reach_prints_one_line_pointing_to_local_dir(tmp_path) -> None:
    env = trooply_env(tmp_path / "data", TROOPLY_CLIP_MODEL="hf-hub:Marqo/marqo-fashionSigLIP",
                      TROOPLY_PORT=str(free_port()), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, "-m", "trooply.cli", "serve"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error [model_unavailable]: ")]
    assert len(errors) == 1, result.stderr
    assert "'hf-hub:Marqo/marqo-fashionSigLIP'" in errors[0] and "TROOPLY_CLIP_MODEL=local-dir:" in errors[0]
