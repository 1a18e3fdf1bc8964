"""Models, one per file, each with its frozen config beside it."""

from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.models.tts import Synthesizer, SynthesizerConfig

__all__ = ["Recognizer", "RecognizerConfig", "Synthesizer", "SynthesizerConfig"]
