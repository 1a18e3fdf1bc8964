"""Tests for speechseq.data.manifest: JSONL manifests and building them from a folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechseq.data import Utterance, manifest_from_folder, read_manifest, write_manifest
from speechseq.errors import SpeechseqError


def _write_tone(path: Path, seconds: float, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- write / read -------------------------------------------------------------------------------


def test_write_read_round_trip_with_paths_relative_to_manifest(tmp_path):
    corpus = tmp_path / "corpus"
    utts = [
        Utterance(str(corpus / "a.wav"), "hello world", 1.25),
        Utterance(str(corpus / "sub" / "b.flac"), "caf\u00e9 na\u00efve", 0.5),
    ]

    returned = write_manifest(utts, corpus / "train.jsonl")  # creates the missing folder

    assert returned == corpus / "train.jsonl"
    records = _lines(returned)
    assert [r["audio"] for r in records] == ["a.wav", str(Path("sub") / "b.flac")]
    assert records[1]["text"] == "caf\u00e9 na\u00efve"  # written as UTF-8, not \u escapes
    assert "caf\u00e9" in returned.read_text(encoding="utf-8")
    assert read_manifest(returned) == utts


def test_read_resolves_relative_audio_against_manifest_folder_not_cwd(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "list.jsonl").write_text(
        json.dumps({"audio": "clips/x.wav", "text": "x", "duration": 2}) + "\n"
    )
    monkeypatch.chdir(tmp_path)

    (utt,) = read_manifest(folder / "list.jsonl")

    assert utt.audio == str(folder / "clips" / "x.wav")
    assert utt.duration == 2.0
    assert isinstance(utt.duration, float)


def test_audio_outside_manifest_folder_is_written_absolute(tmp_path):
    outside = tmp_path / "elsewhere" / "c.wav"
    utts = [Utterance(str(outside), "c", 1.0)]

    path = write_manifest(utts, tmp_path / "lists" / "dev.jsonl")

    assert _lines(path)[0]["audio"] == str(outside)
    assert read_manifest(path) == utts


def test_manifest_moves_with_its_audio(tmp_path):
    first = tmp_path / "first"
    write_manifest([Utterance(str(first / "a.wav"), "a", 1.0)], first / "m.jsonl")
    moved = tmp_path / "moved"
    first.rename(moved)

    assert read_manifest(moved / "m.jsonl")[0].audio == str(moved / "a.wav")


def test_write_rounds_duration_and_leaves_no_temp_file(tmp_path):
    path = write_manifest(
        [Utterance(str(tmp_path / "a.wav"), "a", 1.234567891)], tmp_path / "m.jsonl"
    )

    assert _lines(path)[0]["duration"] == 1.2346
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_write_replaces_existing_manifest(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest([Utterance(str(tmp_path / f"{i}.wav"), "x", 1.0) for i in range(3)], path)
    write_manifest([Utterance(str(tmp_path / "only.wav"), "y", 1.0)], path)

    assert [u.text for u in read_manifest(path)] == ["y"]


def test_read_skips_blank_lines_and_defaults_missing_text(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '\n{"audio": "a.wav", "duration": 1.5}\n   \n{"audio": "b.wav", "text": 7, "duration": 1}\n'
    )

    utts = read_manifest(path)

    assert [u.text for u in utts] == ["", "7"]
    assert [u.duration for u in utts] == [1.5, 1.0]


def test_write_empty_manifest_reads_back_empty(tmp_path):
    path = write_manifest([], tmp_path / "empty.jsonl")
    assert path.read_text() == ""
    assert read_manifest(path) == []


def test_read_missing_manifest_raises(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(SpeechseqError, match="no such manifest") as info:
        read_manifest(path)
    assert str(path) in str(info.value)


def test_read_folder_as_manifest_raises(tmp_path):
    with pytest.raises(SpeechseqError, match="not a Kaldi data directory"):
        read_manifest(tmp_path)


GOOD = json.dumps({"audio": "a.wav", "text": "ok", "duration": 1.0})


@pytest.mark.parametrize(
    "bad",
    [
        "not json at all",
        '{"audio": "a.wav", "text": "x"',  # cut short
        '{"audio": "a.wav", "text": "x"}',  # no duration
        '{"text": "x", "duration": 1}',  # no audio
        '{"audio": "a.wav", "duration": "long"}',
        '{"audio": "a.wav", "duration": null}',
        '{"audio": null, "duration": 1}',
        "[1, 2]",
        '"just a string"',
    ],
)
def test_bad_line_raises_with_file_and_line_number(tmp_path, bad):
    path = tmp_path / "m.jsonl"
    path.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n")  # the bad record is on line 3

    with pytest.raises(SpeechseqError) as info:
        read_manifest(path)

    message = str(info.value)
    assert message.startswith(f"{path}:3:")
    assert "not a manifest record" in message


# --- manifest_from_folder -----------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    _write_tone(root / "a.wav", 0.5)
    (root / "a.txt").write_text("Hello, World 2!\n")
    _write_tone(root / "sub" / "b.flac", 1.0, rate=8000)
    (root / "sub" / "b.txt").write_text("second one")
    _write_tone(root / "sub" / "deeper" / "c.WAV", 0.25)
    (root / "sub" / "deeper" / "c.txt").write_text("  THIRD  ")
    _write_tone(root / "untranscribed.wav", 0.3)  # no .txt: skipped
    (root / "notes.txt").write_text("a transcript without audio is ignored")
    (root / "readme.md").write_text("not audio")
    return root


def test_manifest_from_folder_is_recursive_and_skips_untranscribed(corpus):
    utts = manifest_from_folder(corpus)

    assert [Path(u.audio).relative_to(corpus.resolve()).as_posix() for u in utts] == [
        "a.wav",
        "sub/b.flac",
        "sub/deeper/c.WAV",
    ]
    assert all(Path(u.audio).is_absolute() for u in utts)
    assert [u.text for u in utts] == ["hello world two", "second one", "third"]
    assert [u.duration for u in utts] == pytest.approx([0.5, 1.0, 0.25])


def test_manifest_from_folder_can_keep_raw_text(corpus):
    utts = manifest_from_folder(corpus, normalize=False)
    assert [u.text for u in utts] == ["Hello, World 2!", "second one", "THIRD"]


def test_manifest_from_folder_written_and_read_back(corpus):
    utts = manifest_from_folder(corpus)

    path = write_manifest(utts, corpus / "train.jsonl")

    assert [r["audio"] for r in _lines(path)] == ["a.wav", "sub/b.flac", "sub/deeper/c.WAV"]
    back = read_manifest(path)
    assert [u.text for u in back] == [u.text for u in utts]
    assert [Path(u.audio).resolve() for u in back] == [Path(u.audio) for u in utts]


def test_manifest_from_empty_folder_raises(tmp_path):
    with pytest.raises(SpeechseqError, match="no audio files") as info:
        manifest_from_folder(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_manifest_from_folder_with_only_untranscribed_audio_raises(tmp_path):
    _write_tone(tmp_path / "a.wav", 0.1)
    (tmp_path / "b.txt").write_text("no audio for this one")
    with pytest.raises(SpeechseqError, match="no audio files"):
        manifest_from_folder(tmp_path)


def test_manifest_from_missing_folder_raises(tmp_path):
    with pytest.raises(SpeechseqError, match="no such folder"):
        manifest_from_folder(tmp_path / "missing")


def test_manifest_from_folder_leaves_out_unreadable_audio_with_a_warning(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    (tmp_path / "bad.txt").write_text("bad")
    with pytest.raises(SpeechseqError, match="no audio files"):
        with pytest.warns(UserWarning, match="bad.wav: not readable as audio"):
            manifest_from_folder(tmp_path)
    sf.write(tmp_path / "good.wav", 0.1 * np.ones(1600, dtype="float32"), 16000)
    (tmp_path / "good.txt").write_text("Good")
    with pytest.warns(UserWarning, match="bad.wav"):
        utts = manifest_from_folder(tmp_path)
    assert [u.text for u in utts] == ["good"]


def test_utterance_with_audio_returns_new_record():
    utt = Utterance("a.wav", "text", 1.0)

    moved = utt.with_audio("b.wav")

    assert moved == Utterance("b.wav", "text", 1.0)
    assert utt.audio == "a.wav"
