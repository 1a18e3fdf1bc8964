"""Transcript file formats, following the Whisper command line's conventions.

========  =====================================================================================
``txt``   one line per segment
``json``  ``{"path", "text", "duration", "segments": [{"id", "start", "end", "text",
          "words": [{"word", "start", "end", "probability"}]}]}``
``srt``   numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``
``vtt``   ``WEBVTT`` header, cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``
``tsv``   ``start<TAB>end<TAB>text`` header, then one line per segment, times in integer ms
========  =====================================================================================

Subtitle cues are built from word times (:func:`subtitle_cues`): a cue never spans two
segments or a pause longer than ``max_gap``, and ``max_line_width`` / ``max_line_count`` /
``max_words_per_line`` wrap and split it as whisper's options of the same names do.

Example:
    >>> result = transcriber.transcribe("talk.wav")
    >>> print(render(result, "srt", SubtitleOptions(max_line_width=42, max_line_count=2)))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from speechseq.asr.alignment import Segment

if TYPE_CHECKING:
    from speechseq.asr.transcriber import TranscriptionResult

__all__ = ["FORMATS", "SubtitleOptions", "Cue", "format_timestamp", "subtitle_cues", "render"]

FORMATS = ("txt", "json", "srt", "vtt", "tsv")


@dataclass(frozen=True)
class SubtitleOptions:
    """How words are grouped into subtitle cues (``None`` = no limit).

    Args:
        max_line_width: characters per line.
        max_line_count: lines per cue (with no limit, a cue runs to the segment's end).
        max_words_per_line: words per line.
        max_gap: a pause longer than this many seconds between words starts a new cue (so no
            text stays on screen through a long silence; whisper uses 3 s).
    """

    max_line_width: int | None = None
    max_line_count: int | None = None
    max_words_per_line: int | None = None
    max_gap: float = 3.0


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` seconds; ``text`` lines joined by "\\n"."""

    start: float
    end: float
    text: str


def format_timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """``HH:MM:SS.mmm`` (hours always shown, milliseconds rounded)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def subtitle_cues(segments: Sequence[Segment], options: SubtitleOptions | None = None) -> list[Cue]:
    """Group the words of ``segments`` into cues (see :class:`SubtitleOptions`)."""
    o = options or SubtitleOptions()
    cues: list[Cue] = []
    for segment in segments:
        lines: list[list] = []  # the open cue's lines, each a list of Words
        for word in segment.words:
            if lines and word.start - lines[-1][-1].end > o.max_gap:
                cues.append(_cue(lines))
                lines = []
            if lines and _fits(lines[-1], word.word, o):
                lines[-1].append(word)
                continue
            if lines and o.max_line_count is not None and len(lines) >= o.max_line_count:
                cues.append(_cue(lines))
                lines = []
            lines.append([word])
        if lines:
            cues.append(_cue(lines))
    return cues


def _fits(line: list, word: str, o: SubtitleOptions) -> bool:
    width = sum(len(w.word) for w in line) + len(line) + len(word)  # with the spaces
    if o.max_line_width is not None and width > o.max_line_width:
        return False
    return o.max_words_per_line is None or len(line) < o.max_words_per_line


def _cue(lines: list[list]) -> Cue:
    text = "\n".join(" ".join(w.word for w in line) for line in lines)
    return Cue(start=lines[0][0].start, end=lines[-1][-1].end, text=text)


def _txt(result: TranscriptionResult, options: SubtitleOptions) -> str:
    return "".join(s.text + "\n" for s in result.segments)


def _json(result: TranscriptionResult, options: SubtitleOptions) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False) + "\n"


def _srt(result: TranscriptionResult, options: SubtitleOptions) -> str:
    return "".join(
        f"{i}\n{format_timestamp(c.start, ',')} --> {format_timestamp(c.end, ',')}\n{c.text}\n\n"
        for i, c in enumerate(subtitle_cues(result.segments, options), start=1)
    )


def _vtt(result: TranscriptionResult, options: SubtitleOptions) -> str:
    cues = subtitle_cues(result.segments, options)
    return "WEBVTT\n\n" + "".join(
        f"{format_timestamp(c.start)} --> {format_timestamp(c.end)}\n{c.text}\n\n" for c in cues
    )


def _tsv(result: TranscriptionResult, options: SubtitleOptions) -> str:
    rows = [f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text}" for s in result.segments]
    return "".join(line + "\n" for line in ["start\tend\ttext", *rows])


_WRITERS = {"txt": _txt, "json": _json, "srt": _srt, "vtt": _vtt, "tsv": _tsv}


def render(result: TranscriptionResult, fmt: str, options: SubtitleOptions | None = None) -> str:
    """The text of ``result``'s transcript file in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return _WRITERS[fmt](result, options or SubtitleOptions())
