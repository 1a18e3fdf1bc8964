"""Tests for speechseq.data.preparers, on tiny corpora laid out exactly like the real downloads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechseq.data import preparers as preparers_module
from speechseq.data import read_manifest
from speechseq.data.preparers import (
    PREPARERS,
    prepare_commonvoice,
    prepare_folder,
    prepare_librispeech,
    prepare_ljspeech,
)
from speechseq.errors import SpeechseqError

OLD_NS = 1_000_000_000_000_000_000  # an mtime (2001) no write in this test can produce


def _write_tone(path: Path, frames: int, rate: int, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(frames) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), rate, format=fmt)
    return path


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _age(*paths: Path) -> None:
    for path in paths:
        os.utime(path, ns=(OLD_NS, OLD_NS))


def _check_durations(manifest: Path, truth: dict[str, float]) -> None:
    """Every utterance's duration is within 1 ms of the truth (keyed by file name)."""
    utts = read_manifest(manifest)
    assert utts
    for utt in utts:
        assert Path(utt.audio).is_file()
        assert utt.duration == pytest.approx(truth[Path(utt.audio).name], abs=1e-3)


# --- LibriSpeech --------------------------------------------------------------------------------

LIBRI_RATE = 16000
# subset → speaker → chapter → transcripts (as in the .trans.txt files: upper case)
LIBRI = {
    "train-clean-100": {
        "103": {"1240": ["CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED", "IT'S A FINE DAY"]},
        "1034": {"121119": ["THE BOY'S DOG RAN HOME", "AND THEN HE SLEPT"]},
    },
    "dev-clean": {"84": {"121123": ["GO DO YOU HEAR", "BUT IN LESS THAN FIVE MINUTES"]}},
    "test-clean": {"1089": {"134686": ["HE HOPED THERE WOULD BE STEW FOR DINNER"]}},
    "dev-clean-2": {"1272": {"135031": ["A SUBSET MINI LIBRISPEECH SHIPS"]}},  # not in the list
}


@pytest.fixture
def librispeech(tmp_path) -> tuple[Path, dict[str, float]]:
    """``tmp/LibriSpeech/<subset>/<speaker>/<chapter>/`` with 16 kHz FLAC and .trans.txt files;
    returns the folder holding LibriSpeech/ and the true durations by file name."""
    base = tmp_path / "LibriSpeech"
    base.mkdir()
    for name in ("BOOKS.TXT", "CHAPTERS.TXT", "LICENSE.TXT", "README.TXT", "SPEAKERS.TXT"):
        (base / name).write_text(";; not a transcript\n")
    (base / "notes").mkdir()  # a folder that is not a subset is ignored
    durations = {}
    for subset, speakers in LIBRI.items():
        for speaker, chapters in speakers.items():
            for chapter, texts in chapters.items():
                folder = base / subset / speaker / chapter
                lines = []
                for i, text in enumerate(texts):
                    utt_id = f"{speaker}-{chapter}-{i:04d}"
                    frames = 8000 + 1234 * len(durations)
                    _write_tone(folder / f"{utt_id}.flac", frames, LIBRI_RATE)
                    durations[f"{utt_id}.flac"] = frames / LIBRI_RATE
                    lines.append(f"{utt_id} {text}\n")
                (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return tmp_path, durations


@pytest.mark.parametrize("inside", [False, True], ids=["root-holds-LibriSpeech", "LibriSpeech"])
def test_librispeech_one_manifest_per_subset(librispeech, tmp_path, inside):
    root, durations = librispeech
    out_dir = tmp_path / "manifests"

    manifests = prepare_librispeech(root / "LibriSpeech" if inside else root, out_dir)

    # the known subsets in openslr's order, then the others
    assert list(manifests) == ["train-clean-100", "dev-clean", "test-clean", "dev-clean-2"]
    for subset, path in manifests.items():
        assert path == out_dir / f"librispeech_{subset}.jsonl"
    train = read_manifest(manifests["train-clean-100"])
    assert [u.text for u in train] == [
        "chapter one missus rachel lynde is surprised",
        "it's a fine day",
        "the boy's dog ran home",
        "and then he slept",
    ]
    assert [Path(u.audio).name for u in train][:2] == ["103-1240-0000.flac", "103-1240-0001.flac"]
    assert len(read_manifest(manifests["dev-clean"])) == 2
    assert len(read_manifest(manifests["test-clean"])) == 1
    for path in manifests.values():
        _check_durations(path, durations)


def test_librispeech_audio_paths_relative_to_manifest_and_resolving(librispeech, monkeypatch):
    root, _ = librispeech
    manifests = prepare_librispeech(root, root)  # manifests beside LibriSpeech/
    monkeypatch.chdir("/")

    (first, *_) = _records(manifests["dev-clean"])
    assert first["audio"] == str(Path("LibriSpeech/dev-clean/84/121123/84-121123-0000.flac"))
    assert all(Path(u.audio).is_file() for u in read_manifest(manifests["dev-clean"]))


def test_librispeech_skips_missing_audio_and_empty_text(librispeech):
    root, _ = librispeech
    chapter = root / "LibriSpeech" / "dev-clean" / "84" / "121123"
    (chapter / "84-121123-0000.flac").unlink()
    with (chapter / "84-121123.trans.txt").open("a") as f:
        f.write("84-121123-0002 ...\n")  # nothing speakable; its audio is absent too

    with pytest.warns(UserWarning, match=r"dev-clean: left out 2 of 3") as record:
        manifests = prepare_librispeech(root, root / "out")

    message = str(record[0].message)
    assert "1 with no audio file" in message and "84-121123-0000.flac" in message
    assert "1 with empty text" in message
    assert [u.text for u in read_manifest(manifests["dev-clean"])] == [
        "but in less than five minutes"
    ]


def test_librispeech_cached_until_overwrite(librispeech, tmp_path):
    root, _ = librispeech
    out_dir = tmp_path / "out"
    manifests = prepare_librispeech(root, out_dir)
    _age(*manifests.values())
    manifests["test-clean"].unlink()  # as after a run killed before its last subset

    again = prepare_librispeech(root, out_dir)

    assert again == manifests
    assert manifests["test-clean"].stat().st_mtime_ns != OLD_NS  # only the missing one redone
    assert len(read_manifest(manifests["test-clean"])) == 1
    assert {p.stat().st_mtime_ns for s, p in again.items() if s != "test-clean"} == {OLD_NS}

    prepare_librispeech(root, out_dir, overwrite=True)
    assert all(p.stat().st_mtime_ns != OLD_NS for p in manifests.values())


def test_librispeech_bad_root(tmp_path):
    with pytest.raises(SpeechseqError, match="no such folder"):
        prepare_librispeech(tmp_path / "absent", tmp_path / "out")
    (tmp_path / "LibriSpeech" / "dev-clean").mkdir(parents=True)  # unpacked nothing
    with pytest.raises(SpeechseqError, match=r"does not look like LibriSpeech.*trans\.txt"):
        prepare_librispeech(tmp_path, tmp_path / "out")


# --- LJSpeech -----------------------------------------------------------------------------------

LJ_RATE = 22050
LJ_LINES = [
    # id | raw text | normalized text (the column used)
    "LJ001-0001|Printing, in the only sense with which we are at present concerned,|"
    "Printing, in the only sense with which we are at present concerned,",
    'LJ001-0002|"in being comparatively modern.|"in being comparatively modern.',
    "LJ001-0003|Dr. Smith paid $5 in 1869|Doctor Smith paid five dollars in eighteen sixty-nine",
    'LJ001-0004|He said "hello" and left.|He said "hello" and left.',
    "LJ002-0001|The second chapter|The second chapter",
    "LJ002-0002|Of the prisons|Of the prisons",
    "LJ002-0003|And the gaols|And the gaols",
    "LJ002-0004|In the old days|In the old days",
    "LJ003-0001|A third chapter|A third chapter",
    "LJ003-0002|With more words|With more words",
    "LJ003-0003|And some more|And some more",
    "LJ003-0004|The end|The end",
]


@pytest.fixture
def ljspeech(tmp_path) -> tuple[Path, dict[str, float]]:
    """``tmp/LJSpeech-1.1/`` with metadata.csv and wavs/ at 22.05 kHz; returns it and the true
    durations by file name."""
    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    (root / "README").write_text("LJ Speech Dataset\n")
    (root / "metadata.csv").write_text("\n".join(LJ_LINES) + "\n", encoding="utf-8")
    durations = {}
    for i, line in enumerate(LJ_LINES):
        utt_id = line.split("|")[0]
        frames = 11025 + 777 * i
        _write_tone(root / "wavs" / f"{utt_id}.wav", frames, LJ_RATE)
        durations[f"{utt_id}.wav"] = frames / LJ_RATE
    return root, durations


def _splits(manifests: dict[str, Path]) -> dict[str, list[str]]:
    return {part: [Path(u.audio).stem for u in read_manifest(p)] for part, p in manifests.items()}


def test_ljspeech_all_and_a_seeded_split(ljspeech, tmp_path):
    root, durations = ljspeech
    out_dir = tmp_path / "out"

    manifests = prepare_ljspeech(root, out_dir, dev_size=2, test_size=3)

    assert list(manifests) == ["all", "train", "dev", "test"]
    assert all(path == out_dir / f"ljspeech_{part}.jsonl" for part, path in manifests.items())
    texts = {Path(u.audio).stem: u.text for u in read_manifest(manifests["all"])}
    assert texts["LJ001-0002"] == "in being comparatively modern"  # a literal, unclosed quote
    assert texts["LJ001-0003"] == "doctor smith paid five dollars in eighteen sixty nine"
    assert texts["LJ001-0004"] == "he said hello and left"
    splits = _splits(manifests)
    assert splits["all"] == [line.split("|")[0] for line in LJ_LINES]  # metadata.csv's order
    assert (len(splits["train"]), len(splits["dev"]), len(splits["test"])) == (7, 2, 3)
    assert sorted(splits["train"] + splits["dev"] + splits["test"]) == splits["all"]
    _check_durations(manifests["all"], durations)

    # the same split on another machine / run, and a missing wav moves no other utterance
    (root / "wavs" / splits["dev"][0]).with_suffix(".wav").unlink()
    with pytest.warns(UserWarning, match="1 with no audio file"):
        again = _splits(prepare_ljspeech(root, out_dir, dev_size=2, test_size=3, overwrite=True))
    assert again["dev"] == splits["dev"][1:]
    assert (again["train"], again["test"]) == (splits["train"], splits["test"])


def test_ljspeech_accepts_parent_folder_and_is_cached(ljspeech, tmp_path):
    root, _ = ljspeech
    manifests = prepare_ljspeech(root.parent, tmp_path / "out", dev_size=2, test_size=3)
    _age(*manifests.values())

    assert prepare_ljspeech(root, tmp_path / "out", dev_size=2, test_size=3) == manifests
    assert {p.stat().st_mtime_ns for p in manifests.values()} == {OLD_NS}


def test_ljspeech_bad_root_and_too_small_for_the_split(ljspeech, tmp_path):
    root, _ = ljspeech
    with pytest.raises(SpeechseqError, match="too few"):
        prepare_ljspeech(root, tmp_path / "out")  # 12 utterances, default 100 dev + 500 test
    (root / "metadata.csv").unlink()
    with pytest.raises(SpeechseqError, match=r"does not look like LJSpeech.*metadata\.csv"):
        prepare_ljspeech(root, tmp_path / "out", dev_size=2, test_size=3)


# --- Common Voice -------------------------------------------------------------------------------

CV_RATE = 48000
CV_HEADER = (
    "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender"
    "\taccents\tvariant\tlocale\tsegment"
)
CV_SPLITS = {
    "train": ['He said "hello" to me.', '"Unbalanced quote at the start', "It costs 3 dollars."],
    "dev": ["Where's the station?", "—"],  # the second normalises to nothing
    "test": ["The last one.", "A broken clip."],
}


@pytest.fixture
def commonvoice(tmp_path) -> tuple[Path, dict[str, float]]:
    """``cv-corpus-17.0-2024-03-15/en/`` with clips/*.mp3 at 48 kHz and the split TSVs (no
    clip_durations.tsv); the last test clip is not audio. Returns it and the true durations."""
    root = tmp_path / "cv-corpus-17.0-2024-03-15" / "en"
    (root / "clips").mkdir(parents=True)
    durations, rows = {}, {}
    for split, sentences in CV_SPLITS.items():
        rows[split] = []
        for sentence in sentences:
            n = len(durations)
            clip = f"common_voice_en_{40000 + n}.mp3"
            frames = int(CV_RATE * (0.6 + 0.15 * n))
            _write_tone(root / "clips" / clip, frames, CV_RATE, fmt="MP3")
            durations[clip] = frames / CV_RATE
            fields = [f"client{n:03d}", clip, f"sid{n}", sentence, "", "2", "0", "", "", "", ""]
            rows[split].append("\t".join([*fields, "en", ""]))
    # a failed download: an error page saved under the clip's name
    (root / "clips" / rows["test"][-1].split("\t")[1]).write_text("<html>503</html>\n")
    rows["validated"] = rows["train"] + rows["dev"] + rows["test"]
    rows["other"] = rows["train"][:1]
    for name, lines in rows.items():
        (root / f"{name}.tsv").write_text("\n".join([CV_HEADER, *lines]) + "\n", encoding="utf-8")
    (root / "reported.tsv").write_text("sentence_id\tsentence\tlocale\treason\n")
    return root, durations


def test_commonvoice_one_manifest_per_split_reading_mp3_headers(commonvoice, tmp_path):
    root, durations = commonvoice
    out_dir = tmp_path / "out"

    with pytest.warns(UserWarning) as record:
        manifests = prepare_commonvoice(root, out_dir)

    assert list(manifests) == ["train", "dev", "test", "validated"]  # not other.tsv
    assert all(path == out_dir / f"commonvoice_{split}.jsonl" for split, path in manifests.items())
    assert [u.text for u in read_manifest(manifests["train"])] == [
        "he said hello to me",
        "unbalanced quote at the start",
        "it costs three dollars",
    ]
    assert [u.text for u in read_manifest(manifests["dev"])] == ["where's the station"]
    assert [u.text for u in read_manifest(manifests["test"])] == ["the last one"]
    assert len(read_manifest(manifests["validated"])) == 5
    for path in manifests.values():
        _check_durations(path, durations)
    messages = "\n".join(str(w.message) for w in record)
    assert "commonvoice test: left out 1 of 2 utterances: 1 with unreadable audio" in messages
    assert "common_voice_en_40006.mp3" in messages
    assert "commonvoice dev: left out 1 of 2 utterances: 1 with empty text" in messages


def test_commonvoice_uses_clip_durations_tsv_without_opening_clips(
    commonvoice, tmp_path, monkeypatch
):
    root, durations = commonvoice
    lines = [f"{clip}\t{round(seconds * 1000)}" for clip, seconds in durations.items()]
    (root / "clip_durations.tsv").write_text("\n".join(["clip\tduration[ms]", *lines]) + "\n")

    def no_opening(path):
        raise AssertionError(f"opened {path}")

    monkeypatch.setattr(preparers_module, "audio_duration", no_opening)
    with pytest.warns(UserWarning, match="empty text"):
        manifests = prepare_commonvoice(root, tmp_path / "out", splits=["train", "dev"])

    assert list(manifests) == ["train", "dev"]
    _check_durations(manifests["train"], durations)
    _age(*manifests.values())
    assert prepare_commonvoice(root, tmp_path / "out", splits=["train", "dev"]) == manifests
    assert {p.stat().st_mtime_ns for p in manifests.values()} == {OLD_NS}


def test_commonvoice_bad_root(tmp_path):
    (tmp_path / "clips").mkdir()
    with pytest.raises(SpeechseqError, match=r"Common Voice.*clips/.*train\.tsv"):
        prepare_commonvoice(tmp_path, tmp_path / "out")
    (tmp_path / "train.tsv").write_text("file\ttext\nx.mp3\thello\n")
    with pytest.raises(SpeechseqError, match="no column path or sentence"):
        prepare_commonvoice(tmp_path, tmp_path / "out")


# --- Folder and registry ------------------------------------------------------------------------


def test_folder_wraps_manifest_from_folder(tmp_path):
    corpus = tmp_path / "corpus"
    _write_tone(corpus / "a.wav", 16000, 16000)
    (corpus / "a.txt").write_text("Hello 2 you\n")
    _write_tone(corpus / "sub" / "b.flac", 8000, 16000)
    (corpus / "sub" / "b.txt").write_text("World\n")
    _write_tone(corpus / "c.wav", 8000, 16000)
    (corpus / "c.txt").write_text("?!\n")  # nothing speakable
    _write_tone(corpus / "d.wav", 8000, 16000)  # no transcript: ignored

    with pytest.warns(UserWarning, match="c.txt: no speakable text"):
        manifests = prepare_folder(corpus, corpus)

    assert manifests == {"all": corpus / "folder.jsonl"}
    records = _records(manifests["all"])
    assert [(r["audio"], r["text"]) for r in records] == [
        ("a.wav", "hello two you"),
        (str(Path("sub/b.flac")), "world"),
    ]
    _check_durations(manifests["all"], {"a.wav": 1.0, "b.flac": 0.5})
    _age(manifests["all"])
    assert prepare_folder(corpus, corpus) == manifests
    assert manifests["all"].stat().st_mtime_ns == OLD_NS
    with pytest.raises(SpeechseqError, match="no such folder"):
        prepare_folder(tmp_path / "absent", tmp_path)


def test_registry_names_every_preparer():
    assert PREPARERS == {
        "librispeech": prepare_librispeech,
        "ljspeech": prepare_ljspeech,
        "commonvoice": prepare_commonvoice,
        "folder": prepare_folder,
    }
