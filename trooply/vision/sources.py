"""Where a CLIP model comes from, read before it loads.

`TROOPLY_CLIP_MODEL` takes every form open_clip takes: a registry name with `TROOPLY_CLIP_PRETRAINED` (a
pretrained tag, a checkpoint file, or `random`), `hf-hub:org/repo`, or `local-dir:/path` (a folder in the
hub's layout: `open_clip_config.json` and the weights). The model's own config, never an assumption, gives
the vector size here and the preprocessing and tokenizer at load; the vector space named here is what the
index checks a collection against.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
from open_clip.factory import _find_checkpoint_in_dir, parse_model_name

from trooply.errors import TrooplyError
from trooply.vectors import VectorSpace

RANDOM = "random"
HF_HUB, LOCAL_DIR = "hf-hub", "local-dir"
CONFIG_FILE = "open_clip_config.json"
_REGISTRY_FIX = ("set TROOPLY_CLIP_PRETRAINED=/path/to/checkpoint.pt for local weights, "
                 "or TROOPLY_CLIP_PRETRAINED=random for a demo without retrieval quality")
_HUB_FIX = (f"without network, copy the repository ({CONFIG_FILE} and the weights) to a folder and set "
            "TROOPLY_CLIP_MODEL=local-dir:/that/folder")
_FOLDER_FIX = (f"the folder needs {CONFIG_FILE} (with `model_cfg`) and the weights beside it "
               "(open_clip_pytorch_model.bin or .safetensors)")
_FINGERPRINT_BYTES = 1 << 20

# Project configs (e.g. the tiny test model) join open_clip's registry once per process.
open_clip.add_model_config(Path(__file__).parent / "model_configs")


class ModelLoadError(TrooplyError, ValueError):
    """The configured CLIP model or its weights cannot be loaded: which, from where, and the settings that fix it."""

    code = "model_unavailable"
    status = 503


@dataclass(frozen=True)
class ModelSource:
    model: str  # TROOPLY_CLIP_MODEL as given
    pretrained: str  # TROOPLY_CLIP_PRETRAINED for a registry model; "" where the hub or the folder holds the weights
    config: dict[str, Any]  # open_clip's model_cfg
    location: str  # where the weights are read from, as /readyz shows it
    weights_from: str  # the same, as error messages phrase it
    fix: str
    space: VectorSpace

    @property
    def schema(self) -> str | None:
        return parse_model_name(self.model)[0]

    @property
    def random(self) -> bool:
        return self.pretrained == RANDOM

    @property
    def open_clip_pretrained(self) -> str | None:
        """What open_clip's `pretrained` gets: nothing for random weights, or where the name carries them."""
        return None if self.random or self.schema else self.pretrained


def resolve(model_name: str, pretrained: str) -> ModelSource:
    schema, identifier = _parse(model_name)
    if schema == LOCAL_DIR:
        return _local_dir(model_name, Path(identifier))
    if schema == HF_HUB:
        return _hf_hub(model_name, identifier)
    return _registry(model_name, pretrained)


def vector_space(model_name: str, pretrained: str) -> VectorSpace:
    """The space a model's vectors live in, known without loading the model."""
    return resolve(model_name, pretrained).space


def _parse(model_name: str) -> tuple[str | None, str]:
    try:
        return parse_model_name(model_name)
    except ValueError as error:  # 'hf-hub:' or 'local-dir:' with nothing after it
        raise ModelLoadError(f"CLIP model '{model_name}' (TROOPLY_CLIP_MODEL): {error}") from error


def _registry(model_name: str, pretrained: str) -> ModelSource:
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ModelLoadError(f"unknown CLIP model '{model_name}' (TROOPLY_CLIP_MODEL): not in open_clip.list_models(), "
                             "nor hf-hub:org/repo or local-dir:/path")
    if pretrained == RANDOM:
        tag, location, weights_from = RANDOM, "random weights (no retrieval quality)", "random weights"
    elif Path(pretrained).is_file():
        tag, location = Path(pretrained).stem, str(Path(pretrained).resolve())
        weights_from = f"its weights '{pretrained}' from the checkpoint file"
    elif pretrained in open_clip.list_pretrained_tags_by_model(model_name):
        hub = open_clip.get_pretrained_cfg(model_name, pretrained).get("hf_hub", "").rstrip("/")
        where = f"the Hugging Face hub ({hub})" if hub else "open_clip's download URL"
        tag, location, weights_from = pretrained, where, f"its weights '{pretrained}' from {where}"
    else:
        raise ModelLoadError(f"CLIP weights '{pretrained}' (TROOPLY_CLIP_PRETRAINED) are neither an existing "
                             f"checkpoint file nor a pretrained tag of model '{model_name}': {_REGISTRY_FIX}")
    return ModelSource(model_name, pretrained, config, location, weights_from, _REGISTRY_FIX,
                       _space(f"{model_name}__{tag}", config, model_name))


def _hf_hub(model_name: str, repo: str) -> ModelSource:
    try:
        config = open_clip.get_model_config(model_name)  # downloads open_clip_config.json, or reads the HF cache
    except Exception as error:  # no network, an unknown repository, a repository without an open_clip config
        raise ModelLoadError(f"CLIP model '{model_name}' could not read its {CONFIG_FILE} from the Hugging Face hub "
                             f"({repo}): {_HUB_FIX}. Cause: {one_line(error)}") from error
    return ModelSource(model_name, "", config, f"the Hugging Face hub ({repo})",
                       f"its weights from the Hugging Face hub ({repo})", _HUB_FIX,
                       _space(f"{repo.replace('/', '-')}__{HF_HUB}", config, model_name))


def _local_dir(model_name: str, folder: Path) -> ModelSource:
    folder = folder.resolve()
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        missing = f"no {CONFIG_FILE} in" if folder.is_dir() else "no folder"
        raise ModelLoadError(f"CLIP model '{model_name}' (TROOPLY_CLIP_MODEL): {missing} {folder}: {_FOLDER_FIX}")
    try:
        raw = config_file.read_bytes()
        config = json.loads(raw)["model_cfg"]
    except (ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"CLIP model '{model_name}': {config_file} is not an open_clip config with `model_cfg`: "
                             f"{_FOLDER_FIX}. Cause: {one_line(error)}") from error
    checkpoint = _find_checkpoint_in_dir(folder)
    if checkpoint is None:  # open_clip would start it with random weights, and say so only in a log line
        raise ModelLoadError(f"CLIP model '{model_name}': no weights in {folder}: {_FOLDER_FIX}")
    # The folder's name says which model; the fingerprint, that its weights and config are those the index holds.
    weights_from = f"its weights from the folder {folder} ({Path(checkpoint).name})"
    return ModelSource(model_name, "", config, checkpoint, weights_from, _FOLDER_FIX,
                       _space(f"{folder.name}__{LOCAL_DIR}-{_fingerprint(raw, Path(checkpoint))}", config, model_name))


def _fingerprint(config: bytes, checkpoint: Path) -> str:
    """The config, the weights' size and their first and last MiB: different weights differ there, and reading
    a few MiB keeps start-up fast for a 2 GB checkpoint."""
    digest = hashlib.sha256(config)
    size = checkpoint.stat().st_size
    digest.update(f"{checkpoint.name}:{size}".encode())
    with checkpoint.open("rb") as weights:
        digest.update(weights.read(_FINGERPRINT_BYTES))
        weights.seek(max(0, size - _FINGERPRINT_BYTES))
        digest.update(weights.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:12]


def _space(name: str, config: dict[str, Any], model_name: str) -> VectorSpace:
    size = config.get("embed_dim") if isinstance(config, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ModelLoadError(f"CLIP model '{model_name}': its config has no positive integer `embed_dim`")
    # Qdrant vector names refuse ':' (and a checkpoint's file name may hold anything): keep [A-Za-z0-9._-].
    return VectorSpace(name=re.sub(r"[^A-Za-z0-9._-]", "-", name), size=size)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
