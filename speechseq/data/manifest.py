"""JSONL manifests: one utterance a line, ``{"audio": path, "text": str, "duration": seconds}``.

Audio paths may be relative to the manifest's folder (the shape NeMo users already have).

Example:
    >>> utts = manifest_from_folder("my_corpus/")      # wav + same-stem .txt
    >>> write_manifest(utts, "my_corpus/manifest.jsonl")
    >>> read_manifest("my_corpus/manifest.jsonl")[0].text
    'hello world'
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from speechseq.audio import AUDIO_SUFFIXES, audio_duration
from speechseq.errors import SpeechseqError
from speechseq.files import atomic_path
from speechseq.text import normalize_text

__all__ = ["Utterance", "read_jsonl", "read_manifest", "write_manifest", "manifest_from_folder"]


@dataclass(frozen=True)
class Utterance:
    """One recording and its transcript.

    Args:
        audio: path to the audio file (absolute once read from a manifest).
        text: the transcript (normalised when built by speechseq).
        duration: length in seconds.
    """

    audio: str
    text: str
    duration: float

    def with_audio(self, audio: str) -> Utterance:
        return replace(self, audio=audio)


def read_jsonl(path: str | Path, kind: str) -> Iterator[tuple[str, dict]]:
    """Each non-blank line of a JSONL file of audio records, as ``(where, record)``: ``where`` is
    ``"path:line"`` for error messages, and ``record["audio"]`` is made absolute against the
    file's folder (relative paths stay valid wherever the file and its audio move together).

    Args:
        path: the file.
        kind: what its records are, for messages ("manifest", "durations").

    Raises:
        SpeechseqError: the file is missing, or a line is not JSON or has no "audio" path.
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechseqError(f"{path}: no such {kind} file")
    base = path.parent.resolve()
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
                audio = Path(record["audio"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise SpeechseqError(f"{where}: not a {kind} record ({err})") from None
            record["audio"] = str(audio if audio.is_absolute() else base / audio)
            yield where, record


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSONL manifest; relative audio paths are resolved against its folder.

    Raises:
        SpeechseqError: the file is missing or a line is not a valid record.
    """
    utterances = []
    for where, record in read_jsonl(path, "manifest"):
        try:
            utterances.append(
                Utterance(
                    audio=record["audio"],
                    text=str(record.get("text", "")),
                    duration=float(record["duration"]),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise SpeechseqError(f"{where}: not a manifest record ({err})") from None
    return utterances


def write_manifest(utterances: Iterable[Utterance], path: str | Path) -> Path:
    """Write utterances as JSONL, atomically, with audio paths relative to the manifest's folder
    where they lie below it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for utt in utterances:
            audio = Path(utt.audio).resolve()
            try:
                audio_str = str(audio.relative_to(base))
            except ValueError:
                audio_str = str(audio)
            record = {"audio": audio_str, "text": utt.text, "duration": round(utt.duration, 4)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def manifest_from_folder(folder: str | Path, normalize: bool = True) -> list[Utterance]:
    """Utterances for every audio file under ``folder`` (recursive) that has a same-stem ``.txt``
    transcript beside it. Files without a transcript are skipped.

    Raises:
        SpeechseqError: ``folder`` is missing or holds no transcribed audio.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SpeechseqError(f"{folder}: no such folder")
    utterances = []
    for audio in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        transcript = audio.with_suffix(".txt")
        if not transcript.is_file():
            continue
        text = transcript.read_text(encoding="utf-8").strip()
        if normalize:
            text = normalize_text(text)
        if not text:
            warnings.warn(f"{transcript}: no speakable text; left out", stacklevel=2)
            continue
        try:
            duration = audio_duration(audio)
        except SpeechseqError as err:
            warnings.warn(f"{err}; left out", stacklevel=2)
            continue
        if duration <= 0:
            warnings.warn(f"{audio}: holds no samples; left out", stacklevel=2)
            continue
        utterances.append(
            Utterance(
                audio=str(audio.resolve()),
                text=text,
                duration=duration,
            )
        )
    if not utterances:
        raise SpeechseqError(f"{folder}: no audio files with same-stem .txt transcripts found")
    return utterances
