"""Stateless feature maths: log-mel filterbanks, normalisation and SpecAugment masks.

Big transforms are composed from small ones (log-mel = power spectrogram + mel scale + log),
following torchaudio.functional.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF

from speechseq.mel import LOG_FLOOR

__all__ = [
    "mel_filterbank",
    "warp_filterbank",
    "power_spectrogram",
    "log_mel_spectrogram",
    "normalize_utterance",
    "normalize_global",
    "spec_augment",
]


def mel_filterbank(
    n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Slaney-style mel filters (same as librosa's defaults).

    Returns:
        (n_fft // 2 + 1, n_mels) filter matrix.
    """
    return AF.melscale_fbanks(
        n_freqs=n_fft // 2 + 1,
        f_min=f_min,
        f_max=f_max if f_max is not None else sample_rate / 2,
        n_mels=n_mels,
        sample_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )


def warp_filterbank(
    fbank: torch.Tensor, alpha: float, sample_rate: int, boundary: float = 0.8
) -> torch.Tensor:
    """The filters of ``fbank`` seen through a vocal-tract-length warp of the frequency axis
    (VTLP, Jaitly & Hinton 2013): energy at frequency f counts as if it were at f·alpha, up to a
    cut-off (``boundary`` × Nyquist × min(alpha, 1) / alpha); above it the warp is linear so that
    Nyquist stays put. alpha > 1 moves formants up (a shorter vocal tract), < 1 down.

    Args:
        fbank: (n_freqs, n_mels) filters over linear frequency bins 0 … Nyquist.
        alpha: warp factor (1 = no change; 0.9–1.1 is typical).
        sample_rate: the audio's rate.
        boundary: where the linear part starts, as a fraction of Nyquist.

    Returns:
        (n_freqs, n_mels) filters to apply to the unwarped power spectrum.
    """
    if alpha == 1.0:
        return fbank
    n_freqs = fbank.shape[0]
    nyquist = sample_rate / 2
    freqs = torch.linspace(0.0, nyquist, n_freqs, dtype=torch.float64)  # (n_freqs,)
    cutoff = boundary * nyquist * min(alpha, 1.0) / alpha
    above = alpha * cutoff + (nyquist - alpha * cutoff) * (freqs - cutoff) / (nyquist - cutoff)
    warped = torch.where(freqs <= cutoff, freqs * alpha, above)  # (n_freqs,) in Hz
    position = (warped / nyquist * (n_freqs - 1)).clamp(0, n_freqs - 1)  # fractional bin
    low = position.floor().long()
    high = (low + 1).clamp(max=n_freqs - 1)
    frac = (position - low).to(fbank.dtype)[:, None]  # (n_freqs, 1)
    return fbank[low] * (1 - frac) + fbank[high] * frac


def power_spectrogram(
    waveform: torch.Tensor, n_fft: int, hop_length: int, win_length: int, window: torch.Tensor
) -> torch.Tensor:
    """|STFT|² with centred, zero-padded frames (librosa's default framing).

    Args:
        waveform: (..., T) samples.

    Returns:
        (..., n_fft // 2 + 1, frames) power spectrogram.
    """
    shape = waveform.shape
    spec = torch.stft(
        waveform.reshape(-1, shape[-1]),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (N, F, frames)
    power = spec.real.square() + spec.imag.square()
    return power.reshape(*shape[:-1], *power.shape[-2:])


def log_mel_spectrogram(
    waveform: torch.Tensor,
    fbank: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int,
    window: torch.Tensor,
) -> torch.Tensor:
    """Natural-log mel energies.

    Args:
        waveform: (..., T) samples.
        fbank: (n_fft // 2 + 1, n_mels) from :func:`mel_filterbank`.

    Returns:
        (..., frames, n_mels) log-mel features, time first as the models consume them.
    """
    power = power_spectrogram(waveform, n_fft, hop_length, win_length, window)  # (..., F, frames)
    mel = torch.matmul(power.transpose(-1, -2), fbank)  # (..., frames, n_mels)
    return torch.log(mel + LOG_FLOOR)


def normalize_utterance(features: torch.Tensor, min_std: float = 1e-3) -> torch.Tensor:
    """Zero mean, unit variance per mel channel over one utterance's frames.

    Args:
        features: (frames, n_mels).
        min_std: floor on the divisor, so a (near-)constant channel stays near zero instead of
            amplifying float rounding.
    """
    mean = features.mean(dim=0, keepdim=True)
    std = features.std(dim=0, keepdim=True, unbiased=False)
    return (features - mean) / std.clamp(min=min_std)


def normalize_global(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalise (..., n_mels) features with corpus statistics (n_mels,) each."""
    return (features - mean) / std


def spec_augment(
    features: torch.Tensor,
    lengths: torch.Tensor,
    freq_masks: int,
    freq_width: int,
    time_masks: int,
    time_width: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment frequency and time masking (no time warping), set to zero (the mean after
    normalisation).

    Args:
        features: (B, T, n_mels) padded batch.
        lengths: (B,) valid frames per utterance.
        freq_masks: number of frequency masks per utterance.
        freq_width: widest frequency mask, in mel channels.
        time_masks: number of time masks per utterance.
        time_width: widest time mask as a fraction of the utterance's length.
        generator: random source (the global one if None).

    Returns:
        (B, T, n_mels) masked copy.
    """
    out = features.clone()
    batch, _, n_mels = features.shape
    for b in range(batch):
        length = int(lengths[b])
        for _ in range(freq_masks):
            width = int(torch.randint(0, min(freq_width, n_mels) + 1, (1,), generator=generator))
            start = int(torch.randint(0, n_mels - width + 1, (1,), generator=generator))
            out[b, :, start : start + width] = 0.0
        max_t = min(length, int(time_width * length))
        for _ in range(time_masks):
            width = int(torch.randint(0, max_t + 1, (1,), generator=generator))
            start = int(torch.randint(0, length - width + 1, (1,), generator=generator))
            out[b, start : start + width, :] = 0.0
    return out
