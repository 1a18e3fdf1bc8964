"""The neural vocoder behind the :class:`Vocoder` interface, and the choice of vocoder for a voice.

Example:
    >>> vocoder = NeuralVocoder.from_file("exp/vocoder/best.pt", voice_feature_config)
    >>> waveform = vocoder(mel)          # (T, n_mels) → ((T - 1) * hop_length,) samples
    >>> vocoder = choose_vocoder(None, voice_state, voice_feature_config)   # the voice's own
"""

from __future__ import annotations

from pathlib import Path

import torch

from speechseq.checkpoint import load_vocoder
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.models import IstftVocoder
from speechseq.tts.vocoder.base import Vocoder, log_mel_of
from speechseq.tts.vocoder.griffin_lim import GriffinLimVocoder

__all__ = ["GRIFFIN_LIM", "NeuralVocoder", "choose_vocoder"]

GRIFFIN_LIM = "griffin-lim"


class NeuralVocoder(Vocoder):
    """A trained :class:`~speechseq.models.vocoder.IstftVocoder` as a vocoder.

    It takes features normalised as ``feature_config`` (the voice's) and renormalises them as
    its own ``vocoder_features`` if the two differ, so one vocoder serves every voice with the
    same mel settings.

    Args:
        model: the network.
        vocoder_features: the features it was trained on.
        feature_config: the features it is given (default: ``vocoder_features``).

    Raises:
        SpeechseqError: the two configs describe different mel spectrograms (rate, FFT, hop,
            window, bands).
    """

    def __init__(
        self,
        model: IstftVocoder,
        vocoder_features: FeatureConfig,
        feature_config: FeatureConfig | None = None,
    ) -> None:
        feature_config = feature_config or vocoder_features
        super().__init__(feature_config)
        if feature_config.mel_settings() != vocoder_features.mel_settings():
            raise SpeechseqError(
                "the vocoder was trained on other mel settings than the voice's "
                f"({vocoder_features.mel_settings()} vs {feature_config.mel_settings()})"
            )
        self.model = model.eval()
        self.vocoder_features = vocoder_features
        self._renormalise = (feature_config.mean, feature_config.std, feature_config.normalize) != (
            vocoder_features.mean,
            vocoder_features.std,
            vocoder_features.normalize,
        )

    @classmethod
    def from_file(
        cls, source: str | Path | dict, feature_config: FeatureConfig | None = None
    ) -> NeuralVocoder:
        """Load a vocoder checkpoint (or a voice checkpoint's ``vocoder`` part)."""
        model, vocoder_features, _ = load_vocoder(source)
        return cls(model, vocoder_features, feature_config)

    def _to_own(self, features: torch.Tensor) -> torch.Tensor:
        log_mel = log_mel_of(features, self.feature_config)
        own = self.vocoder_features
        if own.normalize != "global":
            return log_mel
        mean = torch.tensor(own.mean, dtype=features.dtype, device=features.device)
        std = torch.tensor(own.std, dtype=features.dtype, device=features.device)
        return (log_mel - mean) / std

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Args:
            features: (T, n_mels) or (B, T, n_mels) features, normalised as ``feature_config``.

        Returns:
            ((T - 1) * hop_length,) or (B, (T - 1) * hop_length) samples in [-1, 1].
        """
        single = features.dim() == 2
        x = features[None] if single else features  # (B, T, n_mels)
        x = x.float()
        if self._renormalise:
            x = self._to_own(x)
        waveform = self.model.infer(x).clamp(-1.0, 1.0)  # (B, (T - 1) * hop)
        return waveform[0] if single else waveform


def choose_vocoder(
    choice: str | Path | None, voice_state: dict, feature_config: FeatureConfig
) -> Vocoder:
    """The vocoder a voice speaks with.

    Args:
        choice: None (the voice's own: the neural vocoder its checkpoint carries, else
            Griffin-Lim), ``"griffin-lim"``, or a vocoder checkpoint file.
        voice_state: the voice checkpoint's dict.
        feature_config: the voice's features.

    Raises:
        SpeechseqError: the vocoder file is not one, or does not fit the voice's mels.
    """
    if choice is not None and str(choice) == GRIFFIN_LIM:
        return GriffinLimVocoder(feature_config)
    if choice is not None:
        return NeuralVocoder.from_file(choice, feature_config)
    if "vocoder" in voice_state:
        return NeuralVocoder.from_file(voice_state["vocoder"], feature_config)
    return GriffinLimVocoder(feature_config)
