"""The files shipped inside the package, and where they are.

This folder holds the shipped models and their model cards:

- ``asr-default.pt``: the default recognizer (256 word pieces), with
  ``asr-default.decoding.json`` (its beam search and LM tuned on dev) and ``lm-default.arpa``;
- ``asr-char.pt``: a recognizer of characters, which TTS duration extraction aligns with;
- ``tts-default.pt``: the default voice.

Nothing here imports torch: the CLI asks for these paths before it loads anything heavy.

Example:
    >>> from speechseq import pretrained
    >>> pretrained.recognizer_path("default")
    PosixPath('.../speechseq/pretrained/asr-default.pt')
"""

from __future__ import annotations

from pathlib import Path

from speechseq.errors import SpeechseqError

__all__ = [
    "CHAR_RECOGNIZER",
    "PRETRAINED_DIR",
    "RECOGNIZER",
    "VOICE",
    "char_recognizer_path",
    "default_recognizer_path",
    "default_voice_path",
    "recognizer_path",
    "voice_path",
]

PRETRAINED_DIR = Path(__file__).parent
RECOGNIZER = "asr-default.pt"
# Characters, not word pieces: TTS durations align characters with it, and the published TTS
# figures were heard by it.
CHAR_RECOGNIZER = "asr-char.pt"
VOICE = "tts-default.pt"


def _shipped(name: str, what: str, hint: str) -> Path:
    path = PRETRAINED_DIR / name
    if not path.is_file():
        raise SpeechseqError(f"no shipped {what} found at {path}; {hint}")
    return path


def default_recognizer_path() -> Path:
    """The recognizer shipped inside the package.

    Raises:
        SpeechseqError: this installation ships none (pass a model path instead).
    """
    return _shipped(
        RECOGNIZER,
        "model",
        "pass a checkpoint with --model (train one with recipes/tiny/asr/run.sh)",
    )


def char_recognizer_path() -> Path:
    """The character recognizer shipped inside the package (``asr-char.pt``), for what needs
    characters rather than word pieces: TTS duration extraction.

    Raises:
        SpeechseqError: this installation ships none.
    """
    return _shipped(CHAR_RECOGNIZER, "character recognizer", "pass a recognizer of characters")


def default_voice_path() -> Path:
    """The voice shipped inside the package.

    Raises:
        SpeechseqError: this installation ships none (pass a checkpoint with --model instead).
    """
    return _shipped(
        VOICE,
        "voice",
        "pass a text-to-speech checkpoint with --model "
        "(train one with recipes/synthetic/tts/run.sh)",
    )


def recognizer_path(path: str | Path | None) -> Path:
    """A recognizer checkpoint's path: ``None`` or ``"default"`` name the shipped one.

    Raises:
        SpeechseqError: ``default`` asked for, and this installation ships none.
    """
    return default_recognizer_path() if path is None or str(path) == "default" else Path(path)


def voice_path(path: str | Path | None) -> Path:
    """A text-to-speech checkpoint's path: ``None`` or ``"default"`` name the shipped voice.

    Raises:
        SpeechseqError: ``default`` asked for, and this installation ships none.
    """
    return default_voice_path() if path is None or str(path) == "default" else Path(path)
