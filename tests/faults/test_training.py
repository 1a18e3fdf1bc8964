"""Faults a user meets when training: missing audio, and what a killed run leaves behind."""

import json
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from speechseq.cli import app
from speechseq.data import read_manifest, write_manifest

TINY = {"hidden_size": 16, "num_layers": 1, "conv_channels": 4}


def _config(tmp_path, manifest, out_dir, **train) -> str:
    raw = {
        "data": {"train_manifest": str(manifest), "max_batch_seconds": 4.0},
        "model": TINY,
        "train": {"out_dir": str(out_dir), "epochs": 100, "num_threads": 1, **train},
    }
    path = tmp_path / f"{out_dir.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _moved_audio(tmp_path, speech_manifest, keep: int):
    """A copy of the manifest whose audio files all but ``keep`` are gone."""
    folder = tmp_path / "corpus"
    utts = read_manifest(speech_manifest)
    folder.mkdir()
    for u in utts[:keep]:
        shutil.copy(u.audio, folder)
    moved = [type(u)(str(folder / u.audio.rsplit("/", 1)[-1]), u.text, u.duration) for u in utts]
    return write_manifest(moved, folder / "train.jsonl"), len(utts)


def test_a_manifest_whose_audio_is_all_missing_fails_before_training(tmp_path, speech_manifest):
    manifest, count = _moved_audio(tmp_path, speech_manifest, keep=0)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "asr", _config(tmp_path, manifest, out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert f"{count} of {count} audio files are missing" in lines[0] and str(manifest) in lines[0]
    assert not out.exists()  # no best.pt with WER 100 %, no config.yaml left behind


def test_more_missing_than_allowed_fails_fewer_trains_with_one_line(tmp_path, speech_manifest):
    manifest, count = _moved_audio(
        tmp_path, speech_manifest, keep=len(read_manifest(speech_manifest)) - 1
    )
    out = tmp_path / "run"
    strict = CliRunner().invoke(
        app, ["train", "asr", _config(tmp_path, manifest, out), "--no-progress"]
    )
    assert strict.exit_code == 2 and f"1 of {count} audio files are missing" in strict.stderr
    assert "data.max_missing=0.05" in strict.stderr
    lenient = CliRunner().invoke(
        app,
        ["train", "asr", _config(tmp_path, manifest, out, max_steps=1), "--no-progress",
         "data.max_missing=0.5"],
    )  # fmt: skip
    assert lenient.exit_code == 0, lenient.output
    warned = [line for line in lenient.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "audio files are missing" in warned[0]
    assert (out / "best.pt").exists()


def test_a_resumed_run_clears_what_the_killed_one_left(tmp_path, speech_manifest):
    """A kill mid-checkpoint leaves a temporary file; steps logged after the last checkpoint
    are logged again by the resumed run. Resuming removes the one and drops the others."""
    out = tmp_path / "run"
    config = _config(tmp_path, speech_manifest, out, max_steps=2, checkpoint_every=1, log_every=1)
    assert CliRunner().invoke(app, ["train", "asr", config, "--no-progress"]).exit_code == 0
    (out / ".~last-999-tmp.pt").write_bytes(b"half a checkpoint")
    with (out / "metrics.jsonl").open("a") as f:  # the killed run's steps 3 and 4
        f.write(json.dumps({"step": 3, "loss": 1.0}) + "\n" + json.dumps({"step": 4}) + "\n")
    config = _config(tmp_path, speech_manifest, out, max_steps=4, checkpoint_every=1, log_every=1)
    result = CliRunner().invoke(app, ["train", "asr", config, "--resume", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert not list(out.glob(".~*"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 4} not in rows and {"step": 3, "loss": 1.0} not in rows
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # each step once


def test_the_readme_training_snippet_finds_its_data_from_the_repository_root(monkeypatch):
    """The README's "training from Python" snippet, run as written from the repository root:
    the YAML's paths resolve against the YAML's folder, the override's against the working
    folder (training itself is stood in for: the data is made by the recipe's prepare.sh)."""
    import re
    from pathlib import Path

    import speechseq.asr.train

    root = Path(__file__).parents[2]
    readme = (root / "README.md").read_text()
    (snippet,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "load_asr_config(" in block
    ]
    monkeypatch.chdir(root)
    monkeypatch.setattr(speechseq.asr.train, "train_asr", lambda config, **kw: config)
    names: dict = {}
    exec(snippet, names)
    config = names["best_checkpoint"]
    tiny = root / "recipes" / "tiny" / "asr"
    assert Path(config.data.train_manifest) == tiny / "data" / "train.jsonl"
    assert Path(config.data.dev_manifest) == tiny / "data" / "dev.jsonl"
    assert Path(config.train.out_dir).resolve() == root / "exp" / "python"
    assert config.train.epochs == 2


def test_a_voice_whose_dev_audio_is_all_unreadable_stops_on_one_line(tmp_path, tts_manifest):
    from conftest import TINY_TTS_MODEL

    from speechseq.data import write_manifest

    corrupt = []
    for u in read_manifest(tts_manifest):
        broken = tmp_path / Path(u.audio).name
        broken.write_bytes(b"RIFF not really a wav file")
        corrupt.append(u.with_audio(str(broken)))
    dev = write_manifest(corrupt, tmp_path / "dev.jsonl")
    raw = {
        "data": {"train_manifest": str(tts_manifest), "dev_manifest": str(dev)},
        "model": TINY_TTS_MODEL,
        "train": {"out_dir": str(tmp_path / "voice"), "max_steps": 1},
        "validation": {"sentences": 2},
    }
    (tmp_path / "voice.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(
        app, ["train", "tts", str(tmp_path / "voice.yaml"), "--no-progress"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "validation.sentences: 0" in errors[0]
