"""Faults a user meets with outputs and models: each ends in one line on stderr that names the
user's path and the cause, a non-zero exit, no traceback, no temporary file left behind, and
nothing finished lost."""

import errno
import json
from pathlib import Path

import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from speechseq.checkpoint import load_checkpoint
from speechseq.cli import app
from speechseq.files import TEMP_GLOB
from speechseq.pretrained import default_recognizer_path


def _one_line_error(result, *names: str) -> str:
    """The run failed with exit code 2 and one ``error:`` line naming each of ``names``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert all(name in errors[0] for name in names), errors[0]
    return errors[0]


def test_output_dir_that_is_a_file(tmp_path, speech_dir, model_path):
    target = tmp_path / "out"
    target.write_text("a file, not a folder\n")
    args = ["transcribe", str(speech_dir), "-m", str(model_path), "-o", str(target)]
    result = CliRunner().invoke(app, args)
    _one_line_error(result, str(target), "not a folder")
    assert target.read_text() == "a file, not a folder\n"


def test_read_only_output_dir_fails_before_any_work(tmp_path, speech_dir, model_path, monkeypatch):
    """Tests run as root, for whom chmod does not stop a write: the refusal is injected where
    the job writes, as the OS gives it to a user."""
    out = tmp_path / "out"
    out.mkdir()

    def refused(path, text):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("speechseq.asr.jobs.write_text_atomic", refused)
    args = ["transcribe", str(speech_dir), "-m", str(model_path), "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--report", str(tmp_path / "r.jsonl")])
    _one_line_error(result, str(out), "permission denied")
    assert not list(out.iterdir())


def test_a_full_disk_stops_the_job_cleanly_and_a_rerun_finishes_it(
    tmp_path, speech_dir, model_path, monkeypatch
):
    """The disk fills after three transcripts: the fourth write fails as the OS fails it (a
    0-byte temporary file, then ENOSPC). The job stops with one line naming the user's file,
    removes its temporary file, says what happened in the report; a re-run finishes the job."""
    out = tmp_path / "out"
    real_write = Path.write_text
    written = []

    def filling(self, text, *args, **kwargs):
        if self.name.startswith(".~") and "probe" not in self.name:
            if len(written) == 3:
                real_write(self, "", *args, **kwargs)
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            written.append(self)
        return real_write(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", filling)
    args = ["transcribe", str(speech_dir), "-m", str(model_path), "-o", str(out), "--workers", "0"]
    result = CliRunner().invoke(app, args)
    line = _one_line_error(result, "no space left on device", "run it again")
    assert str(out) in line and ".~" not in line
    assert not list(out.rglob(TEMP_GLOB))
    assert len(list(out.glob("*.txt"))) == 3
    report = [json.loads(x) for x in (out / "report.jsonl").read_text().splitlines()]
    assert [r["status"] for r in report] == ["ok"] * 3 + ["failed"]
    assert "no space left on device" in report[-1]["error"]

    monkeypatch.setattr(Path, "write_text", real_write)  # space freed
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.stderr
    inputs = sorted(p.stem for p in speech_dir.glob("*.wav"))
    assert sorted(p.stem for p in out.glob("*.txt")) == inputs
    assert "3 skipped" in again.stderr


def _broken_checkpoints(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (a file that is no usable checkpoint, what the error must say)."""
    shipped = load_checkpoint(default_recognizer_path())
    shapes = {**shipped, "model": {k: v[:1] if v.ndim else v for k, v in shipped["model"].items()}}
    made = {
        "format-only": ({"format": "speechseq-asr"}, "incomplete speechseq checkpoint"),
        "wrong-shapes": (shapes, "do not fit its model"),
    }
    out = {}
    for name, (state, says) in made.items():
        torch.save(state, folder / f"{name}.pt")
        out[name] = (folder / f"{name}.pt", says)
    (folder / "text.pt").write_text("not a model\n")
    out["text"] = (folder / "text.pt", "not a PyTorch checkpoint")
    torch.save({"format": "speechseq-asr", "x": Path("x")}, folder / "pickled.pt")
    out["pickled"] = (folder / "pickled.pt", "pickled Python objects")
    return out


@pytest.mark.pretrained
@pytest.mark.parametrize("name", ["format-only", "wrong-shapes", "text", "pickled"])
def test_an_unusable_checkpoint_is_one_line(tmp_path, name):
    path, says = _broken_checkpoints(tmp_path)[name]
    wav = Path(__file__).parents[2] / "data" / "samples" / "flite-rms.wav"
    result = CliRunner().invoke(app, ["transcribe", str(wav), "-m", str(path)])
    line = _one_line_error(result, str(path), says)
    assert "weights_only" not in line


@pytest.mark.pretrained
def test_synthesize_to_a_name_without_extension_writes_wav(tmp_path):
    result = CliRunner().invoke(app, ["synthesize", "Hi there.", "-o", str(tmp_path / "hello")])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "hello").read_bytes()[:4] == b"RIFF"
    assert not list(tmp_path.glob(TEMP_GLOB))


@pytest.mark.pretrained
def test_an_unknown_audio_format_names_the_users_file(tmp_path):
    result = CliRunner().invoke(app, ["synthesize", "Hi there.", "-o", str(tmp_path / "x.xyz")])
    line = _one_line_error(result, str(tmp_path / "x.xyz"))
    assert ".~" not in line and "partial" not in line
    assert not list(tmp_path.iterdir())


def test_help_is_readable_when_piped():
    """Not on a terminal, help is plain text: no 80-column box cutting option names."""
    result = CliRunner().invoke(app, ["transcribe", "--help"])
    assert result.exit_code == 0
    assert "╭" not in result.output and "--max-words-per-line" in result.output
    assert len(result.output.splitlines()) < 100


def test_a_disk_too_full_for_a_lock_stops_the_job_on_one_line(
    tmp_path, speech_dir, model_path, monkeypatch
):
    """On a small full disk the first thing to fail is a lock file (made as each input is
    read): the job stops as when a transcript cannot be written, and leaves no lock."""
    import os

    out = tmp_path / "out"
    real_open = os.open
    made = []

    def filling(path, flags, *args, **kwargs):
        if str(path).endswith(".lock"):
            if len(made) == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            made.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", filling)
    args = ["transcribe", str(speech_dir), "-m", str(model_path), "-o", str(out)]
    result = CliRunner().invoke(app, args)
    line = _one_line_error(result, "lock file", "no space left on device", "run it again")
    assert str(out) in line
    assert not list(out.rglob(".*.lock")) and not list(out.rglob(TEMP_GLOB))
    report = [json.loads(x) for x in (out / "report.jsonl").read_text().splitlines()]
    assert report[-1]["status"] == "failed" and "lock file" in report[-1]["error"]
    monkeypatch.setattr(os, "open", real_open)  # space freed
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.stderr
    assert len(list(out.glob("*.txt"))) == len(list(speech_dir.glob("*.wav")))


@pytest.mark.pretrained
def test_a_long_text_file_line_is_streamed_to_its_file(tmp_path, monkeypatch):
    """A --text-file line of many sentences is written as it is spoken, a sentence at a time,
    not held whole until the end (5 MB lines made memory grow without bound)."""
    from speechseq.audio import AudioWriter

    held = []  # samples made but not yet written, seen at each write
    real_write = AudioWriter.write

    def spy(self, waveform):
        held.append(waveform.numel())
        return real_write(self, waveform)

    monkeypatch.setattr(AudioWriter, "write", spy)
    line = " ".join(["The cat sat on the mat."] * 40)
    (tmp_path / "long.txt").write_text(line + "\n")
    out = tmp_path / "out"
    args = ["synthesize", "--text-file", str(tmp_path / "long.txt"), "--output-dir", str(out)]
    result = CliRunner().invoke(app, [*args, "--threads", "2"])
    assert result.exit_code == 0, result.output
    info = sf.info(str(out / "0001.wav"))
    assert len(held) == 40 and sum(held) == info.frames  # one write per sentence, all of it
    assert max(held) < info.frames / 20
