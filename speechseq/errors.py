"""The one error type speechseq raises for bad input, so callers and the CLI can catch it."""

__all__ = ["SpeechseqError", "os_cause"]


class SpeechseqError(Exception):
    """Bad input or state that a user can fix: the message names the file and what is wrong.

    The CLI prints the message as one line on stderr and exits non-zero instead of a traceback.
    """


def os_cause(err: OSError) -> str:
    """``permission denied``, ``no space left on device``: the OS's words for an error on a
    file, without the path (messages name the user's path themselves)."""
    return (err.strerror or str(err)).lower()
