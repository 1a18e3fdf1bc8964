"""speechseq: speech-to-text and text-to-speech with recurrent networks.

The package is lazy: ``import speechseq`` loads no torch; the names below load their module on
first use.

Example:
    >>> from speechseq import Transcriber
    >>> Transcriber.from_pretrained().transcribe("speech.wav").text
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from speechseq.errors import SpeechseqError
from speechseq.lazy import lazy_attributes

if TYPE_CHECKING:
    from speechseq.asr.result import TranscriptionResult
    from speechseq.asr.transcriber import Transcriber
    from speechseq.tts.speaker import Speaker

__all__ = ["SpeechseqError", "Speaker", "Transcriber", "TranscriptionResult", "__version__"]
__version__ = "0.1.0"

_LAZY = {
    "Transcriber": "speechseq.asr.transcriber",
    "TranscriptionResult": "speechseq.asr.result",
    "Speaker": "speechseq.tts.speaker",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
