"""A model folder in open_clip's hub layout (`local-dir:`), built in the test: a tiny config with a dimension no
shipped config has, its own preprocessing and context length, and random weights saved beside it."""

import json
from pathlib import Path

import open_clip
import torch

DIM = 48  # no shipped config (64, 512, 768, 1024, ...) has it
CONTEXT_LENGTH = 32
IMAGE_SIZE = 48
PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "resize_mode": "squash"}


def tiny_model_config(siglip: bool) -> dict:
    config = {
        "embed_dim": DIM,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    if siglip:  # a learned bias and a sigmoid, as SigLIP models are trained
        config |= {"init_logit_bias": -10.0, "init_logit_scale": 2.302585}  # scale e^2.30 = 10
    return config


def write_local_dir_model(folder: Path, siglip: bool = True, seed: int = 7) -> str:
    """Writes open_clip_config.json and open_clip_pytorch_model.bin; returns the `local-dir:` model name."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": tiny_model_config(siglip), "preprocess_cfg": PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return f"local-dir:{folder}"
