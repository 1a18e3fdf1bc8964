"""Reading what libsndfile cannot (m4a, mp4, aac, webm, opus in webm, video files) through
FFmpeg: PyAV's bundled libraries, or the ``ffmpeg`` program where PyAV is not installed.

:func:`open_ffmpeg` gives a reader with the part of ``soundfile.SoundFile``'s interface that
:mod:`speechseq.audio` uses (``samplerate``, ``channels``, ``frames``, ``read``, ``seek``, a
context manager), decoding as it is read, so a long file is never in memory whole.

Example:
    >>> with open_ffmpeg(Path("meeting.m4a")) as f:
    ...     block = f.read(16000 * 30, dtype="float32", always_2d=True)   # (T, C)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from speechseq.errors import SpeechseqError

__all__ = ["FFmpegReader", "INSTALL_HINT", "ffmpeg_available", "open_ffmpeg"]

INSTALL_HINT = "install PyAV (pip install av) or FFmpeg (apt-get install ffmpeg) to read it"


def _have_pyav() -> bool:
    try:
        import av  # noqa: F401  (only whether it imports)
    except ImportError:
        return False
    return True


def _have_program() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def ffmpeg_available() -> bool:
    """Whether either decoder is here: PyAV, or an ``ffmpeg`` (and ``ffprobe``) on PATH."""
    return _have_pyav() or _have_program()


class FFmpegReader:
    """A file decoded block by block to float32 at its own rate and channels.

    Args:
        path: the file.
        blocks: (T_i, C) float32 blocks of the whole file, in order.
        samplerate, channels: of the first audio stream.
        frames: samples per channel, from the container (an estimate for some formats).
    """

    def __init__(
        self,
        path: Path,
        blocks: Iterator[np.ndarray],
        samplerate: int,
        channels: int,
        frames: int,
        close=None,
    ) -> None:
        self.path = path
        self.samplerate = samplerate
        self.channels = channels
        self.frames = frames
        self._blocks = blocks
        self._pending = np.zeros((0, channels), dtype=np.float32)
        self._close = close

    def read(self, frames: int = -1, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        """The next ``frames`` samples (all that are left for -1) as (T, C) float32."""
        parts, have = [self._pending], len(self._pending)
        while frames < 0 or have < frames:
            block = next(self._blocks, None)
            if block is None:
                break
            parts.append(block)
            have += len(block)
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if frames >= 0:
            data, self._pending = data[:frames], data[frames:]
        else:
            self._pending = data[:0]
        return data.astype(dtype, copy=False)

    def seek(self, frame: int) -> None:
        """Skip to ``frame`` (from the start; only forward, by decoding)."""
        self.read(frame)

    def __enter__(self) -> FFmpegReader:
        return self

    def __exit__(self, *exc) -> None:
        if self._close is not None:
            self._close()


def open_ffmpeg(path: Path) -> FFmpegReader:
    """Open ``path`` with PyAV, else with the ``ffmpeg`` program.

    Raises:
        SpeechseqError: no decoder is installed (naming what to install), or FFmpeg cannot
            read the file or finds no audio in it.
    """
    if _have_pyav():
        return _open_pyav(path)
    if _have_program():
        return _open_program(path)
    raise SpeechseqError(f"{path}: not readable as audio by libsndfile; {INSTALL_HINT}")


def _open_pyav(path: Path) -> FFmpegReader:
    import av
    import av.error

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise SpeechseqError(f"{path}: not readable as audio ({err})") from None
    if not container.streams.audio:
        container.close()
        raise SpeechseqError(f"{path}: holds no audio stream")
    stream = container.streams.audio[0]
    rate = stream.rate or stream.codec_context.sample_rate
    channels = stream.channels or 1
    seconds = (
        float(stream.duration * stream.time_base)
        if stream.duration is not None and stream.time_base is not None
        else (container.duration or 0) / 1e6
    )
    # Planar float at the stream's own rate and layout; resampling is speechseq's, as for
    # every other file.
    resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)

    def blocks() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().T  # (C, T) planar → (T, C)
        except av.error.FFmpegError as err:
            raise SpeechseqError(f"{path}: not readable as audio ({err})") from None

    return FFmpegReader(path, blocks(), rate, channels, round(seconds * rate), container.close)


def _open_program(path: Path) -> FFmpegReader:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    try:
        info = json.loads(probe.stdout)
        stream = info["streams"][0]
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
        seconds = float(info.get("format", {}).get("duration") or 0.0)
    except (json.JSONDecodeError, KeyError, IndexError, ValueError):
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "no audio"
        raise SpeechseqError(f"{path}: not readable as audio ({reason})") from None
    process = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    stdout = process.stdout

    def blocks() -> Iterator[np.ndarray]:
        size = 4 * channels * rate  # a second at a time
        while chunk := stdout.read(size - size % (4 * channels)):
            usable = len(chunk) - len(chunk) % (4 * channels)
            yield np.frombuffer(chunk[:usable], dtype="<f4").reshape(-1, channels)

    def close() -> None:
        process.kill()
        process.wait()

    return FFmpegReader(path, blocks(), rate, channels, round(seconds * rate), close)
