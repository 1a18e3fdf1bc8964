"""Log-mel settings, and the same log-mels computed in NumPy alone.

:class:`FeatureConfig` is saved in every checkpoint; :class:`speechseq.features.FeatureExtractor`
computes its features in torch. :func:`log_mel_features` computes them in NumPy, for the path
that transcribes a short file without importing torch (:mod:`speechseq.asr.lite`): importing
torch takes longer than transcribing a few seconds of speech. The two agree within float32
rounding (tested), and both follow librosa's framing and Slaney mel filters.

Example:
    >>> config = FeatureConfig()
    >>> log_mel_features(np.zeros(16000, np.float32), config).shape
    (101, 80)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["LOG_FLOOR", "FeatureConfig", "log_mel_features", "mel_filterbank_np"]

LOG_FLOOR = 1e-6  # added before log so silence gives a finite value (about -13.8)


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings; saved in every checkpoint so inference extracts the same features.

    Args:
        sample_rate: audio is resampled to this rate.
        n_fft: FFT size in samples (400 = 25 ms at 16 kHz).
        win_length: window length in samples.
        hop_length: hop in samples (160 = 10 ms at 16 kHz).
        n_mels: mel channels.
        f_min, f_max: mel range in Hz (``f_max`` None = Nyquist).
        normalize: ``"utterance"`` (per-utterance mean/variance), ``"global"`` (corpus
            statistics in ``mean``/``std``) or ``"none"``.
        mean, std: corpus statistics per mel channel, for ``normalize="global"``.
    """

    sample_rate: int = 16000
    n_fft: int = 400
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None
    normalize: str = "utterance"
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.normalize not in ("utterance", "global", "none"):
            raise ValueError(f"normalize must be utterance, global or none, not {self.normalize!r}")
        # YAML and checkpoints give lists; keep the dataclass hashable.
        object.__setattr__(self, "mean", tuple(float(x) for x in self.mean))
        object.__setattr__(self, "std", tuple(float(x) for x in self.std))

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        return cls(**d)

    def with_stats(self, mean: torch.Tensor, std: torch.Tensor) -> FeatureConfig:
        """A copy holding corpus statistics (n_mels,) each, for global normalisation."""
        return replace(self, mean=tuple(mean.tolist()), std=tuple(std.tolist()))

    def mel_settings(self) -> FeatureConfig:
        """The settings that make two configs' mels the same thing, without their
        normalisation: equal for a voice and a vocoder that fit each other."""
        return replace(self, normalize="none", mean=(), std=())


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    mel = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, hz)


def mel_filterbank_np(
    n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """Slaney-style mel filters, as :func:`speechseq.functional.mel_filterbank` gives them.

    Returns:
        (n_fft // 2 + 1, n_mels) float32 filter matrix.
    """
    top = sample_rate / 2 if f_max is None else f_max
    freqs = np.linspace(0.0, sample_rate // 2, n_fft // 2 + 1)  # (F,) bin centres in Hz
    low, high = _hz_to_mel(np.array(f_min)), _hz_to_mel(np.array(top))
    edges = _mel_to_hz(np.linspace(low, high, n_mels + 2))  # (n_mels + 2,) filter edges in Hz
    widths = np.diff(edges)  # (n_mels + 1,)
    slopes = edges[None, :] - freqs[:, None]  # (F, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]  # (F, n_mels)
    falling = slopes[:, 2:] / widths[1:]  # (F, n_mels)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= 2.0 / (edges[2:] - edges[:-2])  # Slaney norm: equal area per filter
    return filters.astype(np.float32)


def log_mel_features(
    waveform: np.ndarray, config: FeatureConfig, fbank: np.ndarray | None = None
) -> np.ndarray:
    """Normalised log-mel features of one utterance, as
    :class:`~speechseq.features.FeatureExtractor` computes them.

    Args:
        waveform: (T,) float samples at ``config.sample_rate``.
        config: the feature settings.
        fbank: (n_fft // 2 + 1, n_mels) filters from :func:`mel_filterbank_np`, if already built.

    Returns:
        (T // hop_length + 1, n_mels) float32 features.
    """
    c = config
    if fbank is None:
        fbank = mel_filterbank_np(c.n_fft, c.n_mels, c.sample_rate, c.f_min, c.f_max)
    half = c.n_fft // 2
    padded = np.pad(np.asarray(waveform, np.float32), (half, half))  # centred frames, zeros
    frames = np.lib.stride_tricks.sliding_window_view(padded, c.n_fft)[:: c.hop_length]
    window = np.zeros(c.n_fft, np.float32)  # periodic Hann, centred in the FFT as torch.stft does
    left = (c.n_fft - c.win_length) // 2
    n = np.arange(c.win_length)
    window[left : left + c.win_length] = 0.5 - 0.5 * np.cos(2 * np.pi * n / c.win_length)
    spectrum = np.fft.rfft(frames * window, axis=-1)  # (frames, F)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    feats = np.log(power @ fbank + LOG_FLOOR)  # (frames, n_mels)
    if c.normalize == "utterance":
        std = np.maximum(feats.std(axis=0, keepdims=True), 1e-3)
        feats = (feats - feats.mean(axis=0, keepdims=True)) / std
    elif c.normalize == "global":
        feats = (feats - np.asarray(c.mean, np.float32)) / np.asarray(c.std, np.float32)
    return feats.astype(np.float32)
