"""Tests for speechseq.functional: the stateless feature maths, checked against librosa."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from speechseq import functional as F

SR, N_FFT, HOP, WIN, N_MELS = 16000, 400, 160, 400, 80

# Float32 STFT/matmul against librosa's float32 path: relative error of the energies stays well
# below 1e-4, so this bound only trips on a real difference (wrong window, framing or scale).
POWER_RTOL = 1e-3
# Filter weights are ~1e-3 in size; torchaudio and librosa agree to float32 rounding.
FBANK_ATOL = 1e-6


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(8123, generator=g)  # (T,), deliberately not a multiple of the hop


def _window() -> torch.Tensor:
    return torch.hann_window(WIN, periodic=True)


def test_mel_filterbank_matches_librosa_slaney():
    ours = F.mel_filterbank(N_FFT, N_MELS, SR)  # (n_fft // 2 + 1, n_mels)
    ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, htk=False, norm="slaney").T

    assert ours.shape == (N_FFT // 2 + 1, N_MELS)
    np.testing.assert_allclose(ours.numpy(), ref, atol=FBANK_ATOL)


def test_mel_filterbank_respects_frequency_range():
    ours = F.mel_filterbank(N_FFT, 40, SR, f_min=300.0, f_max=4000.0)
    ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=40, fmin=300.0, fmax=4000.0).T

    np.testing.assert_allclose(ours.numpy(), ref, atol=FBANK_ATOL)
    freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
    assert not ours[torch.from_numpy(freqs > 4000)].any()
    assert not ours[torch.from_numpy(freqs < 300)].any()


def test_power_spectrogram_matches_librosa(noise):
    ours = F.power_spectrogram(noise, N_FFT, HOP, WIN, _window())  # (F, frames)
    ref = (
        np.abs(
            librosa.stft(
                noise.numpy(),
                n_fft=N_FFT,
                hop_length=HOP,
                win_length=WIN,
                center=True,
                pad_mode="constant",
            )
        )
        ** 2
    )

    assert ours.shape == ref.shape == (N_FFT // 2 + 1, 8123 // HOP + 1)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=POWER_RTOL, atol=1e-8)


def test_power_spectrogram_keeps_leading_dims(noise):
    batch = torch.stack([noise, 2 * noise]).reshape(2, 1, -1)  # (2, 1, T)

    out = F.power_spectrogram(batch, N_FFT, HOP, WIN, _window())  # (2, 1, F, frames)

    assert out.shape == (2, 1, N_FFT // 2 + 1, 8123 // HOP + 1)
    torch.testing.assert_close(out[1, 0], 4 * out[0, 0], rtol=1e-4, atol=1e-6)


def test_log_mel_spectrogram_is_time_first_and_batched(noise):
    fbank = F.mel_filterbank(N_FFT, N_MELS, SR)
    one = F.log_mel_spectrogram(noise, fbank, N_FFT, HOP, WIN, _window())  # (frames, n_mels)
    two = F.log_mel_spectrogram(
        torch.stack([noise, noise.flip(0)]), fbank, N_FFT, HOP, WIN, _window()
    )  # (2, frames, n_mels)

    assert one.shape == (8123 // HOP + 1, N_MELS)
    assert two.shape == (2, *one.shape)
    torch.testing.assert_close(two[0], one)


def test_log_mel_of_silence_is_the_log_floor():
    fbank = F.mel_filterbank(N_FFT, N_MELS, SR)

    out = F.log_mel_spectrogram(torch.zeros(1600), fbank, N_FFT, HOP, WIN, _window())

    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.full_like(out, float(np.log(F.LOG_FLOOR))))


# --- normalisation ------------------------------------------------------------------------------


def test_normalize_utterance_gives_zero_mean_unit_std_per_channel():
    g = torch.Generator().manual_seed(1)
    feats = 3.0 * torch.randn(200, 8, generator=g) + torch.arange(8.0) * 5  # (frames, n_mels)

    out = F.normalize_utterance(feats)

    assert out.shape == feats.shape
    torch.testing.assert_close(out.mean(dim=0), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=0, unbiased=False), torch.ones(8), atol=1e-4, rtol=0)


def test_normalize_utterance_of_constant_channel_is_finite():
    feats = torch.full((50, 4), -13.8)

    out = F.normalize_utterance(feats)

    assert torch.isfinite(out).all()
    assert torch.equal(out, out[:1].expand_as(out)), "a constant channel stays constant"
    assert out.abs().max() < 1e-2, "float rounding in the mean must not be amplified"


def test_normalize_global_uses_given_stats():
    feats = torch.tensor([[1.0, 10.0], [3.0, 30.0]])  # (frames=2, n_mels=2)
    mean, std = torch.tensor([2.0, 20.0]), torch.tensor([1.0, 10.0])

    out = F.normalize_global(feats, mean, std)

    torch.testing.assert_close(out, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    batched = F.normalize_global(feats.expand(3, 2, 2), mean, std)  # (B, frames, n_mels)
    torch.testing.assert_close(batched[2], out)


# --- SpecAugment masks --------------------------------------------------------------------------


def _masked(out: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    changed = out != before
    assert (out[changed] == 0).all(), "masked values must be set to exactly zero"
    return changed


def test_spec_augment_time_masks_stay_inside_valid_length():
    lengths = torch.tensor([100, 40, 7])
    feats = torch.full((3, 100, 16), 5.0)  # padding filled with 5 too, so leaks are visible
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        out = F.spec_augment(feats, lengths, 0, 0, time_masks=3, time_width=0.5, generator=g)
        changed = _masked(out, feats)
        for b, length in enumerate(lengths.tolist()):
            assert not changed[b, length:].any()
            # A time mask covers whole frames: every channel of a touched frame is zero.
            frames = changed[b].any(dim=1)
            assert changed[b, frames].all()
    assert torch.equal(feats, torch.full((3, 100, 16), 5.0)), "input must not be modified"


def test_spec_augment_time_masks_can_reach_the_whole_utterance():
    # time_width=1.0 allows masking every frame; over many draws all frames get hit.
    g = torch.Generator().manual_seed(0)
    feats = torch.ones(1, 30, 4)
    hit = torch.zeros(30, dtype=torch.bool)
    for _ in range(200):
        out = F.spec_augment(feats, torch.tensor([30]), 0, 0, 1, 1.0, generator=g)
        hit |= (out[0] == 0).all(dim=1)
    assert hit.all()


def test_spec_augment_frequency_masks_cover_whole_channels_and_respect_width():
    lengths = torch.tensor([50, 20])
    feats = torch.ones(2, 50, 40)
    g = torch.Generator().manual_seed(3)
    seen_mask = False
    for _ in range(50):
        out = F.spec_augment(
            feats, lengths, freq_masks=1, freq_width=6, time_masks=0, time_width=0.0, generator=g
        )
        changed = _masked(out, feats)
        for b, length in enumerate(lengths.tolist()):
            channels = changed[b, :length].any(dim=0)  # (n_mels,)
            assert changed[b, :length, channels].all()
            width = int(channels.sum())
            assert width <= 6
            if width:
                seen_mask = True
                idx = channels.nonzero().flatten()
                assert int(idx[-1] - idx[0]) + 1 == width, "one mask is one contiguous band"
    assert seen_mask


def test_spec_augment_is_reproducible_with_a_generator():
    feats = torch.randn(2, 60, 20, generator=torch.Generator().manual_seed(5))
    lengths = torch.tensor([60, 45])

    a = F.spec_augment(feats, lengths, 2, 5, 2, 0.2, torch.Generator().manual_seed(7))
    b = F.spec_augment(feats, lengths, 2, 5, 2, 0.2, torch.Generator().manual_seed(7))
    c = F.spec_augment(feats, lengths, 2, 5, 2, 0.2, torch.Generator().manual_seed(8))

    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_spec_augment_with_no_masks_is_a_copy():
    feats = torch.randn(2, 10, 8)

    out = F.spec_augment(feats, torch.tensor([10, 5]), 0, 10, 0, 0.5)

    assert torch.equal(out, feats)
    assert out is not feats


def test_spec_augment_masks_can_reach_the_last_channel_and_frame():
    g = torch.Generator().manual_seed(0)
    hit_channel = hit_frame = 0
    for _ in range(300):
        out = F.spec_augment(torch.ones(1, 20, 10), torch.tensor([20]), 1, 3, 1, 0.2, generator=g)
        hit_channel += int(out[0, 0, -1] == 0)
        hit_frame += int(out[0, -1, 0] == 0)
    assert hit_channel > 10 and hit_frame > 10


def test_warp_filterbank_moves_a_tone_by_the_factor():
    """A 1 kHz tone through filters warped by alpha lands where a tone at alpha kHz lands
    unwarped; alpha 1 changes nothing, and Nyquist stays put."""
    rate, n_fft = 16000, 512
    fbank = F.mel_filterbank(n_fft, 80, rate)
    assert F.warp_filterbank(fbank, 1.0, rate) is fbank
    window = torch.hann_window(n_fft)
    t = torch.arange(rate) / rate

    def peak_band(freq: float, filters: torch.Tensor) -> int:
        tone = torch.sin(2 * torch.pi * freq * t)
        mel = F.log_mel_spectrogram(tone, filters, n_fft, 160, n_fft, window)  # (frames, 80)
        return int(mel[10:-10].mean(0).argmax())

    for alpha in (0.9, 1.1):
        warped = F.warp_filterbank(fbank, alpha, rate)
        assert warped.shape == fbank.shape and (warped >= 0).all()
        assert abs(peak_band(1000.0, warped) - peak_band(1000.0 * alpha, fbank)) <= 1
        assert peak_band(1000.0, warped) != peak_band(1000.0, fbank)
        torch.testing.assert_close(warped[-1], fbank[-1])  # Nyquist maps to itself
