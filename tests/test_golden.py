"""The shipped models' output, pinned: what `speechseq transcribe data/samples` prints (default
and greedy decoders), the word times it writes, and the samples `speechseq synthesize` writes.

The transcripts and word times in tests/golden/ were written when the shipped recognizer became
the 14-epoch model in int8 (with its beam settings re-tuned on dev), by the torch path; the
torch-free path (``--engine auto`` on these short files: the same weights in float32 in ONNX
Runtime) prints the same with the default decoder, and `transcribe-greedy-onnx.txt` with the
greedy one (two files differ from int8 where frames are near-ties); `synth.wav` and
`synth-griffin-lim.wav` (the same voice through Griffin-Lim) when the shipped voice became the
one fine-tuned on its teacher's phone timings, carrying the neural vocoder. A change
that alters transcripts or audio must update them on purpose (and say why), not by accident.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechseq.cli import app

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"
SENTENCE = "Hello world. This is speechseq."

pytestmark = pytest.mark.pretrained
# The golden files were made with 2 torch threads. Griffin-Lim's 32 iterations carry the last
# bits of float rounding, which depend on the thread count, into visibly different samples (with
# 1 thread 30,000 of 36,800 differ, by up to 1,618 steps), so the runs here use 2 as well.
THREADS = ["--threads", "2"]


@pytest.fixture(autouse=True)
def _restore_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("engine", ["torch", "auto"])
@pytest.mark.parametrize("decoder", ["default", "greedy"])
def test_transcribe_samples_prints_what_it_always_printed(decoder, engine, monkeypatch):
    monkeypatch.chdir(ROOT)  # the printed paths are as given: data/samples/…
    args = ["transcribe", "data/samples", *THREADS, "--engine", engine]
    args += ["--decoder", "greedy"] if decoder == "greedy" else []
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    onnx = "-onnx" if engine == "auto" and decoder == "greedy" else ""
    assert result.stdout == (GOLDEN / f"transcribe-{decoder}{onnx}.txt").read_text()


# confidences are means of posteriors, rounded to 4 places: allow the last digit; the torch-free
# path's float32 network moves them by up to 0.15 from int8's (tests/asr/test_lite.py)
@pytest.mark.parametrize(("engine", "tolerance"), [("torch", 2e-4), ("auto", 0.15)])
def test_transcribe_samples_writes_the_same_word_times(engine, tolerance, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    args = ["transcribe", "data/samples", "-o", str(out), "-f", "json", *THREADS, "--engine"]
    args.append(engine)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    golden = sorted((GOLDEN / "json-default").glob("*.json"))
    assert [p.name for p in golden] == sorted(p.name for p in out.glob("*.json"))
    for want_path in golden:
        want = json.loads(want_path.read_text())
        got = json.loads((out / want_path.name).read_text())
        assert (got["path"], got["text"], got["duration"]) == (
            want["path"],
            want["text"],
            want["duration"],
        )
        got_words = [w for s in got["segments"] for w in s["words"]]
        want_words = [w for s in want["segments"] for w in s["words"]]
        assert [(w["word"], w["start"], w["end"]) for w in got_words] == [
            (w["word"], w["start"], w["end"]) for w in want_words
        ]
        got_p = [w["probability"] for w in got_words]
        assert got_p == pytest.approx([w["probability"] for w in want_words], abs=tolerance)


@pytest.mark.parametrize(
    ("options", "golden"),
    [([], "synth.wav"), (["--vocoder", "griffin-lim"], "synth-griffin-lim.wav")],
)
def test_synthesize_writes_the_same_samples(tmp_path, options, golden):
    out = tmp_path / "hello.wav"
    args = ["synthesize", SENTENCE, "-o", str(out), *THREADS, *options]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    got, rate = sf.read(out, dtype="int16")
    want, want_rate = sf.read(GOLDEN / golden, dtype="int16")
    assert rate == want_rate and got.shape == want.shape
    # 16-bit samples: float rounding in the model or the vocoder may move one by a step or two
    assert np.abs(got.astype(np.int32) - want.astype(np.int32)).max() <= 2
