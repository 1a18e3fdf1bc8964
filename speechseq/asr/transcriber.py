"""Transcriber: checkpoint + features + decoder, over files and folders of any length.

Files are read in blocks, cut at pauses into pieces of at most ``max_segment_seconds`` and
featurized in DataLoader worker processes; the pieces of many files are batched by padded audio
seconds and decoded greedily; each piece's CTC path gives word times, which are shifted by the
piece's start, so a file of any length comes back as one result with absolute times.

Example:
    >>> from speechseq import Transcriber
    >>> transcriber = Transcriber.from_pretrained("exp/tiny/best.pt")
    >>> for result in transcriber.transcribe(["a.wav", "b.flac"]):
    ...     print(result.path, result.text if result.ok else result.error)
    >>> [(w.word, w.start, w.end) for w in result.words]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np
import torch
from torch.utils.data import DataLoader

from speechseq.asr.alignment import (
    Segment,
    frame_seconds,
    make_segment,
    no_speech_score,
    piece_words,
)
from speechseq.asr.beam import BeamSearchDecoder
from speechseq.asr.decoding import DecoderConfig, make_decoder, resolve_decoding, tuned_decoding
from speechseq.asr.result import TranscriptionResult
from speechseq.asr.segmentation import AudioArray, AudioSlice, FileEnd, Piece, PieceStream
from speechseq.checkpoint import load_recognizer, precision
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor
from speechseq.pretrained import recognizer_path

__all__ = ["Transcriber", "TranscriptionResult"]

log = logging.getLogger(__name__)


def _identity(item):
    return item


@dataclass
class _FileState:
    end: FileEnd | None = None
    segments: dict[int, Segment] = field(default_factory=dict)  # piece index → segment
    decoded: int = 0
    seconds: float = 0.0


class Transcriber:
    """Speech → text (with word times) with a trained recognizer.

    Args:
        model: the recognizer.
        extractor: its feature extractor.
        tokenizer: its tokenizer.
        device: where to run.
        max_batch_seconds: padded audio seconds per batch (bounds memory).
        max_segment_seconds: longer files are cut at pauses into pieces of at most this long.
        decoder: ``decode(log_probs (B, T, V), lengths (B,)) -> texts``; default greedy
            (:func:`speechseq.asr.decoding.make_decoder` builds one from a :class:`DecoderConfig`).
        no_speech_threshold: a piece whose no-speech score
            (:func:`~speechseq.asr.alignment.no_speech_score`) is above this gives no words, so
            noise is not turned into invented words; 1.0 (the default) keeps every piece. The
            score's scale depends on the model: tune it on dev (the shipped models' tuned
            values are in their ``NAME.decoding.json``, which :meth:`from_pretrained` reads).
        parallel_batches: batches run at once on a CPU, each in a thread of its own, torch's
            threads (``torch.set_num_threads``) shared out between them. On a 2-core CPU, 2
            batches with one torch thread each ran the shipped recognizer's network 1.2× faster
            than one batch with two threads: its GRU steps are too small to split well.

    Example:
        >>> t = Transcriber.from_pretrained()          # the shipped model
        >>> result = t.transcribe("speech.wav")           # a list gives a list of results
        >>> result.text, [(w.word, w.start, w.end) for w in result.words]
        ('hello world', [('hello', 0.12, 0.48), ('world', 0.6, 1.04)])
    """

    def __init__(
        self,
        model,
        extractor,
        tokenizer,
        device="cpu",
        max_batch_seconds=300.0,
        max_segment_seconds=30.0,
        decoder=None,
        no_speech_threshold: float = 1.0,
        parallel_batches: int = 2,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.extractor = extractor.to(self.device)
        self.tokenizer = tokenizer
        self.max_batch_seconds = max_batch_seconds
        self.max_segment_seconds = max_segment_seconds
        self.decoder = decoder or make_decoder(tokenizer)
        self._beam = isinstance(self.decoder, BeamSearchDecoder)
        self.no_speech_threshold = no_speech_threshold
        self.parallel_batches = parallel_batches
        self._decoder_lock, self._states_lock = threading.Lock(), threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        device: str = "auto",
        max_batch_seconds: float = 300.0,
        max_segment_seconds: float = 30.0,
        decoding: DecoderConfig | None = None,
    ) -> Transcriber:
        """Build from a checkpoint path (None or ``"default"``: the shipped model) and a decoder
        choice (default "auto": the checkpoint's own tuning, ``NAME.decoding.json`` beside it,
        if it has one, else greedy decoding; see :func:`~speechseq.asr.decoding.resolve_decoding`).
        The shipped model's tuning is beam search with the shipped word LM and a no-speech
        threshold; ``decoding.no_speech_threshold`` overrides the tuned threshold."""
        path = recognizer_path(path)
        on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
        if path.suffix == ".onnx":  # the network runs in ONNX Runtime
            from speechseq.asr.onnx import load_onnx_recognizer

            model, feature_config, tokenizer, state = load_onnx_recognizer(path)
        else:
            model, feature_config, tokenizer, state = load_recognizer(path, int8_kernels=on_cpu)
            model.fuse_for_inference()
        decoding = resolve_decoding(decoding, tuned_decoding(path))
        no_speech = decoding.no_speech_threshold
        parameters = sum(v.numel() for v in state["model"].values())
        log.info("recognizer %s: %.1f M parameters (%s)", path, parameters / 1e6, precision(state))
        log.info("%s", decoding.summary())
        return cls(
            model,
            FeatureExtractor(feature_config),
            tokenizer,
            device,
            max_batch_seconds,
            max_segment_seconds,
            decoder=make_decoder(tokenizer, decoding),
            no_speech_threshold=1.0 if no_speech is None else no_speech,
        )

    @property
    def sample_rate(self) -> int:
        return self.extractor.config.sample_rate

    @property
    def frame_seconds(self) -> float:
        """Seconds per output frame of the model: the resolution of word times."""
        return frame_seconds(self.extractor.config, self.model.config)

    @torch.no_grad()
    def transcribe_waveforms(self, waveforms: Sequence[torch.Tensor]) -> list[str]:
        """Transcribe (T,) waveforms at :attr:`sample_rate`, as one batch."""
        return self.decoder(*self._forward(waveforms))

    @torch.no_grad()
    def log_probs(self, waveforms: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The model's (T'_i, V) CTC log-probabilities of (T,) waveforms at
        :attr:`sample_rate`, computed as one batch (e.g. for forced alignment)."""
        log_probs, out_lengths = self._forward(waveforms)
        return [lp[: int(n)] for lp, n in zip(log_probs, out_lengths, strict=True)]

    def _forward(self, waveforms: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = [self.extractor(w.to(self.device)) for w in waveforms]  # each (T_i, n_mels)
        lengths = torch.tensor([f.shape[0] for f in feats], device=self.device)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, n_mels)
        return self.model(padded, lengths)  # (B, T', V), (B,)

    @overload
    def transcribe(
        self,
        audio: str | Path | np.ndarray | torch.Tensor,
        on_result: Callable[[TranscriptionResult], None] | None = None,
        num_workers: int = 0,
        sample_rate: int | None = None,
    ) -> TranscriptionResult: ...

    @overload
    def transcribe(
        self,
        audio: Sequence[str | Path | AudioSlice],
        on_result: Callable[[TranscriptionResult], None] | None = None,
        num_workers: int = 0,
        sample_rate: int | None = None,
    ) -> list[TranscriptionResult]: ...

    def transcribe(self, audio, on_result=None, num_workers=0, sample_rate=None):
        """Transcribe files of any length, or audio in memory, batching pieces of similar
        length together.

        A file that cannot be read gets a result with ``error`` set; the rest go on.

        Args:
            audio: one file (a str or Path), audio in memory (a NumPy array or tensor of (T,)
                or (T, C) samples, with ``sample_rate``), or a list of files.
            on_result: called with each result as soon as it is ready (for progress and
                writing); results come in the order files finish, not the order given.
            num_workers: DataLoader worker processes reading and featurizing audio (0: this
                process does it between batches).
            sample_rate: the rate of in-memory audio (resampled to :attr:`sample_rate`).

        Returns:
            one result for one file or array (its ``path`` is ``"<array>"`` for an array), or
            one result per path, in the order given, for a list (which may also hold
            :class:`~speechseq.asr.segmentation.AudioSlice` segments of files).

        Raises:
            SpeechseqError: an array without ``sample_rate``.
        """
        single = isinstance(audio, (str, Path, np.ndarray, torch.Tensor))
        paths: list[str | Path | AudioArray | AudioSlice]
        if isinstance(audio, (np.ndarray, torch.Tensor)):
            if sample_rate is None:
                raise SpeechseqError("audio given as an array needs its sample_rate")
            paths = [AudioArray(torch.as_tensor(audio), sample_rate)]
        elif isinstance(audio, (str, Path)):
            paths = [audio]
        else:
            paths = list(audio)
        results: dict[str, TranscriptionResult] = {}
        for result in self.iter_transcribe(paths, num_workers):
            results[result.path] = result
            if on_result:
                on_result(result)
        found = [results[str(p)] for p in paths if str(p) in results]
        return found[0] if single else found

    def iter_transcribe(
        self,
        paths: Sequence[str | Path | AudioArray | AudioSlice],
        num_workers: int = 0,
        claim: Callable[[int], bool] | None = None,
    ) -> Iterator[TranscriptionResult]:
        """Like :meth:`transcribe`, but yields each result as its file finishes and keeps none,
        so memory does not grow with the number of files.

        Args:
            claim: asked, just before file ``i`` is read, whether to do it (picklable, as
                worker processes ask; see :class:`speechseq.asr.claims.InputClaims`); a file
                refused gets no result.
        """
        if not paths:
            return
        states = [_FileState() for _ in paths]
        stream = PieceStream(
            paths, FeatureExtractor(self.extractor.config), self.max_segment_seconds, claim=claim
        )
        workers = min(num_workers, len(paths))
        # A worker may read ahead a pool's worth of pieces (≤ 30 s each: ≤ 1 MB of features),
        # so it fills the next pool while this process runs the network on the current one;
        # torch's default (2 items) left them taking turns.
        loader = DataLoader(
            stream,
            batch_size=None,
            num_workers=workers,
            collate_fn=_identity,
            prefetch_factor=64 if workers else None,
        )

        def finished(files: Iterable[int]) -> Iterator[TranscriptionResult]:
            for i in sorted(files):
                state, end = states[i], states[i].end
                if end is None or state.decoded < end.pieces or end.unclaimed:
                    continue
                segments = [state.segments[k] for k in sorted(state.segments)]
                states[i] = _FileState(end=end, decoded=-1)  # done: drop its segments
                yield TranscriptionResult(
                    str(paths[i]),
                    text=" ".join(s.text for s in segments) if end.error is None else "",
                    duration=end.duration,
                    error=end.error,
                    segments=segments if end.error is None else [],
                    seconds=end.seconds + state.seconds,
                    truncated=end.truncated,
                )

        # Pieces wait in a pool of about two batches, so each batch gets similar lengths.
        # (Reading the next pool while the network ran this one, in a thread of its own, was
        # slower on 2 cores: 41 s against 32-36 s for the batch benchmark's folder.)
        pool: list[Piece] = []
        pool_seconds, pool_limit = 0.0, 2 * self.max_batch_seconds
        for item in loader:
            if isinstance(item, FileEnd):
                states[item.file].end = item
                yield from finished([item.file])
                continue
            pool.append(item)
            pool_seconds += self._seconds(item)
            if pool_seconds >= pool_limit:
                self._decode(pool, states)
                yield from finished({p.file for p in pool})
                pool, pool_seconds = [], 0.0
        self._decode(pool, states)
        yield from finished({p.file for p in pool})

    def _seconds(self, piece: Piece) -> float:
        return piece.features.shape[0] * self.extractor.config.frame_seconds

    def _batches(self, pieces: list[Piece]) -> Iterator[list[Piece]]:
        pieces = sorted(pieces, key=lambda p: p.features.shape[0])  # similar lengths pad little
        batch: list[Piece] = []
        for piece in pieces:
            if batch and self._seconds(piece) * (len(batch) + 1) > self.max_batch_seconds:
                yield batch
                batch = []
            batch.append(piece)
        if batch:
            yield batch

    def _decode(self, pieces: list[Piece], states: list[_FileState]) -> None:
        """Decode pieces in batches, ``parallel_batches`` at a time; store each piece's words
        (with times) as a segment."""
        batches = list(self._batches(pieces))
        threads = torch.get_num_threads()
        parallel = min(self.parallel_batches, threads, len(batches))
        if parallel < 2 or self.device.type != "cpu":
            for batch in batches:
                self._decode_batch(batch, states)
            return
        torch.set_num_threads(threads // parallel)  # the threads shared out, not multiplied
        try:
            with ThreadPoolExecutor(parallel) as executor:  # list(): re-raises a batch's error
                list(executor.map(lambda b: self._decode_batch(b, states), batches))
        finally:
            torch.set_num_threads(threads)

    @torch.no_grad()  # per thread: parallel batches run in threads of their own
    def _decode_batch(self, batch: list[Piece], states: list[_FileState]) -> None:
        started = time.perf_counter()
        feats = [p.features.to(self.device) for p in batch]
        lengths = torch.tensor([f.shape[0] for f in feats], device=self.device)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, n_mels)
        log_probs, out_lengths = self.model(padded, lengths)  # (B, T', V), (B,)
        log_probs = log_probs.cpu()
        texts = None
        if self._beam:
            with self._decoder_lock:  # flashlight's decoder keeps its search state inside
                texts = self.decoder(log_probs, out_lengths)
        segments: list[tuple[Piece, Segment | None]] = []
        for b, piece in enumerate(batch):
            lp = log_probs[b, : int(out_lengths[b])]  # (T'_b, V)
            no_speech = no_speech_score(lp)
            if no_speech > self.no_speech_threshold:
                segments.append((piece, None))  # noise: whatever words it gives are invented
                continue
            text = None if texts is None else texts[b]  # None: greedy
            words = piece_words(
                lp, text, self.tokenizer, self.frame_seconds, piece.offset, piece.duration
            )
            segments.append((piece, make_segment(words, no_speech) if words else None))
        share = (time.perf_counter() - started) / float(lengths.sum())
        with self._states_lock:  # a long file's pieces may be in both parallel batches
            for (piece, segment), length in zip(segments, lengths.tolist(), strict=True):
                state = states[piece.file]
                state.decoded += 1
                state.seconds += share * length
                if segment is not None:
                    state.segments[piece.index] = segment
