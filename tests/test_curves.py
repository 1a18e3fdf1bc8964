"""Tests for speechseq.curves and ``speechseq plot``: a metrics log drawn as a PNG."""

import json
import sys

import matplotlib.image
import pytest
from typer.testing import CliRunner

from speechseq.cli import app
from speechseq.curves import metric_series
from speechseq.errors import SpeechseqError


@pytest.fixture
def metrics(tmp_path):
    rows = [{"step": s, "epoch": 1, "loss": 3.0 / s, "lr": 1e-3, "elapsed": s} for s in (1, 2, 3)]
    rows += [{"step": 3, "epoch": 1, "dev_loss": 1.5, "dev_wer": 0.4, "dev_cer": 0.2}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_each_numeric_field_is_a_series_and_the_clocks_are_left_out(metrics):
    series = metric_series(metrics)
    assert set(series) == {"loss", "lr", "dev_loss", "dev_wer", "dev_cer"}
    assert series["loss"] == [(1, 3.0), (2, 1.5), (3, 1.0)]


def test_plot_writes_a_png_and_refuses_to_overwrite(metrics, tmp_path):
    out = tmp_path / "curves.png"
    result = CliRunner().invoke(app, ["plot", str(metrics), "-o", str(out)])
    assert result.exit_code == 0, result.output
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 1000  # panels: loss, lr, wer, cer
    again = CliRunner().invoke(app, ["plot", str(metrics), "-o", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_bad_logs_and_a_missing_matplotlib_are_one_line(metrics, tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(SpeechseqError, match="bad.jsonl:1"):
        metric_series(bad)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(app, ["plot", str(metrics), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and "pip install 'speechseq[plot]'" in result.stderr
