"""What every vocoder is: features as the acoustic model predicts them → waveform.

A vocoder is built from the :class:`~speechseq.features.FeatureConfig` the acoustic model was
trained on (stored in its checkpoint): it undoes that config's normalisation and turns the mel
frames into samples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from speechseq import functional as F
from speechseq.features import FeatureConfig

__all__ = ["Vocoder", "log_mel_of", "mel_to_power"]


class Vocoder(nn.Module, ABC):
    """Features as the acoustic model predicts them → waveform.

    Subclasses implement :meth:`forward`; :attr:`sample_rate` and :attr:`hop_length` say what
    the output is.

    Args:
        feature_config: the settings the features were computed with.
    """

    def __init__(self, feature_config: FeatureConfig) -> None:
        super().__init__()
        if feature_config.normalize == "utterance":
            raise ValueError(
                "per-utterance normalised features cannot be turned back into audio; "
                "train text-to-speech with features.normalize global or none"
            )
        self.feature_config = feature_config

    @property
    def sample_rate(self) -> int:
        return self.feature_config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.feature_config.hop_length

    @abstractmethod
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Args:
            features: (T, n_mels) or (B, T, n_mels) features, normalised as ``feature_config``.

        Returns:
            ((T - 1) * hop_length,) or (B, (T - 1) * hop_length) samples in [-1, 1].
        """


def log_mel_of(features: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Undo normalisation: (..., T, n_mels) features → (..., T, n_mels) natural-log mel power."""
    if config.normalize == "global":
        mean = torch.tensor(config.mean, dtype=features.dtype, device=features.device)
        std = torch.tensor(config.std, dtype=features.dtype, device=features.device)
        features = features * std + mean
    return features


def mel_to_power(features: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Undo normalisation and log: (..., T, n_mels) features → (..., T, n_mels) mel power."""
    return (log_mel_of(features, config).exp() - F.LOG_FLOOR).clamp(min=0.0)
