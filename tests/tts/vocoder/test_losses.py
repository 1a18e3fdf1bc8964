import math

import pytest
import torch

from speechseq.models.vocoder import IstftVocoderConfig
from speechseq.tts.config import tts_feature_config
from speechseq.tts.vocoder.data import VocoderCorpus
from speechseq.tts.vocoder.losses import (
    VocoderLoss,
    VocoderLossConfig,
    anti_wrap,
    phase_losses,
    spectral_convergence,
)


def test_anti_wrap_is_the_distance_of_angles():
    x = torch.tensor([0.0, 2 * math.pi, -2 * math.pi + 0.1, math.pi - 0.1, 3 * math.pi + 0.2])
    torch.testing.assert_close(
        anti_wrap(x), torch.tensor([0.0, 0.0, 0.1, math.pi - 0.1, math.pi - 0.2])
    )


def test_phase_losses_ignore_whole_turns_and_see_shifts():
    target = torch.rand(2, 9, 7) * 6 - 3
    turns = torch.randint(-2, 3, target.shape) * 2 * math.pi
    for loss in phase_losses(target + turns, target):
        assert float(loss) == pytest.approx(0.0, abs=1e-5)
    ip, gd, iaf = phase_losses(target + 0.5, target)  # a constant offset: only the phase itself
    assert float(ip) == pytest.approx(0.5, abs=1e-5)
    assert float(gd) == pytest.approx(0.0, abs=1e-5) and float(iaf) == pytest.approx(0.0, abs=1e-5)


def test_spectral_convergence():
    a = torch.rand(2, 5, 6) + 0.1
    assert float(spectral_convergence(a, a)) == 0.0
    assert float(spectral_convergence(torch.zeros_like(a), a)) == pytest.approx(1.0)


def test_a_segment_and_its_targets_are_the_recordings_frames():
    """A batch's mels, target samples and target STFT are exactly the whole recording's, at
    the segment's place (the STFT from the context around it, not a zero-padded segment)."""
    model_config = IstftVocoderConfig()
    torch.manual_seed(0)
    waveform = torch.randn(30 * 200 + 57) * 0.1
    frames_total = waveform.numel() // 200 + 1
    features = torch.arange(frames_total, dtype=torch.float)[:, None].expand(-1, 80)
    corpus = VocoderCorpus([features], [waveform], 200)
    loss = VocoderLoss(VocoderLossConfig(), tts_feature_config(16000), model_config)
    whole = torch.stft(
        waveform,
        800,
        200,
        800,
        torch.hann_window(800),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (401, frames_total)
    generator = torch.Generator().manual_seed(1)
    feats, target, context = corpus.batch(8, 10, 800, generator)
    assert feats.shape == (8, 10, 80) and target.shape == (8, 9 * 200)
    for i in range(8):
        start = int(feats[i, 0, 0])
        torch.testing.assert_close(feats[i, :, 0], torch.arange(start, start + 10.0))
        torch.testing.assert_close(target[i], waveform[start * 200 : (start + 9) * 200])
        spec = loss.target_spectrum(context[i : i + 1])[0]  # (401, 10)
        torch.testing.assert_close(spec, whole[:, start : start + 10], atol=1e-4, rtol=1e-4)


def test_the_loss_is_zero_for_the_target_itself():
    model_config = IstftVocoderConfig()
    loss = VocoderLoss(VocoderLossConfig(), tts_feature_config(16000), model_config)
    torch.manual_seed(0)
    waveform = torch.randn(1, 20 * 200 + 800) * 0.1
    spec = loss.target_spectrum(waveform)  # (1, 401, 21)
    target = waveform[:, 400 : 400 + 20 * 200]
    total, parts = loss(target, target, spec.abs().clamp(min=1e-5).log(), spec.angle(), spec)
    assert float(total) == pytest.approx(0.0, abs=1e-4)
    assert set(parts) == {"sc", "stft_mag", "mel", "magnitude", "phase_ip", "phase_gd", "phase_iaf"}
    noisy, _ = loss(
        target + 0.05 * torch.randn_like(target), target, spec.abs().log(), spec.angle() + 1.0, spec
    )
    assert float(noisy) > 1.0
