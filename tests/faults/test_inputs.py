"""Faults in the audio a user gives: WAV files cut short."""

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speechseq.audio import load_audio
from speechseq.cli import app
from speechseq.errors import SpeechseqError

SAMPLE = Path(__file__).parents[2] / "data" / "samples" / "flite-rms.wav"


def _cut(folder: Path) -> tuple[Path, Path]:
    """A real WAV cut in half, and a header declaring 1e9 samples in front of 10 bytes."""
    whole = SAMPLE.read_bytes()
    half = folder / "half.wav"
    half.write_bytes(whole[: len(whole) // 2])
    header = bytearray(whole[:44])  # this file's data chunk starts at byte 36
    assert header[36:40] == b"data"
    header[40:44] = struct.pack("<I", 2 * 10**9)
    huge = folder / "huge.wav"
    huge.write_bytes(bytes(header) + b"\x01" * 10)
    return half, huge


@pytest.mark.pretrained
def test_truncated_files_are_reported_not_passed_as_whole(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    half, huge = _cut(folder)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["transcribe", str(folder), "-o", str(out), "-f", "json"])
    assert result.exit_code == 1 and "Traceback" not in result.output  # one input failed
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(errors) == 1 and str(huge) in errors[0] and "truncated" in errors[0]
    assert len(warned) == 1 and str(half) in warned[0] and "truncated" in warned[0]
    written = json.loads((out / "half.json").read_text())
    assert written["truncated"] is True and written["text"]
    report = {
        r["input"]: r for r in map(json.loads, (out / "report.jsonl").read_text().splitlines())
    }
    assert report[str(half)]["status"] == "ok" and report[str(half)]["truncated"] is True
    assert report[str(huge)]["status"] == "failed"


def test_loading_a_truncated_file_warns_or_refuses(tmp_path):
    half, huge = _cut(tmp_path)
    with pytest.warns(UserWarning, match="truncated"):
        kept = load_audio(half)
    with pytest.raises(SpeechseqError, match="truncated"):
        load_audio(huge)
    whole = load_audio(SAMPLE)  # and a whole file reads without a word
    assert 0 < len(kept) and len(whole) >= 2 * len(kept) - 10


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    """Tests run as root, whom chmod does not stop: the refusal is injected where the file is
    opened, by libsndfile (which says only "System error.") and by Python, as the OS gives it
    to a user."""
    import builtins

    import soundfile

    locked = tmp_path / "locked.wav"
    locked.write_bytes(SAMPLE.read_bytes())
    real_open, real_soundfile = builtins.open, soundfile.SoundFile

    def refusing(file, *args, **kwargs):
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def refusing_soundfile(file, *args, **kwargs):
        if str(file) == str(locked):
            raise soundfile.LibsndfileError(2, prefix=f"Error opening {str(file)!r}: ")
        return real_soundfile(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    monkeypatch.setattr(soundfile, "SoundFile", refusing_soundfile)
    with pytest.raises(SpeechseqError, match=f"{locked}: permission denied"):
        load_audio(locked)
