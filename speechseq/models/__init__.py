"""Models, one per file, each with its frozen config beside it."""

from speechseq.models.asr import Recognizer, RecognizerConfig

__all__ = ["Recognizer", "RecognizerConfig"]
