"""What the command files share: turning errors into one line, library warnings and log records
into lines, thread settings, and the decoder options of ``transcribe`` and ``evaluate``.

Nothing here imports torch at module level: ``speechseq --help`` stays quick.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from speechseq.errors import SpeechseqError, os_cause

__all__ = [
    "TRAIN_CONTEXT",
    "BeamSizeOption",
    "BeamTokensOption",
    "ConfigArgument",
    "DecoderKind",
    "DecoderOption",
    "LMOption",
    "LMWeightOption",
    "NoSpeechOption",
    "ProgressOption",
    "ResumeOption",
    "WordBonusOption",
    "decoding",
    "fail",
    "friendly",
    "refuse_to_replace",
    "set_logging",
    "set_threads",
    "sub_app",
    "warnings_as_lines",
]


def sub_app(**options) -> typer.Typer:
    """A typer app whose help is drawn in boxes on a terminal and as plain, full-width text
    when piped or redirected (in an 80-column box, option names were cut)."""
    markup = "rich" if sys.stdout.isatty() else None
    return typer.Typer(rich_markup_mode=markup, **options)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Say ``error: message`` on stderr; the ``typer.Exit`` to raise with ``code``."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def refuse_to_replace(*paths: Path | None, overwrite: bool) -> None:
    """Raise a SpeechseqError naming those of ``paths`` that exist, unless ``overwrite``."""
    taken = [str(p) for p in paths if p is not None and p.exists()]
    if taken and not overwrite:
        raise SpeechseqError(f"{', '.join(taken)}: exists; pass --overwrite to replace it")


def friendly(func):
    """Turn a SpeechseqError, or an OSError on a file (permission denied, disk full), into one
    line on stderr and exit code 2, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SpeechseqError as err:
            raise fail(str(err)) from None
        except BrokenPipeError:  # `speechseq … | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            raise fail(f"{where}{os_cause(err)}") from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


@contextlib.contextmanager
def warnings_as_lines():
    """Show library warnings (skipped files, …) as plain ``warning: …`` lines on stderr, as
    they happen (a training run's come during the run, not at its end)."""

    def show(message, *args, **kwargs) -> None:
        typer.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


class _LineHandler(logging.Handler):
    """``warning: …`` / ``error: …`` lines (info and debug plain) on stderr, written through tqdm
    so that a progress bar is redrawn below them, not torn."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        tqdm.write(message, file=sys.stderr)


def set_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Send the library's log records (logger ``speechseq``) to stderr as lines: warnings and
    errors by default, info with ``verbose`` 1, debug with 2 or more, errors only if
    ``quiet``."""
    logger = logging.getLogger("speechseq")
    for handler in [h for h in logger.handlers if isinstance(h, _LineHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(_LineHandler())
    logger.propagate = False
    if quiet:
        logger.setLevel(logging.ERROR)
    else:
        logger.setLevel(max(logging.DEBUG, logging.WARNING - 10 * verbose))


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


class DecoderKind(str, Enum):
    auto = "auto"
    greedy = "greedy"
    beam = "beam"


DecoderOption = Annotated[
    DecoderKind,
    typer.Option(
        "--decoder",
        help="auto: the model's own tuned decoder (MODEL.decoding.json beside it; the shipped "
        "model's is beam search with the shipped word LM), else greedy, or beam if --lm is "
        "given. greedy: fastest. beam: beam search (with the tuned LM unless --lm).",
    ),
]
BeamSizeOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Beam search: hypotheses kept per frame (default: the model's tuned value, else 50).",
    ),
]
LMOption = Annotated[
    Path | None,
    typer.Option(
        help="Beam search: word n-gram LM: ARPA (speechseq lm build), or a KenLM binary with "
        "the ARPA file it was built from beside it (for its words)."
    ),
]
LMWeightOption = Annotated[
    float | None,
    typer.Option(
        help="Beam search: weight of the LM's log10 scores (default: the model's tuned value, "
        "else 1.0)."
    ),
]
WordBonusOption = Annotated[
    float | None,
    typer.Option(
        help="Beam search: score added per word (default: the model's tuned value, else 0.0)."
    ),
]
NoSpeechOption = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="A piece of audio whose no-speech score (0-1, in the JSON output) is above this "
        "gives no words, so noise is not turned into words (default: the model's tuned value, "
        "else 1: keep every piece).",
    ),
]
BeamTokensOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Beam search: tokens tried per frame, the most probable first; fewer is faster "
        "(default: the model's tuned value, else 32; the vocabulary's size: all).",
    ),
]


# `speechseq train asr|tts CONFIG [--resume] [section.key=value …]`
TRAIN_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
ConfigArgument = Annotated[Path, typer.Argument(help="YAML experiment file.")]
ResumeOption = Annotated[
    bool, typer.Option(help="Continue the run in train.out_dir from its last.pt.")
]
ProgressOption = Annotated[bool, typer.Option(help="Show a progress bar.")]


def decoding(
    decoder: DecoderKind,
    beam_size: int | None,
    lm: Path | None,
    lm_weight: float | None,
    word_bonus: float | None,
    beam_tokens: int | None,
    no_speech_threshold: float | None = None,
):
    """The :class:`~speechseq.asr.decoding.DecoderConfig` the decoder options ask for."""
    from speechseq.asr.decoding import DecoderConfig

    return DecoderConfig(
        decoder.value, beam_size, lm, lm_weight, word_bonus, beam_tokens, no_speech_threshold
    )
