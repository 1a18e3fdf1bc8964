"""The top-level command: version, shell completion, how much it says (-v/-q), and what it does
without the optional beam-search package."""

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
    greedy = (ROOT / "tests" / "golden" / "transcribe-greedy.txt").read_text()
    assert result.stdout == greedy
    quiet = CliRunner().invoke(app, ["-q", "transcribe", "data/samples", "--threads", "2"])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr and quiet.stdout == greedy


@pytest.mark.pretrained
def test_verbose_says_what_was_loaded(monkeypatch):
    monkeypatch.chdir(ROOT)
    wav = "data/samples/flite-rms.wav"
    result = CliRunner().invoke(app, ["-v", "transcribe", wav, "--decoder", "greedy"])
    assert result.exit_code == 0, result.output
    assert "recognizer" in result.stderr and "M parameters" in result.stderr
    assert "decoder: greedy" in result.stderr
    plain = CliRunner().invoke(app, ["transcribe", wav, "--decoder", "greedy"])
    assert "recognizer" not in plain.stderr
