"""Synthesis jobs: which text goes to which file, what a re-run skips, and writing each file
complete or not at all.

``speechseq synthesize`` speaks one text into one file, or each non-blank line of a text file
into its own numbered file; files that exist are skipped unless overwriting, so a re-run
finishes a killed job.

Example:
    >>> jobs = plan_synthesis(text_file=Path("lines.txt"), output_dir=Path("out"))
    >>> [(line, path) for line, path in jobs.todo]
    [('Hello there.', PosixPath('out/0001.wav')), ...]
    >>> run_synthesis(speaker, jobs, on_written=print)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from speechseq.errors import SpeechseqError
from speechseq.files import atomic_path
from speechseq.tts.speaker import Speaker, Synthesis, split_sentences

__all__ = ["SynthesisPlan", "plan_synthesis", "run_synthesis", "speakable_lines"]


@dataclass(frozen=True)
class SynthesisPlan:
    """Every (text, output file) of a job, and those still to write."""

    jobs: list[tuple[str, Path]]
    todo: list[tuple[str, Path]]

    @property
    def skipped(self) -> int:
        return len(self.jobs) - len(self.todo)


def speakable_lines(text_file: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line of ``text_file`` (``-``: standard input); an
    unspeakable line is an error.

    Raises:
        SpeechseqError: a missing or non-UTF-8 file, no text, or a line with nothing to say.
    """
    try:
        if str(text_file) == "-":
            lines = sys.stdin.buffer.read().decode("utf-8").splitlines()
        elif not text_file.is_file():
            raise SpeechseqError(f"{text_file}: no such text file")
        else:
            lines = text_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SpeechseqError(f"{text_file}: not UTF-8 text") from None
    numbered = [(i, line) for i, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise SpeechseqError(f"{text_file}: holds no text")
    for number, line in numbered:
        if not split_sentences(line):
            raise SpeechseqError(f"{text_file}:{number}: nothing to say (no letters or digits)")
    return numbered


def plan_synthesis(
    text: str | None = None,
    output: Path | None = None,
    text_file: Path | None = None,
    output_dir: Path | None = None,
    overwrite: bool = False,
) -> SynthesisPlan:
    """TEXT into ``output``, or line N of ``text_file`` into ``output_dir/NNNN.wav`` (at least
    four digits, more for longer files).

    Raises:
        SpeechseqError: neither or both of TEXT and a text file, a missing or extra output
            option, nothing to say, or one output file that exists (without ``overwrite``).
    """
    if (text is None) == (text_file is None):
        raise SpeechseqError(
            "give either TEXT (with -o OUT.wav) or --text-file (with --output-dir)"
        )
    if text is not None:
        if output is None or output_dir is not None:
            raise SpeechseqError("TEXT is written to one file: give -o OUT.wav")
        if not split_sentences(text):
            raise SpeechseqError("nothing to say: the text has no letters or digits")
        if output.exists() and not overwrite:
            raise SpeechseqError(f"{output}: exists; pass --overwrite to replace it")
        jobs = [(text, output)]
    else:
        assert text_file is not None
        if output_dir is None or output is not None:
            raise SpeechseqError("--text-file writes one file per line: give --output-dir")
        lines = speakable_lines(text_file)
        width = max(4, len(str(lines[-1][0])))
        jobs = [(line, output_dir / f"{number:0{width}d}.wav") for number, line in lines]
    todo = [(t, path) for t, path in jobs if overwrite or not path.exists()]
    return SynthesisPlan(jobs, todo)


def run_synthesis(
    speaker: Speaker,
    plan: SynthesisPlan,
    on_written: Callable[[Path, Synthesis], None] | None = None,
    on_sentence: Callable[[], object] | None = None,
) -> None:
    """Speak each text still to do into its file, streamed there sentence by sentence (memory
    stays flat however long a line is) and complete or not at all (a killed run leaves no
    partial file); ``on_sentence()`` after each sentence, ``on_written(path, synthesis)`` after
    each file."""
    for line, path in plan.todo:
        with atomic_path(path) as tmp:
            result = speaker.speak_to_file(line, tmp, on_sentence)
        if on_written is not None:
            on_written(path, result)
