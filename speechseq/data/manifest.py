"""Manifests: JSONL, one utterance a line, ``{"audio": path, "text": str, "duration": seconds}``,
and the two shapes of the field that are read wherever a manifest is:

- NeMo's JSONL: ``{"audio_filepath": …, "duration": …, "text": …, "offset": …}`` (``offset``
  optional; ``"offset"`` is read in ours too);
- a Kaldi data directory: ``wav.scp`` (recording id → audio file), ``text`` (utterance id →
  transcript, optional for transcribing) and optional ``segments`` (utterance id, recording id,
  start, end seconds).

Audio paths may be relative to the manifest's folder (for Kaldi, to the data directory, else to
the working directory, as Kaldi recipes write them).

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

__all__ = [
    "Utterance",
    "is_kaldi_dir",
    "read_jsonl",
    "read_kaldi_dir",
    "read_manifest",
    "write_manifest",
    "manifest_from_folder",
]


@dataclass(frozen=True)
class Utterance:
    """One recording and its transcript.

    Args:
        audio: path to the audio file (absolute once read from a manifest).
        text: the transcript (normalised when built by speechseq).
        duration: length in seconds.
        offset: None for the whole file; for a segment of a longer recording, where it starts
            in seconds (it lasts ``duration``).
        id: its name where the manifest gives one (a Kaldi utterance id), else "".
    """

    audio: str
    text: str
    duration: float
    offset: float | None = None
    id: str = ""

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
                if "audio" not in record and "audio_filepath" in record:  # NeMo's name
                    record["audio"] = record.pop("audio_filepath")
                audio = Path(record["audio"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise SpeechseqError(f"{where}: not a {kind} record ({err})") from None
            record["audio"] = str(audio if audio.is_absolute() else base / audio)
            yield where, record


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a manifest: JSONL (ours or NeMo's), or a Kaldi data directory. Relative audio
    paths are resolved against its folder.

    Raises:
        SpeechseqError: the file is missing or a line is not a valid record.
    """
    if Path(path).is_dir():
        return read_kaldi_dir(path)
    utterances = []
    for where, record in read_jsonl(path, "manifest"):
        try:
            utterances.append(
                Utterance(
                    audio=record["audio"],
                    text=str(record.get("text", "")),
                    duration=float(record["duration"]),
                    offset=None if record.get("offset") is None else float(record["offset"]),
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
            if utt.offset is not None:
                record["offset"] = round(utt.offset, 4)
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def is_kaldi_dir(path: str | Path) -> bool:
    """A folder holding a Kaldi ``wav.scp``."""
    return (Path(path) / "wav.scp").is_file()


def _kaldi_table(path: Path, fields: int) -> dict[str, list[str]]:
    """``id → fields`` of a Kaldi table file (``id`` then the rest, split on whitespace into at
    most ``fields`` parts; 1 keeps the rest whole)."""
    table = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=fields)
            if not parts:
                continue
            if len(parts) < 1 + (fields if fields > 1 else 0):
                raise SpeechseqError(f"{path}:{lineno}: expected an id and {fields} field(s)")
            table[parts[0]] = parts[1:]
    return table


def read_kaldi_dir(folder: str | Path) -> list[Utterance]:
    """The utterances of a Kaldi data directory (``wav.scp``, optional ``text`` and
    ``segments``), in the order of ``segments`` or else ``wav.scp``.

    Raises:
        SpeechseqError: no ``wav.scp``, a piped command in it (``cmd |``: write the audio to
            files first), a malformed line, or a segment of an unknown recording.
    """
    folder = Path(folder)
    if not is_kaldi_dir(folder):
        raise SpeechseqError(f"{folder}: not a Kaldi data directory (no wav.scp)")
    recordings = {}
    for rec, (where,) in _kaldi_table(folder / "wav.scp", 1).items():
        if where.endswith("|"):
            raise SpeechseqError(
                f"{folder / 'wav.scp'}: {rec} is a piped command; write its audio to a file"
            )
        audio = Path(where)
        if not audio.is_absolute():
            audio = folder / audio if (folder / audio).exists() else Path.cwd() / audio
        recordings[rec] = str(audio)
    texts = {}
    if (folder / "text").is_file():
        texts = {
            u: (rest[0] if rest else "") for u, rest in _kaldi_table(folder / "text", 1).items()
        }
    utterances = []
    if (folder / "segments").is_file():
        for utt, (rec, start, end) in _kaldi_table(folder / "segments", 3).items():
            if rec not in recordings:
                raise SpeechseqError(f"{folder / 'segments'}: {utt}: no recording {rec!r}")
            try:
                offset, stop = float(start), float(end)
            except ValueError:
                raise SpeechseqError(f"{folder / 'segments'}: {utt}: bad times") from None
            utterances.append(
                Utterance(recordings[rec], texts.get(utt, ""), stop - offset, offset, utt)
            )
        return utterances
    for rec, audio in recordings.items():
        duration = audio_duration(audio) if Path(audio).is_file() else 0.0
        utterances.append(Utterance(audio, texts.get(rec, ""), duration, None, rec))
    return utterances


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
