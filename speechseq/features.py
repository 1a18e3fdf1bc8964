"""Feature extraction modules built from a :class:`FeatureConfig`.

Example:
    >>> config = FeatureConfig()
    >>> extractor = FeatureExtractor(config)
    >>> extractor(torch.zeros(16000)).shape
    torch.Size([101, 80])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speechseq import functional as F
from speechseq.mel import FeatureConfig

__all__ = ["FeatureConfig", "FeatureExtractor", "SpecAugment", "SpecAugmentConfig"]


class FeatureExtractor(nn.Module):
    """Waveform → normalised log-mel features.

    Args:
        config: the feature settings.
    """

    # buffers registered in __init__ (mean and std with global normalisation only)
    window: torch.Tensor
    fbank: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer(
            "window", torch.hann_window(c.win_length, periodic=True), persistent=False
        )
        self.register_buffer(
            "fbank",
            F.mel_filterbank(c.n_fft, c.n_mels, c.sample_rate, c.f_min, c.f_max),
            persistent=False,
        )
        if c.normalize == "global":
            if len(c.mean) != c.n_mels or len(c.std) != c.n_mels:
                raise ValueError("global normalisation needs mean and std for every mel channel")
            self.register_buffer("mean", torch.tensor(c.mean), persistent=False)
            self.register_buffer("std", torch.tensor(c.std), persistent=False)

    def log_mel(self, waveform: torch.Tensor, warp: float = 1.0) -> torch.Tensor:
        """(..., T) samples → (..., frames, n_mels) un-normalised log-mels; ``warp`` ≠ 1 warps
        the frequency axis first (:func:`speechseq.functional.warp_filterbank`, training only)."""
        c = self.config
        fbank = F.warp_filterbank(self.fbank, warp, c.sample_rate) if warp != 1.0 else self.fbank
        return F.log_mel_spectrogram(
            waveform, fbank, c.n_fft, c.hop_length, c.win_length, self.window
        )

    def forward(self, waveform: torch.Tensor, warp: float = 1.0) -> torch.Tensor:
        """Args:
            waveform: (T,) samples of one utterance at ``config.sample_rate``.
            warp: vocal-tract-length warp factor (1 = none).

        Returns:
            (frames, n_mels) features.
        """
        feats = self.log_mel(waveform, warp)  # (frames, n_mels)
        if self.config.normalize == "utterance":
            feats = F.normalize_utterance(feats)
        elif self.config.normalize == "global":
            feats = F.normalize_global(feats, self.mean, self.std)
        return feats

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.config.hop_length + 1


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment masking applied to training batches (LibriSpeech "LD"-like defaults)."""

    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_width: float = 0.05


class SpecAugment(nn.Module):
    """Frequency and time masking on a padded (B, T, n_mels) batch; identity in eval mode."""

    def __init__(self, config: SpecAugmentConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if not self.training:
            return features
        c = self.config
        return F.spec_augment(
            features, lengths, c.freq_masks, c.freq_width, c.time_masks, c.time_width, generator
        )
