"""Tests for speechseq.features: log-mels against librosa, normalisation modes, SpecAugment."""

from __future__ import annotations

import dataclasses
import subprocess

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from speechseq.audio import load_audio
from speechseq.features import FeatureConfig, FeatureExtractor, SpecAugment, SpecAugmentConfig

# Our log-mel vs librosa's: natural-log values may differ by at most this much wherever the mel
# energy is above MEL_ENERGY_FLOOR. Both compute in float32 and agree to ~3e-5 in practice, so
# 1e-3 leaves headroom yet still catches a wrong window, framing, filter norm or log base. Below
# the floor float32 rounding of near-zero energies dominates the log, so those bins are not
# compared. Frame counts must be identical.
LOG_MEL_ATOL = 1e-3
MEL_ENERGY_FLOOR = 1e-4


def _librosa_log_mel(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=16000,
        n_fft=400,
        win_length=400,
        hop_length=160,
        n_mels=80,
        power=2.0,
        center=True,
        pad_mode="constant",
        htk=False,
        norm="slaney",
    )  # (n_mels, frames)
    return np.log(mel + 1e-6).T, mel.T  # (frames, n_mels) each


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> torch.Tensor:
    """About 3 s of synthetic English speech at 16 kHz (espeak-ng writes 22050 Hz)."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "The quick brown fox jumps over the lazy dog."],
        check=True,
        capture_output=True,
    )
    assert sf.info(path).samplerate == 22050
    return load_audio(path, sample_rate=16000)  # (T,)


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(12345, generator=g)  # (T,)


def _compare_with_librosa(waveform: torch.Tensor) -> None:
    ours = FeatureExtractor(FeatureConfig(normalize="none")).log_mel(waveform).numpy()
    ref, mel = _librosa_log_mel(waveform.numpy())
    assert ours.shape == ref.shape
    loud = mel > MEL_ENERGY_FLOOR
    assert loud.mean() > 0.3, "the comparison must cover a good share of the bins"
    assert np.abs(ours - ref)[loud].max() <= LOG_MEL_ATOL


def test_log_mel_matches_librosa_on_speech(speech):
    assert 2.0 < speech.numel() / 16000 < 5.0
    assert speech.abs().max() > 0.05, "espeak-ng must have produced audible speech"
    _compare_with_librosa(speech)


def test_log_mel_matches_librosa_on_noise(noise):
    _compare_with_librosa(noise)


@pytest.mark.parametrize("num_samples", [1, 159, 160, 16000, 16001])
def test_num_frames_matches_extracted_frames(num_samples):
    extractor = FeatureExtractor(FeatureConfig())
    wave = torch.linspace(-0.5, 0.5, num_samples)

    assert extractor(wave).shape == (extractor.num_frames(num_samples), 80)
    assert extractor.num_frames(num_samples) == num_samples // 160 + 1


def test_per_utterance_normalisation_gives_zero_mean_unit_std(speech):
    feats = FeatureExtractor(FeatureConfig(normalize="utterance"))(speech)  # (frames, n_mels)

    assert feats.shape == (speech.numel() // 160 + 1, 80)
    torch.testing.assert_close(feats.mean(dim=0), torch.zeros(80), atol=1e-4, rtol=0)
    torch.testing.assert_close(feats.std(dim=0, unbiased=False), torch.ones(80), atol=1e-3, rtol=0)


def test_global_normalisation_uses_config_stats(noise):
    raw = FeatureExtractor(FeatureConfig(normalize="none")).log_mel(noise)  # (frames, n_mels)
    mean = torch.linspace(-5.0, 0.0, 80)
    std = torch.linspace(1.0, 3.0, 80)
    config = FeatureConfig(normalize="global").with_stats(mean, std)

    feats = FeatureExtractor(config)(noise)

    torch.testing.assert_close(feats, (raw - mean) / std)
    assert config.mean == tuple(mean.tolist())
    assert isinstance(config.std, tuple)


def test_no_normalisation_returns_raw_log_mel(noise):
    extractor = FeatureExtractor(FeatureConfig(normalize="none"))
    assert torch.equal(extractor(noise), extractor.log_mel(noise))


def test_custom_sizes():
    config = FeatureConfig(
        sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40, f_max=3800.0
    )
    feats = FeatureExtractor(config)(torch.randn(8000))
    assert feats.shape == (8000 // 80 + 1, 40)
    assert config.frame_seconds == pytest.approx(0.01)


# --- FeatureConfig ------------------------------------------------------------------------------


def test_feature_config_rejects_unknown_normalisation():
    with pytest.raises(ValueError, match="normalize"):
        FeatureConfig(normalize="batch")


@pytest.mark.parametrize(("mean", "std"), [((), ()), ((0.0,) * 80, ()), ((0.0,) * 79, (1.0,) * 80)])
def test_global_normalisation_needs_stats_for_every_channel(mean, std):
    config = FeatureConfig(normalize="global", mean=mean, std=std)
    with pytest.raises(ValueError, match="mean and std"):
        FeatureExtractor(config)


def test_feature_config_is_frozen_hashable_and_round_trips():
    # lists, as YAML gives them: the config keeps them as tuples of floats
    lists = {"mean": [1, 2, 3, 4], "std": [1, 1, 1, 1]}
    config = FeatureConfig(n_mels=4, normalize="global", **lists)  # pyright: ignore[reportArgumentType]

    assert config.mean == (1.0, 2.0, 3.0, 4.0)  # lists from YAML become float tuples
    hash(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_mels = 8  # type: ignore[misc]
    d = config.to_dict()
    assert d["mean"] == [1.0, 2.0, 3.0, 4.0]
    assert FeatureConfig.from_dict(d) == config


def test_frame_seconds_default():
    assert FeatureConfig().frame_seconds == pytest.approx(0.01)


# --- SpecAugment module -------------------------------------------------------------------------


def test_spec_augment_is_identity_in_eval_mode():
    module = SpecAugment(
        SpecAugmentConfig(freq_masks=4, freq_width=20, time_masks=4, time_width=0.5)
    ).eval()
    feats = torch.randn(2, 50, 80)

    out = module(feats, torch.tensor([50, 30]), torch.Generator().manual_seed(0))

    assert torch.equal(out, feats)


def test_spec_augment_masks_in_train_mode_with_zeros_inside_valid_length():
    module = SpecAugment(
        SpecAugmentConfig(freq_masks=0, freq_width=0, time_masks=2, time_width=0.5)
    )
    assert module.training
    feats = torch.ones(2, 60, 80)
    lengths = torch.tensor([60, 25])
    g = torch.Generator().manual_seed(0)

    changed_any = False
    for _ in range(20):
        out = module(feats, lengths, g)
        changed = out != feats
        assert (out[changed] == 0).all()
        assert not changed[1, 25:].any()
        changed_any |= bool(changed.any())
    assert changed_any


def test_spec_augment_config_defaults():
    c = SpecAugmentConfig()
    assert (c.freq_masks, c.freq_width, c.time_masks, c.time_width) == (2, 15, 2, 0.05)
