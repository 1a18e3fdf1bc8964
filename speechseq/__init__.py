"""speechseq: speech-to-text and text-to-speech with recurrent networks.

The package is lazy: ``import speechseq`` loads no torch; the names below load their module on
first use.

Example:
    >>> from speechseq import Transcriber
    >>> Transcriber.from_pretrained().transcribe("speech.wav").text
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from speechseq.errors import SpeechseqError

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'speechseq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
