"""Transcriber: checkpoint + features + decoder, over files and folders.

Example:
    >>> from speechseq import Transcriber
    >>> transcriber = Transcriber.from_pretrained("exp/tiny/best.pt")
    >>> for result in transcriber.transcribe(["a.wav", "b.flac"]):
    ...     print(result.path, result.text if result.ok else result.error)
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechseq.audio import AUDIO_SUFFIXES, load_audio
from speechseq.checkpoint import load_recognizer
from speechseq.data.manifest import Utterance
from speechseq.decoding import greedy_decode
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor
from speechseq.metrics import error_counts

__all__ = [
    "Transcriber",
    "TranscriptionResult",
    "EvaluationResult",
    "expand_inputs",
    "default_model_path",
]

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
DEFAULT_MODEL_NAME = "asr-default.pt"


def default_model_path() -> Path:
    """The recognizer shipped inside the package.

    Raises:
        SpeechseqError: this installation ships none (pass a model path instead).
    """
    path = PRETRAINED_DIR / DEFAULT_MODEL_NAME
    if not path.is_file():
        raise SpeechseqError(
            f"no shipped model found at {path}; pass a checkpoint with --model "
            "(train one with recipes/tiny/asr/run.sh)"
        )
    return path


@dataclass
class TranscriptionResult:
    """What became of one input file.

    Attributes:
        path: the input file.
        text: the transcript ("" if it failed).
        duration: seconds of audio (0 if it failed).
        error: why it failed, or None.
    """

    path: str
    text: str = ""
    duration: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "text": self.text,
            "duration": round(self.duration, 3),
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class EvaluationResult:
    """Corpus-level scores plus each utterance's hypothesis."""

    wer: float
    cer: float
    real_time_factor: float
    audio_seconds: float
    seconds: float
    utterances: list[dict] = field(default_factory=list)


def expand_inputs(inputs: Iterable[str | Path]) -> tuple[list[Path], list[TranscriptionResult]]:
    """Files stay, folders are walked recursively for audio suffixes, globs are expanded.

    Returns:
        the audio files found (sorted within each input, duplicates removed), and a failed
        result for each input that matched nothing.
    """
    files: list[Path] = []
    missing: list[TranscriptionResult] = []
    for item in inputs:
        item_str = str(item)
        path = Path(item_str)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not found:
                missing.append(TranscriptionResult(item_str, error=f"{item_str}: no audio files"))
            files += found
        elif path.exists():
            files.append(path)
        elif glob.has_magic(item_str):
            found = sorted(
                Path(p) for p in glob.glob(item_str, recursive=True) if Path(p).is_file()
            )
            if not found:
                missing.append(TranscriptionResult(item_str, error=f"{item_str}: matched no files"))
            files += found
        else:
            missing.append(TranscriptionResult(item_str, error=f"{item_str}: no such file"))
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, missing


class Transcriber:
    """Speech → text with a trained recognizer.

    Args:
        model: the recognizer.
        extractor: its feature extractor.
        tokenizer: its tokenizer.
        device: where to run.
        max_batch_seconds: padded audio seconds per batch (bounds memory).

    Example:
        >>> t = Transcriber.from_pretrained()          # the shipped model
        >>> t.transcribe(["speech.wav"])[0].text
        'hello world'
    """

    def __init__(self, model, extractor, tokenizer, device="cpu", max_batch_seconds=300.0) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.extractor = extractor.to(self.device)
        self.tokenizer = tokenizer
        self.max_batch_seconds = max_batch_seconds

    @classmethod
    def from_pretrained(
        cls, path: str | Path | None = None, device: str = "cpu", max_batch_seconds: float = 300.0
    ) -> Transcriber:
        """Build from a checkpoint path (default: the shipped model)."""
        model, feature_config, tokenizer, _ = load_recognizer(path or default_model_path())
        return cls(model, FeatureExtractor(feature_config), tokenizer, device, max_batch_seconds)

    @property
    def sample_rate(self) -> int:
        return self.extractor.config.sample_rate

    @torch.no_grad()
    def transcribe_waveforms(self, waveforms: Sequence[torch.Tensor]) -> list[str]:
        """Transcribe (T,) waveforms at :attr:`sample_rate`, as one batch."""
        feats = [self.extractor(w.to(self.device)) for w in waveforms]  # each (T_i, n_mels)
        lengths = torch.tensor([f.shape[0] for f in feats], device=self.device)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, n_mels)
        log_probs, out_lengths = self.model(padded, lengths)
        return greedy_decode(log_probs, out_lengths, self.tokenizer)

    def _batches(self, items: list[tuple[int, torch.Tensor]]) -> Iterable[list]:
        items = sorted(items, key=lambda it: it[1].numel())  # similar lengths pad little
        batch: list = []
        for item in items:
            longest = item[1].numel() / self.sample_rate
            if batch and longest * (len(batch) + 1) > self.max_batch_seconds:
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def transcribe(
        self,
        paths: Sequence[str | Path],
        on_result: Callable[[TranscriptionResult], None] | None = None,
        chunk_files: int = 64,
    ) -> list[TranscriptionResult]:
        """Transcribe files, batching similar lengths together.

        A file that cannot be read gets a result with ``error`` set; the rest go on.

        Args:
            paths: audio files.
            on_result: called with each result as soon as it is ready (for progress and writing).
            chunk_files: files loaded into memory at a time.

        Returns:
            one result per path, in the order given.
        """
        results: list[TranscriptionResult | None] = [None] * len(paths)
        for start in range(0, len(paths), chunk_files):
            loaded = []
            for i in range(start, min(start + chunk_files, len(paths))):
                try:
                    loaded.append((i, load_audio(paths[i], self.sample_rate)))
                except SpeechseqError as err:
                    results[i] = TranscriptionResult(str(paths[i]), error=str(err))
                    if on_result:
                        on_result(results[i])
            for batch in self._batches(loaded):
                texts = self.transcribe_waveforms([w for _, w in batch])
                for (i, w), text in zip(batch, texts, strict=True):
                    results[i] = TranscriptionResult(
                        str(paths[i]), text=text, duration=w.numel() / self.sample_rate
                    )
                    if on_result:
                        on_result(results[i])
        return [r for r in results if r is not None]

    def evaluate(
        self, utterances: Sequence[Utterance], on_result: Callable | None = None
    ) -> EvaluationResult:
        """WER, CER and real-time factor over manifest utterances (loading time included)."""
        started = time.perf_counter()
        results = self.transcribe([u.audio for u in utterances], on_result=on_result)
        seconds = time.perf_counter() - started
        failed = [r for r in results if not r.ok]
        if failed:
            raise SpeechseqError(failed[0].error or "unreadable audio")
        counts = error_counts([u.text for u in utterances], [r.text for r in results])
        per_utt = []
        for u, r in zip(utterances, results, strict=True):
            c = error_counts([u.text], [r.text])
            per_utt.append(
                {
                    "audio": u.audio,
                    "reference": u.text,
                    "hypothesis": r.text,
                    "word_errors": c["word_errors"],
                    "words": c["words"],
                    "char_errors": c["char_errors"],
                    "chars": c["chars"],
                }
            )
        audio_seconds = sum(r.duration for r in results)
        return EvaluationResult(
            wer=counts["word_errors"] / max(1, counts["words"]),
            cer=counts["char_errors"] / max(1, counts["chars"]),
            real_time_factor=seconds / max(1e-9, audio_seconds),
            audio_seconds=audio_seconds,
            seconds=seconds,
            utterances=per_utt,
        )
