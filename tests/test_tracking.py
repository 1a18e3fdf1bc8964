"""Tests for speechseq.tracking: metrics.jsonl, and with train.tensorboard the same scalars (plus
a voice's alignment images and audio samples) in TensorBoard's event files, read back."""

import json

import pytest
import yaml
from conftest import TINY_TTS_MODEL
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from speechseq.cli import app

TINY_ASR = {"hidden_size": 16, "num_layers": 1, "conv_channels": 4}


def _events(out_dir) -> EventAccumulator:
    events = EventAccumulator(str(out_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return events


def _train(tmp_path, kind: str, raw: dict):
    config = tmp_path / f"{kind}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return CliRunner().invoke(app, ["train", kind, str(config), "--no-progress"])


@pytest.mark.slow
def test_asr_training_writes_its_metrics_to_tensorboard_too(tmp_path, speech_manifest):
    out = tmp_path / "asr"
    raw = {
        "data": {"train_manifest": str(speech_manifest), "dev_manifest": str(speech_manifest)},
        "model": TINY_ASR,
        "train": {"out_dir": str(out), "epochs": 2, "log_every": 1, "tensorboard": True},
    }
    result = _train(tmp_path, "asr", raw)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = {k for row in rows for k, v in row.items() if k not in ("step", "epoch")}
    events = _events(out)
    assert set(events.Tags()["scalars"]) == {k for k in logged if k != "note"}
    dev = [row for row in rows if "dev_wer" in row]
    board = events.Scalars("dev_wer")
    assert [(e.step, round(e.value, 5)) for e in board] == [
        (row["step"], round(row["dev_wer"], 5)) for row in dev
    ]


@pytest.mark.slow
def test_voice_training_shows_alignments_and_samples_in_tensorboard(tmp_path, tts_manifest):
    out = tmp_path / "tts"
    raw = {
        "data": {"train_manifest": str(tts_manifest), "dev_manifest": str(tts_manifest)},
        "model": TINY_TTS_MODEL,
        "train": {"out_dir": str(out), "max_steps": 2, "tensorboard": True},
        "validation": {"sentences": 2, "plot": False},
    }
    result = _train(tmp_path, "tts", raw)
    assert result.exit_code == 0, result.output
    tags = _events(out).Tags()
    assert {"alignment", "alignment-free"} <= set(tags["images"])
    assert {"sample-0", "sample-1"} <= set(tags["audio"])
    assert "dev_loss" in tags["scalars"] and not (out / "alignments").exists()


def test_without_the_package_the_run_stops_before_making_its_folder(
    tmp_path, speech_manifest, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    out = tmp_path / "asr"
    raw = {
        "data": {"train_manifest": str(speech_manifest)},
        "model": TINY_ASR,
        "train": {"out_dir": str(out), "tensorboard": True},
    }
    result = _train(tmp_path, "asr", raw)
    assert result.exit_code == 2 and "pip install 'speechseq[tensorboard]'" in result.stderr
    assert not out.exists()
