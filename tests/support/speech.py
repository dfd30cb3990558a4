"""Real speech for voice-search tests: espeak-ng speaks, ffmpeg encodes (both Debian packages)."""

import shutil
import subprocess
from pathlib import Path

import pytest


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: tests/run.sh installs it from Debian")
    return path


def spoken_wav(text: str, directory: Path) -> Path:
    out = directory / (text.replace(" ", "-")[:40] + ".wav")
    subprocess.run([_require("espeak-ng"), "-v", "en-us", "-s", "140", "-w", str(out), text], check=True)
    return out


def encode(source: Path, suffix: str, *codec: str) -> bytes:
    out = source.with_suffix(suffix)
    subprocess.run([_require("ffmpeg"), "-loglevel", "error", "-y", "-i", str(source), *codec, str(out)], check=True)
    return out.read_bytes()


def silence_wav(seconds: float, directory: Path) -> bytes:
    out = directory / f"silence-{seconds}.wav"
    subprocess.run([_require("ffmpeg"), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "anullsrc=r=16000:cl=mono", "-t", str(seconds), str(out)], check=True)
    return out.read_bytes()
