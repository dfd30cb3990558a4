"""Every form of TROOPLY_CLIP_MODEL open_clip takes: `local-dir:` folders (built here from a tiny config with a
dimension no shipped config has) and `hf-hub:` repositories, their config as the only source of the vector size,
preprocessing, tokenizer and scores, and one-line errors when they cannot load."""

import shutil

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from tests.support.models import CONTEXT_LENGTH, DIM, IMAGE_SIZE, write_local_dir_model
from trooply.vision.encoder import ClipEncoder, ModelLoadError, vector_space
from trooply.vision.scoring import SIGMOID, SOFTMAX


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "shop-siglip"
    write_local_dir_model(folder)
    return folder


@pytest.fixture(scope="module")
def encoder(folder):
    encoder = ClipEncoder.load(f"local-dir:{folder}", "openai", device="cpu")
    yield encoder
    encoder.close()


def photo(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (90, 140, 3), dtype=np.uint8))


def test_no_shipped_config_has_the_test_dimension():
    assert all((open_clip.get_model_config(name) or {}).get("embed_dim") != DIM for name in open_clip.list_models())


def test_a_local_dir_model_takes_size_preprocessing_tokenizer_and_scores_from_its_config(encoder, folder):
    assert encoder.space.size == DIM and encoder.space.name.startswith("shop-siglip__local-dir-")
    assert vector_space(f"local-dir:{folder}", "anything") == encoder.space
    assert encoder.encode_images([photo()]).shape == (1, DIM) and encoder.encode_text("red bag").shape == (DIM,)
    assert encoder.tokenizer.context_length == CONTEXT_LENGTH
    assert encoder.tokenizer(["a red bag"]).shape == (1, CONTEXT_LENGTH)
    # The folder's preprocess_cfg: squash (no centre crop) to 48 px, bilinear, mean and std 0.5.
    reference = open_clip.image_transform(IMAGE_SIZE, is_train=False, mean=(0.5,) * 3, std=(0.5,) * 3,
                                          interpolation="bilinear", resize_mode="squash")
    image = photo(1)
    assert torch.equal(encoder.preprocess(image), reference(image))
    assert encoder.scoring.kind == SIGMOID
    assert encoder.scoring.logit_bias == pytest.approx(-10.0) and encoder.scoring.logit_scale == pytest.approx(10.0)
    described = encoder.describe()
    assert described["model"] == f"local-dir:{folder}" and described["dim"] == DIM
    assert described["loaded_from"] == str(folder / "open_clip_pytorch_model.bin")
    assert described["space"] == encoder.space.name
    assert described["device"] == "cpu" and described["precision"] == "fp32"
    assert (described["image_size"], described["resize_mode"], described["context_length"]) == (
        (IMAGE_SIZE, IMAGE_SIZE), "squash", CONTEXT_LENGTH)
    assert described["scoring"] == {"kind": "sigmoid", "logit_scale": 10.0, "logit_bias": -10.0}


def test_it_loads_the_folders_weights_and_ignores_pretrained(encoder, folder):
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    with torch.inference_mode():
        theirs = torch.nn.functional.normalize(model.eval().encode_image(preprocess(photo(2))[None]), dim=-1)
    np.testing.assert_allclose(encoder.encode_images([photo(2)])[0], theirs[0].numpy(), atol=1e-5)
    other = ClipEncoder.load(f"local-dir:{folder}", "random", device="cpu")  # "random" does not apply to a folder
    np.testing.assert_array_equal(other.encode_text("blue shoes"), encoder.encode_text("blue shoes"))
    other.close()


def test_the_space_follows_the_weights_not_the_path(folder, tmp_path):
    copy = tmp_path / "elsewhere" / folder.name
    shutil.copytree(folder, copy)
    assert vector_space(f"local-dir:{copy}", "") == vector_space(f"local-dir:{folder}", "")
    write_local_dir_model(copy, seed=8)  # new weights, same folder: another space, so the index refuses to mix
    assert vector_space(f"local-dir:{copy}", "").name != vector_space(f"local-dir:{folder}", "").name


def test_a_clip_model_scores_by_softmax_at_its_own_scale(tmp_path):
    encoder = ClipEncoder.load(write_local_dir_model(tmp_path / "shop-clip", siglip=False), "", device="cpu")
    assert encoder.scoring.kind == SOFTMAX and encoder.scoring.logit_scale == pytest.approx(1 / 0.07)
    assert encoder.describe()["scoring"] == {"kind": "softmax", "logit_scale": round(1 / 0.07, 4)}
    encoder.close()


@pytest.mark.parametrize("damage, said", [
    (lambda f: shutil.rmtree(f), "no folder"),
    (lambda f: (f / "open_clip_config.json").unlink(), "no open_clip_config.json in"),
    (lambda f: (f / "open_clip_config.json").write_text('{"embed_dim": 48}'), "not an open_clip config"),
    (lambda f: (f / "open_clip_pytorch_model.bin").unlink(), "no weights in"),
    (lambda f: (f / "open_clip_pytorch_model.bin").write_bytes(b"not weights"), "could not load its weights from"),
])
def test_a_broken_folder_is_one_line_naming_it_and_the_fix(tmp_path, damage, said):
    folder = tmp_path / "broken"
    write_local_dir_model(folder)
    damage(folder)
    with pytest.raises(ModelLoadError) as caught:
        ClipEncoder.load(f"local-dir:{folder}", "openai", device="cpu")
    message = caught.value.message
    assert said in message and str(folder) in message and "\n" not in message
    assert "open_clip_config.json" in message and caught.value.code == "model_unavailable"


def test_an_unreachable_hub_repository_names_it_and_the_local_dir_fix(monkeypatch):
    def offline(_repo, **_kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nto load this file")

    monkeypatch.setattr(open_clip.factory, "_get_hf_config", offline)
    with pytest.raises(ModelLoadError) as caught:
        vector_space("hf-hub:Marqo/marqo-fashionSigLIP", "openai")
    message = caught.value.message
    assert message.startswith("CLIP model 'hf-hub:Marqo/marqo-fashionSigLIP' could not read its open_clip_config.json "
                              "from the Hugging Face hub (Marqo/marqo-fashionSigLIP): ")
    assert "TROOPLY_CLIP_MODEL=local-dir:" in message and "\n" not in message


def test_a_hub_model_takes_its_config_and_must_load_its_weights(monkeypatch, folder):
    config = open_clip.get_model_config(f"local-dir:{folder}")
    monkeypatch.setattr(open_clip, "get_model_config", lambda name: config)
    calls = []

    def no_weights(*args, **kwargs):
        calls.append(kwargs)
        raise RuntimeError("Required pretrained weights could not be loaded")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", no_weights)
    with pytest.raises(ModelLoadError) as caught:
        ClipEncoder.load("hf-hub:acme/shop-clip", "openai", device="cpu")
    assert vector_space("hf-hub:acme/shop-clip", "").name == "acme-shop-clip__hf-hub"
    assert caught.value.message.startswith("CLIP model 'hf-hub:acme/shop-clip' could not load its weights from the "
                                           "Hugging Face hub (acme/shop-clip): ")
    # open_clip would go on with random weights when a hub download fails: it is told not to.
    assert calls[0]["pretrained"] is None and calls[0]["require_pretrained"] is True
