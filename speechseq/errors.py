"""The one error type speechseq raises for bad input, so callers and the CLI can catch it."""

__all__ = ["SpeechseqError"]


class SpeechseqError(Exception):
    """Bad input or state that a user can fix: the message names the file and what is wrong.

    The CLI prints the message as one line on stderr and exits non-zero instead of a traceback.
    """
