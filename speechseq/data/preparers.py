"""Dataset preparers: ``prepare_<set>(root, out_dir) -> {part: manifest path}``.

Each preparer reads a corpus laid out exactly as it is downloaded and unpacked, and writes one JSONL
manifest (see :mod:`speechseq.data.manifest`) per part into ``out_dir``. Nothing is downloaded.

- Texts go through :func:`~speechseq.text.normalize_text`.
- Utterances whose normalised text is empty, or whose audio is missing or unreadable, are left out;
  one warning per manifest says how many and why, so one broken clip does not sink a corpus.
- Audio paths are written relative to the manifest where the audio lies below ``out_dir``,
  absolute otherwise (:func:`~speechseq.data.manifest.write_manifest`).
- Cached: a manifest that already exists in ``out_dir`` is returned as it is, without reading the
  corpus again (manifests are written atomically, so one that exists is complete; an interrupted
  run redoes only what is missing). The cache goes by file name only and does not notice a changed
  ``root``: pass ``overwrite=True`` to rebuild.
- ``root`` is checked first: if it does not look like the dataset, :class:`SpeechseqError` says
  what layout was expected.

Example:
    >>> manifests = prepare_librispeech("/data/LibriSpeech", "data/")
    >>> manifests["dev-clean"]
    PosixPath('data/librispeech_dev-clean.jsonl')
    >>> PREPARERS["ljspeech"]("/data/LJSpeech-1.1", "data/")["train"]
    PosixPath('data/ljspeech_train.jsonl')
"""

from __future__ import annotations

import csv
import random
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from speechseq.audio import audio_duration
from speechseq.data.manifest import Utterance, manifest_from_folder, write_manifest
from speechseq.errors import SpeechseqError
from speechseq.text import normalize_text

__all__ = [
    "PREPARERS",
    "prepare_commonvoice",
    "prepare_folder",
    "prepare_librispeech",
    "prepare_ljspeech",
]

# The subsets of openslr.org/12, in the order their manifests are listed; any other folder laid out
# the same way (speaker/chapter/*.trans.txt) is prepared too and listed after these.
LIBRISPEECH_SUBSETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
COMMONVOICE_SPLITS = ("train", "dev", "test", "validated")


@dataclass(frozen=True)
class _Entry:
    """One utterance as the corpus lists it, before it is checked."""

    audio: Path
    text: str  # raw transcript
    where: str  # file:line, for messages
    duration: float | None = None  # known without opening the audio (Common Voice)


class _Skips:
    """Counts left-out utterances by reason, keeping the first example of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, example)

    def warn(self, name: str, total: int) -> None:
        if not self.counts:
            return
        details = "; ".join(
            f"{n} {reason} (first: {self.examples[reason]})" for reason, n in self.counts.items()
        )
        skipped = sum(self.counts.values())
        warnings.warn(f"{name}: left out {skipped} of {total} utterances: {details}", stacklevel=3)


def _cached(targets: Iterable[Path], overwrite: bool) -> bool:
    return not overwrite and all(t.is_file() for t in targets)


def _check_dir(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SpeechseqError(f"{root}: no such folder")
    return root.resolve()


def _utterances(entries: Sequence[_Entry], name: str) -> list[Utterance]:
    """Normalise texts and read durations, leaving out (and counting) what cannot be used."""
    skips = _Skips()
    utterances = []
    for entry in tqdm(entries, desc=name, unit="utt", disable=None, leave=False):
        text = normalize_text(entry.text)
        if not text:
            skips.add("with empty text after normalisation", entry.where)
            continue
        if not entry.audio.is_file():
            skips.add("with no audio file", str(entry.audio))
            continue
        duration = entry.duration
        if duration is None:
            try:
                duration = audio_duration(entry.audio)
            except SpeechseqError as err:
                skips.add("with unreadable audio", str(err))
                continue
        if duration <= 0:
            skips.add("with no audio samples", str(entry.audio))
            continue
        utterances.append(Utterance(audio=str(entry.audio), text=text, duration=duration))
    skips.warn(name, len(entries))
    if entries and not utterances:
        warnings.warn(f"{name}: no usable utterances; its manifest is empty", stacklevel=2)
    return utterances


# --- LibriSpeech --------------------------------------------------------------------------------


def _librispeech_subsets(root: Path) -> dict[str, Path]:
    base = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    found = {
        d.name: d
        for d in sorted(base.iterdir())
        if d.is_dir() and next(d.glob("*/*/*.trans.txt"), None) is not None
    }
    known = [s for s in LIBRISPEECH_SUBSETS if s in found]
    return {s: found[s] for s in known + [s for s in found if s not in LIBRISPEECH_SUBSETS]}


def _librispeech_entries(subset_dir: Path) -> list[_Entry]:
    entries = []
    for transcript in sorted(subset_dir.glob("*/*/*.trans.txt")):
        lines = transcript.read_text(encoding="utf-8").splitlines()
        for lineno, line in enumerate(lines, 1):
            utt_id, _, text = line.strip().partition(" ")
            if utt_id:
                audio = transcript.parent / f"{utt_id}.flac"
                entries.append(_Entry(audio, text, f"{transcript}:{lineno}"))
    return entries


def prepare_librispeech(
    root: str | Path, out_dir: str | Path, *, overwrite: bool = False
) -> dict[str, Path]:
    """LibriSpeech (openslr.org/12): one manifest per subset found, ``librispeech_<subset>.jsonl``.

    Args:
        root: the folder holding ``LibriSpeech/``, or ``LibriSpeech/`` itself, as unpacked from
            the openslr tarballs: ``LibriSpeech/<subset>/<speaker>/<chapter>/`` holds
            ``<speaker>-<chapter>-<utt>.flac`` files and ``<speaker>-<chapter>.trans.txt`` with
            ``UTTID TRANSCRIPT`` lines. Every subset present is prepared (train-clean-100, …,
            test-other, and any other folder laid out the same way).
        out_dir: where the manifests go.
        overwrite: rebuild manifests that already exist.

    Returns:
        subset name → manifest path, e.g. ``{"dev-clean": out_dir/"librispeech_dev-clean.jsonl"}``.

    Raises:
        SpeechseqError: ``root`` holds no LibriSpeech subset.
    """
    root, out_dir = _check_dir(root), Path(out_dir)
    subsets = _librispeech_subsets(root)
    if not subsets:
        raise SpeechseqError(
            f"{root}: does not look like LibriSpeech: expected LibriSpeech/<subset>/<speaker>/"
            "<chapter>/<speaker>-<chapter>.trans.txt beside the .flac files (e.g. LibriSpeech/"
            "dev-clean/84/121123/84-121123.trans.txt), as unpacked from openslr.org/12"
        )
    manifests = {}
    for subset, subset_dir in subsets.items():
        target = out_dir / f"librispeech_{subset}.jsonl"
        if not _cached([target], overwrite):
            utterances = _utterances(_librispeech_entries(subset_dir), f"librispeech {subset}")
            write_manifest(utterances, target)
        manifests[subset] = target
    return manifests


# --- LJSpeech -----------------------------------------------------------------------------------


def _ljspeech_dir(root: Path) -> Path:
    for folder in (root, root / "LJSpeech-1.1"):
        if (folder / "metadata.csv").is_file() and (folder / "wavs").is_dir():
            return folder
    raise SpeechseqError(
        f"{root}: does not look like LJSpeech-1.1: expected metadata.csv (lines "
        "'LJ001-0001|raw text|normalized text') and a wavs/ folder of LJ001-0001.wav files in it "
        "(or in its LJSpeech-1.1/), as unpacked from keithito.com/LJ-Speech-Dataset"
    )


def _ljspeech_entries(folder: Path) -> tuple[list[_Entry], _Skips]:
    """The utterances listed in metadata.csv (``entry.audio.stem`` is the id), and the malformed
    lines.

    The file is split on '|' by hand: its quotes are literal characters, not CSV quoting.
    """
    metadata = folder / "metadata.csv"
    entries, malformed = [], _Skips()
    for lineno, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        utt_id = fields[0].strip()
        if len(fields) < 2 or not utt_id:
            malformed.add("malformed lines", f"{metadata}:{lineno}")
            continue
        # The normalised column (numbers, abbreviations spelt out); the raw one if it is blank.
        text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
        entries.append(_Entry(folder / "wavs" / f"{utt_id}.wav", text, f"{metadata}:{lineno}"))
    return entries, malformed


def prepare_ljspeech(
    root: str | Path,
    out_dir: str | Path,
    *,
    dev_size: int = 100,
    test_size: int = 500,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Path]:
    """LJSpeech-1.1 (single speaker, 22.05 kHz): ``ljspeech_{all,train,dev,test}.jsonl``.

    The split is fixed by ``seed``: the ids listed in metadata.csv are sorted and shuffled with
    ``random.Random(seed)``; the first ``test_size`` are test, the next ``dev_size`` dev and the
    rest train. It is drawn before unusable utterances are left out, so a missing wav does not move
    any other utterance to another split. Each manifest keeps metadata.csv's order. A split
    computed with other sizes is not noticed by the cache: pass ``overwrite=True``.

    Args:
        root: ``LJSpeech-1.1/`` (or the folder holding it): ``metadata.csv`` with
            ``LJ001-0001|raw text|normalized text`` lines and ``wavs/LJ001-0001.wav``.
        out_dir: where the manifests go.
        dev_size: utterances in the dev split.
        test_size: utterances in the test split.
        seed: seeds the split.
        overwrite: rebuild the manifests even if they all exist.

    Returns:
        ``{"all": …, "train": …, "dev": …, "test": …}`` manifest paths.

    Raises:
        SpeechseqError: ``root`` is not LJSpeech, or it lists too few utterances for the split.
    """
    root, out_dir = _check_dir(root), Path(out_dir)
    folder = _ljspeech_dir(root)
    targets = {part: out_dir / f"ljspeech_{part}.jsonl" for part in ("all", "train", "dev", "test")}
    if _cached(targets.values(), overwrite):
        return targets
    entries, malformed = _ljspeech_entries(folder)
    malformed.warn("ljspeech", len(entries) + sum(malformed.counts.values()))
    ids = {entry.audio.stem for entry in entries}
    split_of = _split(ids, dev_size, test_size, seed, f"{folder / 'metadata.csv'}: lists")

    utterances = _utterances(entries, "ljspeech")
    by_audio = {u.audio: u for u in utterances}
    parts: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    for entry in entries:
        if str(entry.audio) in by_audio:
            parts[split_of.get(entry.audio.stem, "train")].append(by_audio.pop(str(entry.audio)))
    for part, utts in parts.items():
        write_manifest(utts, targets[part])
    write_manifest(utterances, targets["all"])
    return targets


def _split(ids: set[str], dev_size: int, test_size: int, seed: int, where: str) -> dict[str, str]:
    """id → "test" or "dev" for a seeded random ``test_size`` and ``dev_size`` of ``ids`` (the
    rest train): sorted, then shuffled with ``random.Random(seed)``.

    Raises:
        SpeechseqError: too few ids to leave a training split.
    """
    if min(dev_size, test_size) < 0:
        raise SpeechseqError(f"split sizes must be 0 or more, got {dev_size} and {test_size}")
    order = sorted(ids)
    if len(order) <= dev_size + test_size:
        raise SpeechseqError(
            f"{where} {len(order)} utterances, too few for dev_size={dev_size} + "
            f"test_size={test_size} and a training split"
        )
    random.Random(seed).shuffle(order)
    split_of = dict.fromkeys(order[:test_size], "test")
    split_of.update(dict.fromkeys(order[test_size : test_size + dev_size], "dev"))
    return split_of


# --- Common Voice -------------------------------------------------------------------------------


def _commonvoice_durations(root: Path) -> dict[str, float]:
    """Clip name → seconds from ``clip_durations.tsv`` (newer releases), or {} without it."""
    path = root / "clip_durations.tsv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not {"clip", "duration[ms]"} <= set(reader.fieldnames or ()):
            warnings.warn(
                f"{path}: expected columns 'clip' and 'duration[ms]'; reading durations from the "
                "audio instead",
                stacklevel=3,
            )
            return {}
        durations = {}
        for row in reader:
            try:
                durations[row["clip"]] = float(row["duration[ms]"]) / 1000
            except (TypeError, ValueError):
                continue  # that clip's duration is read from its audio instead
    return durations


def _commonvoice_entries(
    tsv: Path, clips: Path, durations: dict[str, float]
) -> tuple[list[_Entry], _Skips]:
    entries, malformed = [], _Skips()
    # QUOTE_NONE: sentences hold literal quotes, never CSV quoting.
    with tsv.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"path", "sentence"} - set(reader.fieldnames or ())
        if missing:
            raise SpeechseqError(
                f"{tsv}: header has no column {' or '.join(sorted(missing))}; expected a Common "
                f"Voice TSV with columns client_id, path, sentence, … (found {reader.fieldnames})"
            )
        for row in reader:
            where = f"{tsv}:{reader.line_num}"
            name, sentence = row["path"], row["sentence"]
            if not name or sentence is None:
                malformed.add("malformed lines", where)
                continue
            audio = clips / name
            if not audio.suffix and not audio.exists():
                audio = audio.with_name(name + ".mp3")  # early releases left the suffix out
            entries.append(_Entry(audio, sentence, where, durations.get(audio.name)))
    return entries, malformed


def prepare_commonvoice(
    root: str | Path,
    out_dir: str | Path,
    *,
    splits: Sequence[str] = COMMONVOICE_SPLITS,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Mozilla Common Voice, one language: ``commonvoice_<split>.jsonl`` per split TSV present.

    Durations come from ``clip_durations.tsv`` when the release ships it (no clip is opened
    then), otherwise from each clip's header, which needs a libsndfile that reads mp3 (1.1+).
    :func:`~speechseq.text.normalize_text` keeps only a–z, so languages in other scripts are left
    with empty texts.

    Args:
        root: a language folder as unpacked, e.g. ``cv-corpus-17.0-2024-03-15/en/``, holding
            ``clips/*.mp3`` and tab-separated ``train.tsv``, ``dev.tsv``, ``test.tsv``,
            ``validated.tsv``, … whose header row names the columns ``client_id``, ``path``
            (the clip's file name) and ``sentence``.
        out_dir: where the manifests go.
        splits: which TSVs to prepare, where present.
        overwrite: rebuild manifests that already exist.

    Returns:
        split → manifest path, e.g. ``{"train": out_dir/"commonvoice_train.jsonl", …}``.

    Raises:
        SpeechseqError: ``root`` has no ``clips/`` or none of the split TSVs, or a TSV lacks the
            ``path`` or ``sentence`` column.
    """
    root, out_dir = _check_dir(root), Path(out_dir)
    clips = root / "clips"
    present = [s for s in splits if (root / f"{s}.tsv").is_file()]
    if not clips.is_dir() or not present:
        raise SpeechseqError(
            f"{root}: does not look like a Common Voice language folder: expected clips/ (the "
            f"mp3 files) and {', '.join(f'{s}.tsv' for s in splits)} in it, e.g. "
            "cv-corpus-17.0-2024-03-15/en/"
        )
    targets = {split: out_dir / f"commonvoice_{split}.jsonl" for split in present}
    todo = [s for s in present if not _cached([targets[s]], overwrite)]
    durations = _commonvoice_durations(root) if todo else {}
    for split in todo:
        entries, malformed = _commonvoice_entries(root / f"{split}.tsv", clips, durations)
        malformed.warn(f"commonvoice {split}", len(entries) + sum(malformed.counts.values()))
        write_manifest(_utterances(entries, f"commonvoice {split}"), targets[split])
    return targets


# --- A folder of audio with same-stem .txt transcripts ------------------------------------------


def prepare_folder(
    root: str | Path,
    out_dir: str | Path,
    *,
    dev_size: int = 0,
    test_size: int = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Any folder of audio files with same-stem ``.txt`` transcripts: ``folder.jsonl``, and with
    ``dev_size`` or ``test_size``, ``folder_{train,dev,test}.jsonl`` too.

    Wraps :func:`~speechseq.data.manifest.manifest_from_folder` (recursive; audio without a
    transcript is ignored; unreadable audio and transcripts that normalise to nothing are left
    out with a warning each). The split is by utterance, seeded as LJSpeech's: a speaker's
    utterances may land in several splits.

    Args:
        root: the folder.
        out_dir: where the manifests go.
        dev_size, test_size: utterances in the dev and test splits (0 and 0: no split).
        seed: seeds the split.
        overwrite: rebuild the manifests if they exist.

    Returns:
        ``{"all": out_dir/"folder.jsonl"}``, plus ``"train"``, ``"dev"`` and ``"test"`` when
        split.

    Raises:
        SpeechseqError: ``root`` is missing or holds no readable transcribed audio, or too few
            utterances for the split.
    """
    root, out_dir = _check_dir(root), Path(out_dir)
    parts = ("all", "train", "dev", "test") if dev_size or test_size else ("all",)
    targets = {
        part: out_dir / ("folder.jsonl" if part == "all" else f"folder_{part}.jsonl")
        for part in parts
    }
    if _cached(targets.values(), overwrite):
        return targets
    utterances = manifest_from_folder(root)
    write_manifest(utterances, targets["all"])
    if len(parts) > 1:
        split_of = _split(
            {u.audio for u in utterances}, dev_size, test_size, seed, f"{root}: holds"
        )
        for part in ("train", "dev", "test"):
            chosen = [u for u in utterances if split_of.get(u.audio, "train") == part]
            write_manifest(chosen, targets[part])
    return targets


PREPARERS: dict[str, Callable[..., dict[str, Path]]] = {
    "librispeech": prepare_librispeech,
    "ljspeech": prepare_ljspeech,
    "commonvoice": prepare_commonvoice,
    "folder": prepare_folder,
}
"""Dataset name → preparer; each is called as ``prepare(root, out_dir, overwrite=False)``."""
