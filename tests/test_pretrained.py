"""The shipped recognizer: it is inside the package and transcribes the shipped samples."""

from pathlib import Path

from typer.testing import CliRunner

from speechseq.checkpoint import load_recognizer
from speechseq.cli import app
from speechseq.inference import default_model_path
from speechseq.metrics import cer

SAMPLES = Path(__file__).parent.parent / "data" / "samples"
# Measured on the shipped model (see speechseq/pretrained/README.md); a margin over it, so a
# broken export or feature mismatch (CER near 100 %) fails.
MAX_SAMPLES_CER = 0.45


def test_shipped_model_is_in_the_package_and_small():
    path = default_model_path()
    assert path.parent.parent.name == "speechseq"
    assert path.stat().st_size < 50 * 2**20
    model, features, tokenizer, state = load_recognizer(path)
    assert "train_state" not in state
    assert features.sample_rate == 16000 and len(tokenizer) == 29


def test_transcribe_samples_with_the_default_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # works from any directory
    result = CliRunner().invoke(app, ["transcribe", str(SAMPLES)])
    assert result.exit_code == 0, result.stderr
    got = dict(line.split("\t") for line in result.stdout.strip().splitlines())
    refs = {p.with_suffix(".wav").name: p.read_text().strip() for p in SAMPLES.glob("*.txt")}
    hyps = {Path(p).name: text for p, text in got.items()}
    assert set(hyps) == set(refs)
    names = sorted(refs)
    assert cer([refs[n] for n in names], [hyps[n] for n in names]) <= MAX_SAMPLES_CER
