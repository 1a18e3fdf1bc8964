"""What a transcriber reads besides whole files: audio in memory (:class:`AudioArray`) and a
segment of a file that a manifest lists (:class:`AudioSlice`).

Torch-free at import, so a job can plan its inputs without loading torch; reading them into
tensors loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from speechseq.audio import load_audio, resample, to_mono
from speechseq.errors import SpeechseqError

if TYPE_CHECKING:
    import torch

    from speechseq.data.manifest import Utterance

__all__ = ["AudioArray", "AudioSlice", "audio_source"]


def _in_blocks(samples: torch.Tensor, rate: int, block_seconds: float) -> Iterator[torch.Tensor]:
    """(T,) samples already in memory, cut into blocks as :func:`stream_audio` gives a file."""
    step = max(1, round(block_seconds * rate))
    return (samples[start : start + step] for start in range(0, len(samples), step))


@dataclass
class AudioArray:
    """Audio already in memory, transcribed like a file: (T,) or (T, C) samples at
    ``sample_rate``; ``name`` stands for the path in results."""

    samples: torch.Tensor
    sample_rate: int
    name: str = "<array>"

    def __str__(self) -> str:
        return self.name

    def blocks(self, rate: int, block_seconds: float) -> Iterator[torch.Tensor]:
        """(T_block,) mono blocks at ``rate``."""
        import torch

        samples = to_mono(self.samples.float())
        if not torch.isfinite(samples).all():
            raise SpeechseqError(f"{self.name}: contains NaN or infinite samples")
        return _in_blocks(resample(samples, self.sample_rate, rate), rate, block_seconds)


@dataclass(frozen=True)
class AudioSlice:
    """``duration`` seconds of an audio file from ``offset`` (a segment listed by a Kaldi or
    NeMo manifest), transcribed like a file; ``name`` stands for it in results."""

    path: str
    offset: float
    duration: float
    name: str

    def __str__(self) -> str:
        return self.name

    @property
    def stem(self) -> str:
        """Its transcript files' name: its id, or ``STEM@OFFSET`` when named after its file."""
        if "/" not in self.name and "\\" not in self.name:
            return self.name
        return f"{Path(self.path).stem}@{self.offset:.3f}"

    def blocks(self, rate: int, block_seconds: float) -> Iterator[torch.Tensor]:
        """(T_block,) mono blocks at ``rate`` (a segment is short: read whole, then cut)."""
        samples = load_audio(self.path, rate, False, self.offset, self.duration)
        return _in_blocks(samples, rate, block_seconds)


def audio_source(utterance: Utterance) -> str | AudioSlice:
    """What to transcribe for a manifest's utterance: its file, or its segment of one (named by
    its id, else ``FILE@OFFSET``)."""
    if utterance.offset is None:
        return utterance.audio
    name = utterance.id or f"{utterance.audio}@{utterance.offset:.3f}"
    return AudioSlice(utterance.audio, utterance.offset, utterance.duration, name)
