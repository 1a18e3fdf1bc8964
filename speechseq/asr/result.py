"""What became of one input file: :class:`TranscriptionResult`, the same from every transcriber.

Torch-free, so the jobs, writers and the torch-free transcriber (:mod:`speechseq.asr.lite`)
share it without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speechseq.asr.alignment import Segment, Word

__all__ = ["TranscriptionResult"]


@dataclass
class TranscriptionResult:
    """What became of one input file.

    Attributes:
        path: the input file.
        text: the transcript ("" if it failed).
        duration: seconds of audio (0 if it failed before the end of the file).
        error: why it failed, or None.
        segments: the pieces of speech, with word times and confidences (see
            :mod:`speechseq.asr.alignment`).
        seconds: processing time spent on this file: reading and features in its worker plus
            its share (by frames) of the batches it was decoded in.
        truncated: for a WAV file cut short (its header declares more audio than it holds),
            what it holds and what it declares; the transcript is of what it holds.
    """

    path: str
    text: str = ""
    duration: float = 0.0
    error: str | None = None
    segments: list[Segment] = field(default_factory=list)
    seconds: float = 0.0
    truncated: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def words(self) -> list[Word]:
        """Every word of every segment, in order."""
        return [w for s in self.segments for w in s.words]

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "text": self.text,
            "duration": round(self.duration, 3),
            **({"error": self.error} if self.error else {}),
            **({"truncated": True} if self.truncated else {}),
            "segments": [s.to_dict(i) for i, s in enumerate(self.segments)],
        }
