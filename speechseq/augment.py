"""On-the-fly waveform augmentation for training: speed perturbation, additive noise at a random
SNR and simulated room reverberation.

Every draw comes from a generator seeded by (seed, epoch, utterance index), so DataLoader workers
need no shared state and a resumed run sees the same augmented audio as an uninterrupted one.

Example:
    >>> augmenter = WaveformAugmenter(AugmentConfig(), sample_rate=16000)
    >>> noisy = augmenter(waveform, torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio.functional as AF

__all__ = ["AugmentConfig", "WaveformAugmenter", "item_generator"]


@dataclass(frozen=True)
class AugmentConfig:
    """What to apply to each training utterance, and how often.

    Args:
        speed_prob: chance of speed perturbation (tempo and pitch together, Kaldi-style).
        speeds: speed factors to choose from (1.1 = 10 % faster).
        noise_prob: chance of adding noise.
        snr_low, snr_high: signal-to-noise ratio range in dB, drawn uniformly.
        reverb_prob: chance of convolving with a simulated room impulse response.
        rt60_low, rt60_high: reverberation time range in seconds.
        gain_db: random gain range ± this many dB (0 = off).
        vtlp_prob: chance of vocal-tract-length perturbation, a warp of the features' frequency
            axis (:meth:`WaveformAugmenter.warp_factor`); 0 = off.
        vtlp_low, vtlp_high: its warp factor's range, drawn uniformly.
    """

    speed_prob: float = 0.6
    speeds: tuple[float, ...] = (0.85, 0.9, 0.95, 1.05, 1.1, 1.15)
    noise_prob: float = 0.5
    snr_low: float = 5.0
    snr_high: float = 35.0
    reverb_prob: float = 0.3
    rt60_low: float = 0.15
    rt60_high: float = 0.8
    gain_db: float = 6.0
    vtlp_prob: float = 0.0
    vtlp_low: float = 0.9
    vtlp_high: float = 1.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "speeds", tuple(float(s) for s in self.speeds))


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator that depends only on (seed, epoch, index)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 10_000_019 + index)


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def colored_noise(num_samples: int, exponent: float, g: torch.Generator) -> torch.Tensor:
    """Gaussian noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown).

    Returns:
        (num_samples,) noise with unit RMS.
    """
    white = torch.randn(num_samples, generator=g)
    spectrum = torch.fft.rfft(white)
    freqs = torch.arange(spectrum.numel(), dtype=torch.float32).clamp(min=1.0)
    noise = torch.fft.irfft(spectrum / freqs.pow(exponent / 2), n=num_samples)
    return noise / noise.square().mean().sqrt().clamp(min=1e-8)


def room_impulse_response(sample_rate: int, rt60: float, g: torch.Generator) -> torch.Tensor:
    """A simple synthetic RIR: a direct path then exponentially decaying noise (Sabine decay:
    60 dB over ``rt60`` seconds), with a few millisecond gap before the reverberant tail.

    Returns:
        (L,) impulse response with a unit direct path.
    """
    length = int(rt60 * sample_rate)
    t = torch.arange(length, dtype=torch.float32) / sample_rate
    decay = torch.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: amplitude falls 60 dB at rt60
    tail = torch.randn(length, generator=g) * decay
    delay = int(_uniform(g, 0.002, 0.01) * sample_rate)
    tail[:delay] = 0.0
    direct_to_reverb = _uniform(g, 0.3, 1.0)
    rir = tail / tail.square().sum().sqrt().clamp(min=1e-8) * (1 - direct_to_reverb) * 3
    rir[0] = 1.0
    return rir


class WaveformAugmenter:
    """Apply :class:`AugmentConfig` to (T,) waveforms.

    Args:
        config: probabilities and ranges.
        sample_rate: the waveforms' rate.
    """

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        self.config = config
        self.sample_rate = sample_rate

    def speed(self, waveform: torch.Tensor, factor: float) -> torch.Tensor:
        """Play ``factor`` times faster (shorter, higher) by resampling."""
        # Rates rounded to 100 Hz keep the resampling kernel small (gcd ≥ 100).
        new_rate = int(round(self.sample_rate / factor / 100) * 100)
        return AF.resample(waveform, self.sample_rate, new_rate)

    def add_noise(self, waveform: torch.Tensor, snr_db: float, g: torch.Generator) -> torch.Tensor:
        noise = colored_noise(waveform.numel(), _uniform(g, 0.0, 2.0), g)
        signal_rms = waveform.square().mean().sqrt()
        return waveform + noise * signal_rms / (10 ** (snr_db / 20))

    def reverberate(self, waveform: torch.Tensor, rt60: float, g: torch.Generator) -> torch.Tensor:
        rir = room_impulse_response(self.sample_rate, rt60, g)
        wet = AF.fftconvolve(waveform, rir)[: waveform.numel()]
        return wet * waveform.abs().max() / wet.abs().max().clamp(min=1e-8)

    def __call__(self, waveform: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Args:
            waveform: (T,) samples.
            g: this utterance's generator (:func:`item_generator`).

        Returns:
            (T',) augmented samples (T' differs from T after speed perturbation).
        """
        c = self.config
        # Draw every decision up front so each one's randomness is independent of the others.
        draws = torch.rand(4, generator=g).tolist()
        if draws[0] < c.speed_prob and c.speeds:
            factor = c.speeds[int(torch.randint(len(c.speeds), (), generator=g))]
            waveform = self.speed(waveform, factor)
        if draws[1] < c.reverb_prob:
            waveform = self.reverberate(waveform, _uniform(g, c.rt60_low, c.rt60_high), g)
        if draws[2] < c.noise_prob:
            waveform = self.add_noise(waveform, _uniform(g, c.snr_low, c.snr_high), g)
        if c.gain_db > 0:
            waveform = waveform * 10 ** (_uniform(g, -c.gain_db, c.gain_db) / 20)
        peak = waveform.abs().max()
        if peak > 1.0 or not math.isfinite(float(peak)):
            waveform = waveform / peak.clamp(min=1e-8)
        return waveform

    def warp_factor(self, g: torch.Generator) -> float:
        """This utterance's vocal-tract-length warp for its features (1.0 = none). Call it after
        the waveform augmentation, with the same generator; with ``vtlp_prob`` 0 it draws
        nothing, so configs without VTLP keep their random streams.
        """
        c = self.config
        if c.vtlp_prob <= 0:
            return 1.0
        if float(torch.rand((), generator=g)) >= c.vtlp_prob:
            return 1.0
        return _uniform(g, c.vtlp_low, c.vtlp_high)
