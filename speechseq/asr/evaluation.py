"""Scoring a recognizer on a manifest: corpus WER and CER, real-time factor, and each
utterance's hypothesis (what ``speechseq evaluate`` prints and writes).

Example:
    >>> result = evaluate(Transcriber.from_pretrained(), read_manifest("data/dev.jsonl"))
    >>> print(f"WER {100 * result.wer:.2f} %")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from speechseq.asr.sources import audio_source
from speechseq.asr.transcriber import Transcriber
from speechseq.data.manifest import Utterance
from speechseq.errors import SpeechseqError
from speechseq.metrics import error_counts

__all__ = ["EvaluationResult", "evaluate"]


@dataclass
class EvaluationResult:
    """Corpus-level scores plus each utterance's hypothesis."""

    wer: float
    cer: float
    real_time_factor: float
    audio_seconds: float
    seconds: float
    utterances: list[dict] = field(default_factory=list)


def evaluate(
    transcriber: Transcriber,
    utterances: Sequence[Utterance],
    on_result: Callable | None = None,
) -> EvaluationResult:
    """WER, CER and real-time factor over manifest utterances (loading time included)."""
    started = time.perf_counter()
    results = transcriber.transcribe([audio_source(u) for u in utterances], on_result=on_result)
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
