"""Transcription without torch, for a few short files: the network in ONNX Runtime, the rest in
NumPy and flashlight.

Importing torch takes about 2.4 s on a small CPU server, far longer than transcribing a few
seconds of speech. So ``speechseq transcribe`` runs a short job (:func:`lite_transcriber` says
which) here instead: the recognizer's ONNX copy (``speechseq export --onnx``; the shipped
recognizer has one beside it) in ONNX Runtime, log-mels in NumPy
(:func:`speechseq.mel.log_mel_features`), the same decoders (greedy, or flashlight's beam with the
word LM), the same word times (:func:`~speechseq.asr.alignment.viterbi_path` for a beam's
transcript) and the same :class:`~speechseq.asr.result.TranscriptionResult`. Each file is one
piece, as :class:`~speechseq.asr.transcriber.Transcriber` makes of a file no longer than its
``max_segment_seconds``, and runs alone (no batch, so no padding).

The numbers are not bit for bit those of the torch path: the ONNX network computes in float32
where the shipped int8 checkpoint runs torch's int8 kernels (which also quantize each batch's
activations), so a near-tie between two words can go either way (tested on the shipped samples:
the same transcripts).

Example:
    >>> transcriber = LiteTranscriber.from_onnx("asr.onnx")
    >>> next(transcriber.iter_transcribe(["short.wav"])).text
    'hello world'
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from speechseq.asr.alignment import make_segment, no_speech_score, piece_words
from speechseq.asr.beam import BeamSearchDecoder
from speechseq.asr.decoding import DecoderConfig, make_decoder, resolve_decoding, tuned_decoding
from speechseq.asr.result import TranscriptionResult
from speechseq.asr.silence import is_silence
from speechseq.audio import check_truncation, read_mono
from speechseq.errors import SpeechseqError
from speechseq.mel import FeatureConfig, log_mel_features, mel_filterbank_np
from speechseq.pretrained import recognizer_path
from speechseq.text import Tokenizer, tokenizer_from_dict

if TYPE_CHECKING:
    from speechseq.asr.sources import AudioSlice

__all__ = ["LITE_MAX_SECONDS", "LiteTranscriber", "lite_transcriber", "read_onnx_recognizer"]

LITE_MAX_SECONDS = 120.0  # a job with more audio than this loads torch: its int8 batches win

log = logging.getLogger(__name__)


def read_onnx_recognizer(path: str | Path, threads: int | None = None):
    """An ONNX recognizer (from ``speechseq export --onnx``) opened in ONNX Runtime.

    Args:
        path: the ONNX file.
        threads: ONNX Runtime's intra-op threads (None: its default, one per core).

    Returns:
        the inference session and its metadata as a checkpoint-like dict (``model_config``,
        ``feature_config``, ``tokenizer``, ``speechseq_format``).

    Raises:
        SpeechseqError: missing, not ONNX, without speechseq's metadata, or onnxruntime is not
            installed.
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechseqError(f"{path}: no such model file")
    try:
        import onnxruntime as ort
    except ImportError:
        raise SpeechseqError(
            "an ONNX model needs the onnxruntime package (a speechseq dependency): "
            "pip install onnxruntime"
        ) from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for a file it cannot read
        raise SpeechseqError(f"{path}: not an ONNX model ({str(err).splitlines()[0]})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if "model_config" not in meta:
        raise SpeechseqError(f"{path}: an ONNX model without speechseq's metadata")
    return session, {k: json.loads(v) if k != "speechseq_format" else v for k, v in meta.items()}


class LiteTranscriber:
    """Short files → text with word times, without torch (see the module docstring).

    Args:
        session: an ONNX Runtime session of a recognizer (:func:`read_onnx_recognizer`).
        feature_config: its features.
        tokenizer: its tokenizer.
        subsampling: its front end's time subsampling (output frames per feature frame).
        decoder: ``decode(log_probs (B, T, V), lengths (B,)) -> texts``; default greedy.
        no_speech_threshold: as :class:`~speechseq.asr.transcriber.Transcriber`'s.
        max_segment_seconds: a longer file is an error here (the torch path cuts it at pauses).
    """

    def __init__(
        self,
        session,
        feature_config: FeatureConfig,
        tokenizer: Tokenizer,
        subsampling: int,
        decoder: Callable[..., list[str]] | None = None,
        no_speech_threshold: float = 1.0,
        max_segment_seconds: float = 30.0,
    ) -> None:
        self.session = session
        self.feature_config = feature_config
        self.tokenizer = tokenizer
        self.frame_seconds = feature_config.frame_seconds * subsampling
        self.decoder = decoder or make_decoder(tokenizer)
        self._beam = isinstance(self.decoder, BeamSearchDecoder)
        self.no_speech_threshold = no_speech_threshold
        self.max_segment_seconds = max_segment_seconds
        c = feature_config
        self._fbank = mel_filterbank_np(c.n_fft, c.n_mels, c.sample_rate, c.f_min, c.f_max)

    @classmethod
    def from_onnx(
        cls,
        path: str | Path,
        decoding: DecoderConfig | None = None,
        tuning: str | Path | None = None,
        threads: int = 1,
        max_segment_seconds: float = 30.0,
    ) -> LiteTranscriber:
        """Build from an ONNX recognizer and a decoder choice, resolved as
        :meth:`Transcriber.from_pretrained <speechseq.asr.transcriber.Transcriber.from_pretrained>`
        does, against the tuning (``NAME.decoding.json``) beside ``tuning`` (default: beside
        ``path``). ``threads``: ONNX Runtime's intra-op threads; one, by default, runs a few
        seconds of audio sooner than a pool of every core takes to start (0.76 against 0.87 s
        for a 3 s file from the command line, on 2 cores)."""
        session, state = read_onnx_recognizer(path, threads)
        return cls.from_session(session, state, decoding, tuning or path, max_segment_seconds)

    @classmethod
    def from_session(
        cls,
        session,
        state: dict,
        decoding: DecoderConfig | None,
        tuning: str | Path,
        max_segment_seconds: float = 30.0,
    ) -> LiteTranscriber:
        """:meth:`from_onnx` for a file :func:`read_onnx_recognizer` has opened."""
        decoding = resolve_decoding(decoding, tuned_decoding(tuning))
        tokenizer = tokenizer_from_dict(state["tokenizer"])
        no_speech = decoding.no_speech_threshold
        log.info("recognizer %s: its ONNX copy in ONNX Runtime, no torch", tuning)
        log.info("%s", decoding.summary())
        return cls(
            session,
            FeatureConfig.from_dict(state["feature_config"]),
            tokenizer,
            int(state["model_config"]["subsampling"]),
            decoder=make_decoder(tokenizer, decoding),
            no_speech_threshold=1.0 if no_speech is None else no_speech,
            max_segment_seconds=max_segment_seconds,
        )

    def iter_transcribe(
        self,
        paths: Sequence[str | Path | AudioSlice],
        num_workers: int = 0,
        claim: Callable[[int], bool] | None = None,
    ) -> Iterator[TranscriptionResult]:
        """As :meth:`Transcriber.iter_transcribe
        <speechseq.asr.transcriber.Transcriber.iter_transcribe>`, for files no longer than
        ``max_segment_seconds`` at the model's sample rate (others fail, each with its reason);
        ``num_workers`` is ignored: each file is read when its turn comes."""
        del num_workers
        for i, path in enumerate(paths):
            try:
                if claim is not None and not claim(i):
                    continue  # another job has it
                yield self._file(path)
            except SpeechseqError as err:
                yield TranscriptionResult(str(path), error=str(err))
            except Exception as err:  # one odd file must not end the job (as the torch path)
                yield TranscriptionResult(str(path), error=f"{path}: {type(err).__name__}: {err}")

    def _file(self, path: str | Path | AudioSlice) -> TranscriptionResult:
        started = time.perf_counter()
        if not isinstance(path, (str, Path)):
            raise SpeechseqError(f"{path}: segments of files need the torch path")
        truncated = check_truncation(path)
        samples, rate = read_mono(path)
        c = self.feature_config
        if rate != c.sample_rate:
            raise SpeechseqError(f"{path}: {rate} Hz; this path reads {c.sample_rate} Hz only")
        duration = len(samples) / rate
        if duration > self.max_segment_seconds:
            raise SpeechseqError(f"{path}: longer than {self.max_segment_seconds:g} s")
        segments = []
        if not is_silence(samples, rate):
            segment = self._segment(samples, duration)
            segments = [segment] if segment is not None else []
        return TranscriptionResult(
            str(path),
            text=" ".join(s.text for s in segments),
            duration=duration,
            segments=segments,
            seconds=time.perf_counter() - started,
            truncated=truncated,
        )

    def _segment(self, samples: np.ndarray, duration: float):
        """The file's words as one segment (None: no words, or the piece is noise)."""
        features = log_mel_features(samples, self.feature_config, self._fbank)  # (T, n_mels)
        log_probs, out_lengths = self.session.run(
            None, {"features": features[None], "lengths": np.array([len(features)])}
        )  # (1, T', V), (1,)
        lp = log_probs[0, : int(out_lengths[0])]  # (T', V)
        no_speech = no_speech_score(lp)
        if no_speech > self.no_speech_threshold:
            return None  # noise: whatever words it gives are invented
        text = self.decoder(log_probs, out_lengths)[0] if self._beam else None  # None: greedy
        words = piece_words(lp, text, self.tokenizer, self.frame_seconds, 0.0, duration)
        return make_segment(words, no_speech) if words else None


def lite_transcriber(
    model: str | Path | None,
    inputs: Sequence[str | Path | AudioSlice],
    decoding: DecoderConfig | None = None,
    device: str = "auto",
    threads: int | None = None,
    max_segment_seconds: float = 30.0,
) -> LiteTranscriber | None:
    """A :class:`LiteTranscriber` for this job, or None if it is not one for the torch-free path.

    It is when: the model is the shipped one (its ONNX copy beside it) or an ONNX file; the
    device is ``auto`` or ``cpu``; this is no torchrun rank; onnxruntime is installed; and the
    inputs are files soundfile reads at the model's rate, none longer than
    ``max_segment_seconds``, :data:`LITE_MAX_SECONDS` in all.
    """
    if device not in ("auto", "cpu") or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    if model is None or str(model) == "default":
        tuning = recognizer_path(None)
        onnx = tuning.with_suffix(".onnx")
        if not onnx.is_file():
            return None
    elif Path(model).suffix == ".onnx":
        tuning = onnx = Path(model)
    else:
        return None
    total, rates = 0.0, set()
    for path in inputs:
        if not isinstance(path, (str, Path)):
            return None
        try:
            info = sf.info(str(path))
        except Exception:  # unreadable here: the torch path reads more formats, or says why
            return None
        seconds = info.frames / info.samplerate
        total += seconds
        rates.add(info.samplerate)
        if seconds > max_segment_seconds or total > LITE_MAX_SECONDS:
            return None
    session, state = read_onnx_recognizer(onnx, threads or 1)  # 1: see from_onnx
    if rates - {state["feature_config"]["sample_rate"]}:  # the torch path resamples
        return None
    return LiteTranscriber.from_session(session, state, decoding, tuning, max_segment_seconds)
