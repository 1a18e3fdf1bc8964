"""Tests for speechseq.mel: the NumPy log-mels the torch-free path computes are the torch ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechseq import functional as F
from speechseq.features import FeatureExtractor
from speechseq.mel import FeatureConfig, log_mel_features, mel_filterbank_np

SAMPLE = Path(__file__).parent.parent / "data" / "samples" / "festival-ked.wav"
# both compute in float32 (NumPy's FFT in float64, torch's in float32): normalised features
# agree to ~4e-5; a wrong window, framing, filter or normalisation is off by 0.1 or more
TOLERANCE = 2e-4

CONFIGS = {
    "recognizer": FeatureConfig(),
    "voice": FeatureConfig(n_fft=1024, win_length=800, hop_length=200, normalize="none"),
    "global": FeatureConfig(
        f_min=50.0, f_max=7000.0, normalize="global", mean=(-5.0,) * 80, std=(2.0,) * 80
    ),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_numpy_log_mels_are_the_torch_ones(name):
    config = CONFIGS[name]
    samples, _ = sf.read(SAMPLE, dtype="float32")
    want = FeatureExtractor(config)(torch.from_numpy(samples)).numpy()  # (frames, n_mels)
    got = log_mel_features(samples, config)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() < TOLERANCE
    c = config
    want_fbank = F.mel_filterbank(c.n_fft, c.n_mels, c.sample_rate, c.f_min, c.f_max).numpy()
    got_fbank = mel_filterbank_np(c.n_fft, c.n_mels, c.sample_rate, c.f_min, c.f_max)
    assert np.abs(got_fbank - want_fbank).max() < 1e-6


def test_short_input_frames_like_torch():
    config = FeatureConfig()
    rng = np.random.default_rng(0)
    for length in (100, 401, 16000):
        samples = (rng.normal(size=length) * 0.1).astype(np.float32)
        want = FeatureExtractor(config)(torch.from_numpy(samples)).numpy()
        got = log_mel_features(samples, config)
        assert got.shape == want.shape and np.abs(got - want).max() < TOLERANCE


def test_feature_config_still_lives_in_features_and_loads_no_torch():
    from speechseq.features import FeatureConfig as Same

    assert Same is FeatureConfig
    code = "import sys, speechseq.mel; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
