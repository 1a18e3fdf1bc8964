"""The top-level command: version, shell completion, how much it says (-v/-q), and what it does
without the optional beam-search package."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speechseq.cli import app

ROOT = Path(__file__).parents[2]


def test_version_and_completion():
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"speechseq {version('speechseq')}\n"
    help_text = CliRunner().invoke(app, ["--help"]).output
    assert "--install-completion" in help_text and "--verbose" in help_text


@pytest.fixture
def no_flashlight(monkeypatch):
    """Hide flashlight-text, as on Python 3.13 where it has no wheels (None in sys.modules makes
    its import fail)."""
    for name in [m for m in sys.modules if m == "flashlight" or m.startswith("flashlight.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("flashlight", "flashlight.lib", "flashlight.lib.text"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "flashlight.lib.text.decoder", None)


@pytest.mark.pretrained
def test_without_flashlight_transcribe_falls_back_to_greedy_on_one_line(no_flashlight, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["transcribe", "data/samples", "--threads", "2"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "flashlight-text" in warned[0] and "greedily" in warned[0]
    # short files: the torch-free path, whose greedy transcripts are pinned beside the torch ones
    greedy = (ROOT / "tests" / "golden" / "transcribe-greedy-onnx.txt").read_text()
    assert result.stdout == greedy
    quiet = CliRunner().invoke(app, ["-q", "transcribe", "data/samples", "--threads", "2"])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr and quiet.stdout == greedy


@pytest.mark.pretrained
def test_verbose_says_what_was_loaded(monkeypatch):
    monkeypatch.chdir(ROOT)
    wav = "data/samples/flite-rms.wav"
    result = CliRunner().invoke(app, ["-v", "transcribe", wav, "--decoder", "greedy"])
    assert result.exit_code == 0, result.output
    assert "recognizer" in result.stderr and "ONNX Runtime, no torch" in result.stderr
    assert "decoder: greedy" in result.stderr
    args = ["-v", "transcribe", wav, "--decoder", "greedy", "--engine", "torch"]
    torch = CliRunner().invoke(app, args)
    assert "M parameters" in torch.stderr and "decoder: greedy" in torch.stderr
    plain = CliRunner().invoke(app, ["transcribe", wav, "--decoder", "greedy"])
    assert "recognizer" not in plain.stderr


@pytest.mark.pretrained
def test_info_describes_a_shipped_model():
    result = CliRunner().invoke(app, ["info", "default"])
    assert result.exit_code == 0, result.output
    assert "speechseq-asr: recognizer" in result.stdout and "sentencepiece, 257" in result.stdout
    voice = CliRunner().invoke(app, ["info", "voice", "--json"])
    described = json.loads(voice.stdout)
    assert (described["format"], described["kind"]) == ("speechseq-tts", "duration")
    assert described["parameters"] > 1e6 and described["training"] is None
    assert described["vocoder"]["kind"] == "istft"  # it speaks through its neural vocoder


def test_a_new_checkpoint_records_what_made_it(model_path):
    import platform

    import torch

    result = CliRunner().invoke(app, ["info", str(model_path), "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    made = described["provenance"]
    assert made["torch"] == torch.__version__ and made["python"] == platform.python_version()
    assert made["speechseq"] and made["created"]
    assert made["git"] is None or len(made["git"]) == 40  # a git checkout gives its commit
    assert described["meta"]["step"] > 0  # best.pt notes the step it was saved at
    missing = CliRunner().invoke(app, ["info", "nothing.pt"])
    assert missing.exit_code == 2 and "nothing.pt" in missing.stderr
