"""Cut long audio into pieces of at most a few tens of seconds at pauses (energy VAD).

A recognizer trained on short utterances, and the memory its activations need, both want input
of bounded length. :func:`split_at_pauses` reads a stream of blocks and cuts the running buffer,
whenever it exceeds ``max_seconds``, in the middle of the longest quiet stretch found between
``min_seconds`` and ``max_seconds``. "Quiet" is judged on frame RMS: 10 ms frames, smoothed over
200 ms, within 3 dB of the quietest smoothed value in that window. Being relative to the window,
it needs no threshold tuned to the recording's level or noise floor; a piece whose every frame is
below :data:`SILENCE_DB` is pure silence and :func:`is_silence` says so, so callers can skip it.

:class:`PieceStream` does this for many files at once, in DataLoader workers: each file is read in
blocks, cut at pauses, and each piece featurized, so a file of any length is held one block and
one piece at a time.

Example:
    >>> blocks = stream_audio("lecture.flac", 16000)
    >>> for start, piece in split_at_pauses(blocks, 16000, max_seconds=30):
    ...     print(start / 16000, piece.shape)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, get_worker_info

from speechseq.asr.silence import SILENCE_DB, is_silence
from speechseq.asr.sources import AudioArray, AudioSlice, audio_source
from speechseq.audio import check_truncation, stream_audio
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor

__all__ = [
    "SILENCE_DB",
    "AudioArray",
    "AudioSlice",
    "FileEnd",
    "audio_source",
    "Piece",
    "PieceStream",
    "find_pause",
    "frame_rms_db",
    "is_silence",
    "split_at_pauses",
]

FRAME_SECONDS = 0.01
SMOOTH_SECONDS = 0.2
QUIET_MARGIN_DB = 3.0
_FLOOR_DB = -100.0  # digital silence; keeps log finite and ties among silent frames exact


def frame_rms_db(waveform: torch.Tensor, frame: int) -> torch.Tensor:
    """RMS level of non-overlapping frames in dB full scale (a last partial frame included).

    Args:
        waveform: (T,) samples.
        frame: samples per frame.

    Returns:
        (ceil(T / frame),) levels, floored at -100 dB.
    """
    pad = (-len(waveform)) % frame
    frames = torch.nn.functional.pad(waveform, (0, pad)).reshape(-1, frame)  # (N, frame)
    power = frames.double().square().mean(dim=1)  # (N,)
    return (10 * torch.log10(power.clamp(min=10 ** (_FLOOR_DB / 10)))).float()


def find_pause(waveform: torch.Tensor, sample_rate: int, lo: int, hi: int) -> int:
    """Where to cut ``waveform`` between samples ``lo`` and ``hi``: the middle of the longest
    quiet stretch there (the latest one among equally long stretches).

    Args:
        waveform: (T,) samples, T ≥ hi.
        sample_rate: samples per second.
        lo, hi: the cut must fall in [lo, hi).

    Returns:
        a sample index in [lo, hi).
    """
    frame = max(1, round(FRAME_SECONDS * sample_rate))
    levels = frame_rms_db(waveform[lo:hi], frame)  # (N,)
    width = max(1, round(SMOOTH_SECONDS / FRAME_SECONDS)) | 1  # odd, so windows stay centred
    power = 10 ** (levels.double() / 10)
    smooth = torch.nn.functional.avg_pool1d(
        power[None, None], width, stride=1, padding=width // 2, count_include_pad=False
    )[0, 0]  # (N,)
    smooth_db = 10 * torch.log10(smooth)
    quiet = (smooth_db <= smooth_db.min() + QUIET_MARGIN_DB).tolist()
    best_start, best_length, run_start = 0, 0, None
    for i, q in enumerate([*quiet, False]):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start >= best_length:
                best_start, best_length = run_start, i - run_start
            run_start = None
    middle = best_start + best_length // 2
    return min(hi - 1, lo + middle * frame + frame // 2)


def split_at_pauses(
    blocks: Iterable[torch.Tensor],
    sample_rate: int,
    max_seconds: float = 30.0,
    min_seconds: float | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Cut a stream of audio blocks into pieces of at most ``max_seconds``, at pauses.

    Only about ``max_seconds`` plus one block is held at a time. A stream no longer than
    ``max_seconds`` comes back whole, as one piece.

    Args:
        blocks: (T_i,) sample blocks, in order (e.g. from :func:`speechseq.audio.stream_audio`).
        sample_rate: samples per second.
        max_seconds: longest piece.
        min_seconds: shortest piece cut from a longer stream (the last may be shorter); default
            a third of ``max_seconds``.

    Yields:
        (start sample in the stream, (T_piece,) samples) for consecutive pieces that together
        cover the whole stream.
    """
    longest = round(max_seconds * sample_rate)
    shortest = round((max_seconds / 3 if min_seconds is None else min_seconds) * sample_rate)
    if not 0 < shortest < longest:
        raise ValueError(f"need 0 < min_seconds < max_seconds, got {min_seconds}, {max_seconds}")
    buffer, start = torch.zeros(0), 0
    for block in blocks:
        buffer = torch.cat([buffer, block])
        while len(buffer) > longest:
            cut = find_pause(buffer, sample_rate, shortest, longest)
            yield start, buffer[:cut].clone()  # a copy, so the long buffer can be freed
            buffer, start = buffer[cut:].clone(), start + cut
    if len(buffer):
        yield start, buffer


@dataclass
class Piece:
    """A worker's output: one piece of one file, featurized."""

    file: int  # index into the paths
    index: int  # the piece's place in its file
    offset: float  # seconds from the file's start
    duration: float  # seconds
    features: torch.Tensor  # (frames, n_mels)


@dataclass
class FileEnd:
    """A worker's last word on a file: how many pieces it sent, or why it failed."""

    file: int
    pieces: int
    duration: float
    seconds: float  # the worker's busy time on this file
    error: str | None = None
    truncated: str | None = None  # what to warn of a WAV file cut short
    unclaimed: bool = False  # another job has it (``claim`` said no): not read here


class PieceStream(IterableDataset):
    """Files → featurized pieces cut at pauses, then a :class:`FileEnd` per file.

    Worker ``k`` of ``n`` takes files ``k, k + n, …``, so each file's items come from one worker,
    in order. Only one block and one piece of a file are in memory at a time. With ``claim``
    (index → bool, picklable: :class:`speechseq.asr.claims.InputClaims`), each file is claimed
    just before it is read, and a file refused gets only an ``unclaimed`` :class:`FileEnd`.
    """

    def __init__(
        self,
        paths: Sequence[str | Path | AudioArray | AudioSlice],
        extractor: FeatureExtractor,
        max_segment_seconds: float,
        block_seconds: float = 30.0,
        claim: Callable[[int], bool] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.claim = claim
        self.extractor = extractor
        self.max_segment_seconds = max_segment_seconds
        self.block_seconds = block_seconds

    def __iter__(self) -> Iterator[Piece | FileEnd]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for i in range(worker, len(self.paths), workers):
            try:
                claimed = self.claim is None or self.claim(i)
            except SpeechseqError as err:  # no lock, no work: the file fails, with the cause
                yield FileEnd(i, 0, 0.0, 0.0, error=str(err))
                continue
            if claimed:
                yield from self._file(i)
            else:
                yield FileEnd(i, 0, 0.0, 0.0, unclaimed=True)

    @torch.no_grad()
    def _file(self, i: int) -> Iterator[Piece | FileEnd]:
        path, rate = self.paths[i], self.extractor.config.sample_rate
        busy, clock, count, samples, error = 0.0, time.perf_counter(), 0, 0, None
        truncated = None
        try:
            if isinstance(path, (AudioArray, AudioSlice)):
                blocks = path.blocks(rate, self.block_seconds)
            else:
                truncated = check_truncation(path)
                blocks = stream_audio(path, rate, self.block_seconds, check_silence=False)
            for start, piece in split_at_pauses(blocks, rate, self.max_segment_seconds):
                samples = start + len(piece)
                if is_silence(piece, rate):
                    continue
                features = self.extractor(piece)  # (frames, n_mels)
                busy += time.perf_counter() - clock
                yield Piece(i, count, start / rate, len(piece) / rate, features)
                clock = time.perf_counter()
                count += 1
        except SpeechseqError as err:
            error = str(err)
        except Exception as err:  # one odd file must not end a job over thousands
            error = f"{path}: {type(err).__name__}: {err}"
        busy += time.perf_counter() - clock
        duration = samples / rate if error is None else 0.0
        yield FileEnd(i, count, duration, busy, error, truncated)
