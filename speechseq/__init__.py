"""speechseq: speech-to-text and text-to-speech with recurrent networks.

Example:
    >>> from speechseq import Transcriber
    >>> Transcriber.from_pretrained().transcribe(["speech.wav"])[0].text
"""

from speechseq.errors import SpeechseqError
from speechseq.inference import Transcriber, TranscriptionResult

__all__ = ["SpeechseqError", "Transcriber", "TranscriptionResult", "__version__"]
__version__ = "0.1.0"
