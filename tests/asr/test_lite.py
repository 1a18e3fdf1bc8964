"""Tests for speechseq.asr.lite: short jobs transcribed without torch, as the torch path does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechseq.asr.decoding import DecoderConfig
from speechseq.asr.lite import LITE_MAX_SECONDS, LiteTranscriber, lite_transcriber
from speechseq.asr.sources import AudioSlice
from speechseq.asr.transcriber import Transcriber
from speechseq.checkpoint import load_recognizer
from speechseq.mel import log_mel_features
from speechseq.pretrained import recognizer_path

ROOT = Path(__file__).parents[2]
SAMPLES = sorted((ROOT / "data" / "samples").glob("*.wav"))

pytestmark = pytest.mark.pretrained


@pytest.fixture(scope="module")
def lite() -> LiteTranscriber:
    transcriber = lite_transcriber(None, SAMPLES)
    assert transcriber is not None
    return transcriber


def test_the_shipped_onnx_copy_holds_the_checkpoints_weights(lite):
    """asr-default.onnx is the shipped checkpoint's network (its int8 weights, exactly, in
    float32): not a stale export."""
    model, feature_config, _, _ = load_recognizer(recognizer_path(None), int8_kernels=False)
    model.eval()
    samples, _ = sf.read(SAMPLES[0], dtype="float32")
    features = log_mel_features(samples, feature_config)  # (T, n_mels)
    lengths = np.array([len(features)])
    got, got_lengths = lite.session.run(None, {"features": features[None], "lengths": lengths})
    with torch.no_grad():
        want, want_lengths = model(torch.from_numpy(features)[None], torch.from_numpy(lengths))
    assert got_lengths.tolist() == want_lengths.tolist()
    assert np.abs(got - want.numpy()).max() < 1e-4


def test_samples_come_out_as_the_torch_path_gives_them(lite):
    """Same transcripts and word times as the shipped int8 model in torch; confidences within
    0.15 (torch's int8 kernels also quantize activations, which moves posteriors by up to
    ~0.15; 0.10 was the most on these files)."""
    want = Transcriber.from_pretrained(None, device="cpu").transcribe(SAMPLES)
    got = list(lite.iter_transcribe(SAMPLES))
    assert [r.path for r in got] == [str(p) for p in SAMPLES]
    for g, w in zip(got, want, strict=True):
        assert g.ok and g.text == w.text and g.duration == w.duration and g.truncated is None
        assert [(x.word, x.start, x.end) for x in g.words] == [
            (x.word, x.start, x.end) for x in w.words
        ]
        probs = [x.probability for x in g.words]
        assert probs == pytest.approx([x.probability for x in w.words], abs=0.15)
        assert g.segments[0].no_speech == pytest.approx(w.segments[0].no_speech, abs=0.02)


def test_greedy_decoding_gives_the_greedy_transcript(lite):
    greedy = LiteTranscriber.from_onnx(
        recognizer_path(None).with_suffix(".onnx"), DecoderConfig(kind="greedy")
    )
    want = Transcriber.from_pretrained(None, device="cpu", decoding=DecoderConfig(kind="greedy"))
    for path in SAMPLES[:2]:
        assert next(greedy.iter_transcribe([path])).text == want.transcribe(path).text


def test_silence_noise_and_bad_files(lite, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    noise = tmp_path / "noise.wav"
    sf.write(noise, np.random.default_rng(0).normal(size=32000) * 0.3, 16000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16000 * 31, np.float32), 16000)
    fast = tmp_path / "fast.wav"
    sf.write(fast, np.zeros(44100, np.float32), 44100)
    results = {Path(r.path).stem: r for r in lite.iter_transcribe([silent, noise, nan, long, fast])}
    assert results["silent"].ok and results["silent"].text == "" and results["silent"].duration == 1
    assert results["noise"].ok and results["noise"].text == ""  # above the no-speech threshold
    assert results["nan"].error == f"{nan}: contains NaN or infinite samples"
    assert "longer than 30 s" in results["long"].error
    assert "44100 Hz" in results["fast"].error


def test_silence_is_judged_on_numpy_and_torch_samples_alike():
    """Both paths skip audio whose every 10 ms frame is below -60 dB (an RMS of 1e-3)."""
    from speechseq.asr.silence import is_silence

    rng = np.random.default_rng(1)
    for level, silent in ((0.0, True), (1e-4, True), (8e-4, True), (1.2e-3, False), (0.1, False)):
        samples = (rng.normal(size=16050) * level).astype(np.float32)
        assert is_silence(samples, 16000) is silent, level
        assert is_silence(torch.from_numpy(samples), 16000) is silent, level
    assert is_silence(np.zeros(0, np.float32), 16000)


def test_which_jobs_run_without_torch(tmp_path):
    short = SAMPLES[:2]
    assert lite_transcriber(None, short) is not None
    assert lite_transcriber("default", []) is not None  # nothing to do: no torch for that
    assert lite_transcriber(None, short, device="cuda") is None
    assert lite_transcriber(recognizer_path(None), short) is None  # a checkpoint: torch
    fast = tmp_path / "fast.wav"
    sf.write(fast, np.zeros(22050, np.float32), 22050)
    assert lite_transcriber(None, [fast]) is None  # torch resamples
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16000 * 20, np.float32), 16000)
    assert lite_transcriber(None, [long]) is not None
    assert lite_transcriber(None, [long], max_segment_seconds=10) is None
    many = [long] * (int(LITE_MAX_SECONDS // 20) + 1)
    assert lite_transcriber(None, many) is None
    assert lite_transcriber(None, [AudioSlice(str(long), 0.0, 1.0, "a")]) is None
    assert lite_transcriber(None, [tmp_path / "missing.wav"]) is None  # torch says why


def test_an_onnx_model_runs_without_torch_with_its_tuning(tmp_path):
    """An exported ONNX file with its NAME.decoding.json beside it decodes as tuned."""
    onnx = recognizer_path(None).with_suffix(".onnx")
    local = tmp_path / "mine.onnx"
    local.write_bytes(onnx.read_bytes())
    tuned = json.loads(recognizer_path(None).with_suffix(".decoding.json").read_text())
    tuned["lm"] = str(recognizer_path(None).parent / tuned["lm"])
    (tmp_path / "mine.decoding.json").write_text(json.dumps(tuned))
    transcriber = lite_transcriber(local, SAMPLES[:1])
    assert transcriber is not None and transcriber._beam


def test_the_command_loads_no_torch(tmp_path):
    """`speechseq transcribe` on two short files, the shipped model, the default decoder
    (beam + LM), writing json: done, and torch never imported."""
    code = (
        "import sys\n"
        "from speechseq.cli import main\n"
        "sys.argv = ['speechseq', 'transcribe', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "loaded = [m for m in ('torch', 'torchaudio', 'librosa') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    out = tmp_path / "out"
    args = [str(p) for p in SAMPLES[:2]] + ["-o", str(out), "-f", "json"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 succeeded" in done.stderr
    written = json.loads((out / f"{SAMPLES[0].stem}.json").read_text())
    assert written["text"] == "i demand that you log off emily" and written["segments"]
