"""speechseq: speech-to-text and text-to-speech with recurrent networks.

Example:
    >>> from speechseq import Transcriber
    >>> Transcriber.from_pretrained().transcribe(["speech.wav"])[0].text
"""

from speechseq.errors import SpeechseqError
from speechseq.inference import Transcriber, TranscriptionResult
from speechseq.synthesis import Speaker

__all__ = ["SpeechseqError", "Speaker", "Transcriber", "TranscriptionResult", "__version__"]
__version__ = "0.1.0"
