"""Load, check, resample and save audio with soundfile and torchaudio.functional.

Everything libsndfile reads (wav, flac, ogg, mp3 on recent builds, …) is supported. Bad input
raises :class:`~speechseq.errors.SpeechseqError` naming the file and what is wrong with it.
torch loads only when a function returning a tensor runs: :func:`read_mono` and the checks
serve the torch-free path (:mod:`speechseq.asr.lite`).
"""

from __future__ import annotations

import math
import os
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from speechseq.errors import SpeechseqError
from speechseq.ffmpeg import INSTALL_HINT, ffmpeg_available, open_ffmpeg

if TYPE_CHECKING:
    import torch

__all__ = [
    "load_audio",
    "read_mono",
    "stream_audio",
    "AudioWriter",
    "save_audio",
    "resample",
    "to_mono",
    "audio_duration",
    "check_truncation",
    "truncation",
    "AUDIO_SUFFIXES",
    "MIN_TRUNCATED_SECONDS",
]

# Suffixes we look for when walking folders; libsndfile, then FFmpeg, decide what they can read.
AUDIO_SUFFIXES = (
    *(".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64"),  # libsndfile
    *(".m4a", ".mp4", ".aac", ".webm", ".mka", ".mkv", ".mov", ".wma"),  # FFmpeg's
)

# Peak amplitude below which a file counts as silent (about -90 dBFS).
_SILENCE_PEAK = 3e-5


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """Average channels.

    Args:
        waveform: (T,) or (T, C) samples.

    Returns:
        (T,) samples.
    """
    if waveform.dim() == 2:
        return waveform.mean(dim=1)
    return waveform


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample (..., T) samples from ``orig_rate`` to ``new_rate`` (band-limited sinc)."""
    if orig_rate == new_rate:
        return waveform
    import torchaudio.functional as AF

    return AF.resample(waveform, orig_rate, new_rate)


def _read(path: Path, offset: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
    with _open(path) as f:
        try:
            if offset > 0:
                f.seek(min(f.frames, round(offset * f.samplerate)))
            frames = -1 if duration is None else round(duration * f.samplerate)
            data = f.read(frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as err:
            raise SpeechseqError(f"{path}: not readable as audio ({err})") from None
        return data, f.samplerate


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    check_silence: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
) -> torch.Tensor:
    """Read a file (or ``duration`` seconds of it from ``offset``), mix it to mono and resample
    it.

    Args:
        path: an audio file libsndfile can read.
        sample_rate: rate to resample to; ``None`` keeps the file's rate.
        check_silence: reject files whose samples are all (near) zero.
        offset: seconds to skip (a segment of a longer recording, as Kaldi and NeMo list them).
        duration: seconds to read from ``offset``; None: to the end.

    Returns:
        (T,) float32 samples in [-1, 1].

    Raises:
        SpeechseqError: missing, empty, not audio, truncated to (almost) nothing, no samples,
            NaN/inf samples or silent. A WAV file cut short but holding audio is read with a
            warning (see :func:`check_truncation`).
    """
    import torch

    path = Path(path)
    data, rate = _read(path, offset, duration)
    cut = check_truncation(path)
    if cut is not None:
        warnings.warn(f"{cut}; reading what it holds", stacklevel=2)
    _check_samples(path, data, check_silence)
    waveform = to_mono(torch.from_numpy(data))  # (T,)
    if sample_rate is not None:
        waveform = resample(waveform, rate, sample_rate)
    return waveform.contiguous()


def read_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """A whole file mixed to mono, at its own rate, in NumPy (no torch): what
    :func:`stream_audio` gives without resampling, checked the same way (silence allowed).

    Returns:
        (T,) float32 samples and the file's sample rate.

    Raises:
        SpeechseqError: as :func:`load_audio`.
    """
    path = Path(path)
    data, rate = _read(path)
    _check_samples(path, data, check_silence=False)
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0], rate


def _check_samples(path: Path, data: np.ndarray, check_silence: bool) -> None:
    """(T, C) samples read from ``path``: refuse none, NaN or infinite, and (if asked) silent."""
    if data.shape[0] == 0:
        raise SpeechseqError(f"{path}: holds no audio samples (empty or truncated)")
    if not np.isfinite(data).all():
        raise SpeechseqError(f"{path}: contains NaN or infinite samples")
    if check_silence and float(np.abs(data).max()) < _SILENCE_PEAK:
        raise SpeechseqError(f"{path}: is silent (every sample is near zero)")


# A truncated file keeping at least this much audio is read with a warning; less is an error.
MIN_TRUNCATED_SECONDS = 0.1


def truncation(path: str | Path) -> tuple[float, float] | None:
    """For a WAV file whose data chunk holds fewer bytes than its header declares (a copy or a
    recording cut short), the seconds it holds and the seconds declared; None otherwise.

    libsndfile reads such a file without complaint, up to where it ends; this says that the
    rest is missing. Other formats are not checked (None).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            byte_rate = 0
            while chunk := f.read(8):
                if len(chunk) < 8:
                    return None
                name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"fmt ":
                    fmt = f.read(size + size % 2)
                    byte_rate = struct.unpack("<I", fmt[8:12])[0] if len(fmt) >= 12 else 0
                elif name == b"data":
                    held = os.fstat(f.fileno()).st_size - f.tell()
                    # 0 and 0xFFFFFFFF: a streaming writer that never filled the size in
                    if size in (0, 0xFFFFFFFF) or held >= size or not byte_rate:
                        return None
                    return held / byte_rate, size / byte_rate
                else:
                    f.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        return None
    return None


def check_truncation(path: str | Path) -> str | None:
    """If ``path`` is a truncated WAV file that still holds usable audio, what to warn; None if
    it is whole.

    Raises:
        SpeechseqError: it is truncated to less than :data:`MIN_TRUNCATED_SECONDS`.
    """
    cut = truncation(path)
    if cut is None:
        return None
    held, declared = cut
    said = f"{path}: truncated: holds {held:.2f} s of the {declared:.2f} s its header declares"
    if held < MIN_TRUNCATED_SECONDS:
        raise SpeechseqError(said)
    return said


def audio_duration(path: str | Path) -> float:
    """Duration in seconds read from the header, without decoding the samples."""
    path = Path(path)
    if not path.exists():
        raise SpeechseqError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        if not ffmpeg_available():
            raise SpeechseqError(f"{path}: not readable as audio ({err})") from None
        with open_ffmpeg(path) as f:
            return f.frames / f.samplerate
    return info.frames / info.samplerate


def save_audio(path: str | Path, waveform: torch.Tensor, sample_rate: int) -> None:
    """Write (T,) or (T, C) float samples as 16-bit PCM (format from the suffix, wav by default)."""
    channels = 1 if waveform.dim() == 1 else waveform.shape[1]
    with AudioWriter(path, sample_rate, channels) as writer:
        writer.write(waveform)


class AudioWriter:
    """An audio file written block by block, so a long recording never has to be in memory
    whole: 16-bit PCM where the container has it (wav, flac, aiff, au, w64), else the
    format's default (ogg, mp3, …); the format comes from the suffix, wav when it has none.

    Example:
        >>> with AudioWriter("long.wav", 22050) as writer:
        ...     for block in blocks:       # (T_i,) float samples in [-1, 1]
        ...         writer.write(block)

    Raises:
        SpeechseqError: the format cannot be written.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int = 1) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fmt = self.path.suffix.lstrip(".").upper() or "WAV"
        subtype = "PCM_16" if fmt in ("WAV", "FLAC", "AIFF", "AIF", "AU", "W64") else None
        try:
            self._file = sf.SoundFile(
                str(self.path),
                "w",
                sample_rate,
                channels,
                subtype=subtype,
                format="AIFF" if fmt == "AIF" else "OGG" if fmt == "OPUS" else fmt,
            )
        except (sf.LibsndfileError, ValueError, TypeError) as err:
            raise SpeechseqError(f"{path}: cannot write audio in this format ({err})") from None
        self.samples = 0

    def write(self, waveform: torch.Tensor) -> None:
        """Append (T,) or (T, C) float samples (clamped to [-1, 1])."""
        data = waveform.detach().cpu().float().clamp(-1.0, 1.0).numpy()
        try:
            self._file.write(data)
        except (sf.LibsndfileError, ValueError, TypeError) as err:
            raise SpeechseqError(f"{self.path}: cannot write audio ({err})") from None
        self.samples += data.shape[0]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise SpeechseqError(f"{path}: no such file")
    if path.is_dir():
        raise SpeechseqError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise SpeechseqError(f"{path}: file is empty")
    try:
        return sf.SoundFile(str(path))
    except sf.LibsndfileError as err:
        try:  # libsndfile says only "System error." for a file it may not open
            open(path, "rb").close()
        except PermissionError:
            raise SpeechseqError(f"{path}: permission denied") from None
        if ffmpeg_available():  # m4a, mp4, webm, …: FFmpeg reads what libsndfile does not
            return open_ffmpeg(path)  # type: ignore[return-value]  (the same reading interface)
        reason = "unknown format" if "does not exist" in err.error_string else err.error_string
        raise SpeechseqError(
            f"{path}: not readable as audio ({reason}); if it is audio, {INSTALL_HINT}"
        ) from None
    except (RuntimeError, ValueError, TypeError, OSError) as err:
        raise SpeechseqError(f"{path}: not readable as audio ({err})") from None


def _resample_context(orig_rate: int, new_rate: int) -> tuple[int, int]:
    """Input samples per resampling period, and the context each side that makes block-wise
    resampling exact.

    torchaudio's sinc resampler computes output period k from the input samples
    ``[k * step - width, (k + 1) * step + width)`` (``step`` = orig_rate / gcd), so blocks that
    start on a period boundary and carry ``width + step`` samples of their neighbours each side
    resample to exactly the samples of the whole signal.
    """
    g = math.gcd(orig_rate, new_rate)
    step, new_step = orig_rate // g, new_rate // g
    width = math.ceil(6 * step / (0.99 * min(step, new_step)))  # torchaudio's defaults
    return step, step * (math.ceil(width / step) + 2)


def stream_audio(
    path: str | Path,
    sample_rate: int | None = None,
    block_seconds: float = 30.0,
    check_silence: bool = True,
) -> Iterator[torch.Tensor]:
    """Read a file block by block, mixed to mono and resampled, so that memory stays bounded by
    the block size however long the file is.

    Concatenated, the blocks equal :func:`load_audio`'s samples (to float rounding): each block
    is resampled with enough of its neighbours' samples around it.

    Args:
        path: an audio file libsndfile can read.
        sample_rate: rate to resample to; ``None`` keeps the file's rate.
        block_seconds: about how much audio each block holds.
        check_silence: raise, after the last block, if every sample was (near) zero.

    Yields:
        (T_block,) float32 samples.

    Raises:
        SpeechseqError: as :func:`load_audio`; a fault found part-way (NaN samples, a read
            error) is raised after the blocks before it were yielded.
    """
    import torch

    path = Path(path)
    with _open(path) as f:
        rate = f.samplerate
        new_rate = sample_rate or rate
        step, context = _resample_context(rate, new_rate)
        block = max(context, round(block_seconds * rate) // step * step)
        total, peak = 0, 0.0
        left = torch.zeros(0)  # the previous block's last `context` samples
        center: torch.Tensor | None = None  # a block waiting for its right-hand context
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)  # (T, C)
            except (sf.LibsndfileError, RuntimeError, ValueError) as err:
                raise SpeechseqError(f"{path}: not readable as audio ({err})") from None
            if data.shape[0] == 0:
                break
            if not np.isfinite(data).all():
                raise SpeechseqError(f"{path}: contains NaN or infinite samples")
            total += data.shape[0]
            peak = max(peak, float(np.abs(data).max()))
            samples = to_mono(torch.from_numpy(data))  # (T,)
            if rate == new_rate:
                yield samples
                continue
            if center is not None:
                yield _resample_block(left, center, samples[:context], rate, new_rate)
                left = center[-context:]
            center = samples
        if center is not None:
            yield _resample_block(left, center, torch.zeros(0), rate, new_rate)
    if total == 0:
        raise SpeechseqError(f"{path}: holds no audio samples (empty or truncated)")
    if check_silence and peak < _SILENCE_PEAK:
        raise SpeechseqError(f"{path}: is silent (every sample is near zero)")


def _resample_block(
    left: torch.Tensor, center: torch.Tensor, right: torch.Tensor, rate: int, new_rate: int
) -> torch.Tensor:
    """Resample (T,) ``center`` with ``left`` and ``right`` as context, returning only the
    samples of ``center`` (``left`` holds a whole number of resampling periods)."""
    import torch

    out = resample(torch.cat([left, center, right]), rate, new_rate)
    start = len(left) * new_rate // rate
    if len(right) == 0:
        return out[start:].contiguous()
    return out[start : start + len(center) * new_rate // rate].contiguous()
