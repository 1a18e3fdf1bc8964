"""The neural vocoder's training losses: what its audio should match, and how.

- **Multi-resolution STFT** (Parallel WaveGAN): spectral convergence and log-magnitude L1 of the
  output waveform against the target at several FFT sizes, so that neither time nor frequency
  resolution alone is fitted.
- **Mel**: L1 between the log-mels of output and target, at the voice's own mel settings.
- **Magnitude and phase of the predicted STFT** (APNet, Ai & Ling 2023): the network's log
  magnitude against the target's, and its phase through anti-wrapping losses on the
  instantaneous phase, the group delay (phase differences across frequency) and the
  instantaneous angular frequency (differences across time). Without an adversarial loss,
  nothing else tells the network what phase is right: the STFT losses above only see
  magnitudes, which many phases fit, and the overlap of frames with wrong relative phases is
  what makes Griffin-Lim sound phasey.

Example:
    >>> loss = VocoderLoss(VocoderLossConfig(), feature_config, model.config)
    >>> total, parts = loss(pred_waveform, target_waveform, log_magnitude, phase, target_spec)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from speechseq import functional as F
from speechseq.features import FeatureConfig
from speechseq.models.vocoder import IstftVocoderConfig

__all__ = ["VocoderLoss", "VocoderLossConfig", "anti_wrap", "phase_losses", "spectral_convergence"]

_MAG_FLOOR = 1e-5


@dataclass(frozen=True)
class VocoderLossConfig:
    """Weights of the vocoder's losses (0 turns one off).

    Args:
        resolutions: (n_fft, hop_length) pairs of the multi-resolution STFT loss (window = n_fft).
        stft_weight: the multi-resolution STFT loss (spectral convergence + log magnitude).
        mel_weight: log-mel L1 of the output waveform.
        magnitude_weight: log-magnitude L1 of the predicted STFT.
        phase_weight: the three anti-wrapping phase losses together.
    """

    resolutions: tuple[tuple[int, int], ...] = field(
        default=((256, 64), (512, 128), (1024, 256), (2048, 512))
    )
    stft_weight: float = 1.0
    mel_weight: float = 1.0
    magnitude_weight: float = 1.0
    phase_weight: float = 1.0

    def __post_init__(self) -> None:  # YAML gives lists; keep the dataclass hashable
        object.__setattr__(self, "resolutions", tuple(tuple(r) for r in self.resolutions))


def _magnitude(waveform: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """(B, T) samples → (B, n_fft // 2 + 1, frames) STFT magnitude, floored."""
    spec = torch.stft(waveform, n_fft, hop, n_fft, window, center=True, return_complex=True)
    return spec.abs().clamp(min=_MAG_FLOOR)


def spectral_convergence(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖|target| - |pred|‖_F / ‖|target|‖_F over the batch, of (B, F, frames) magnitudes."""
    return torch.linalg.norm(target - pred) / torch.linalg.norm(target).clamp(min=1e-8)


def anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """|x| with x first wrapped into [-π, π]: the distance of two angles x apart."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def phase_losses(
    pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """APNet's anti-wrapping phase losses of (B, F, T) phase angles.

    Returns:
        instantaneous phase, group delay (difference along frequency) and instantaneous angular
        frequency (difference along time) losses, each a mean wrapped distance in radians.
    """
    instantaneous = anti_wrap(pred - target).mean()
    group_delay = anti_wrap(torch.diff(pred, dim=1) - torch.diff(target, dim=1)).mean()
    angular_frequency = anti_wrap(torch.diff(pred, dim=2) - torch.diff(target, dim=2)).mean()
    return instantaneous, group_delay, angular_frequency


class VocoderLoss(nn.Module):
    """The weighted sum of the module docstring's losses.

    Args:
        config: the weights and resolutions.
        feature_config: the mel settings of the mel loss (its normalisation is not used).
        model_config: the vocoder's STFT (for the magnitude and phase targets).
    """

    # buffer registered in __init__
    fbank: torch.Tensor
    mel_window: torch.Tensor
    model_window: torch.Tensor

    def __init__(
        self,
        config: VocoderLossConfig,
        feature_config: FeatureConfig,
        model_config: IstftVocoderConfig,
    ) -> None:
        super().__init__()
        self.config, self.feature_config, self.model_config = config, feature_config, model_config
        fc = feature_config
        self.register_buffer(
            "fbank",
            F.mel_filterbank(fc.n_fft, fc.n_mels, fc.sample_rate, fc.f_min, fc.f_max),
            persistent=False,
        )
        self.register_buffer("mel_window", torch.hann_window(fc.win_length), persistent=False)
        self.register_buffer(
            "model_window", torch.hann_window(model_config.n_fft), persistent=False
        )
        for n_fft, _ in config.resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def target_spectrum(self, context: torch.Tensor) -> torch.Tensor:
        """The vocoder-resolution STFT a segment should have.

        Args:
            context: (B, (T - 1) * hop + n_fft) samples: the segment with n_fft // 2 samples of
                its recording on each side (zeros beyond the recording's ends), so that its T
                frames are exactly the whole recording's frames, as the mels are.

        Returns:
            (B, n_bins, T) complex STFT.
        """
        c = self.model_config
        return torch.stft(
            context,
            c.n_fft,
            c.hop_length,
            c.n_fft,
            self.model_window,
            center=False,
            return_complex=True,
        )

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        fc = self.feature_config
        return F.log_mel_spectrogram(
            waveform, self.fbank, fc.n_fft, fc.hop_length, fc.win_length, self.mel_window
        )  # (B, frames, n_mels)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        log_magnitude: torch.Tensor,
        phase: torch.Tensor,
        target_spec: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Args:
            pred, target: (B, N) output and target samples.
            log_magnitude, phase: (B, n_bins, T) the network's STFT.
            target_spec: (B, n_bins, T) complex, from :meth:`target_spectrum`.

        Returns:
            the total loss (0-d) and each part's value (for the log).
        """
        c = self.config
        parts: dict[str, torch.Tensor] = {}
        total = pred.new_zeros(())
        if c.stft_weight:
            sc, mag = pred.new_zeros(()), pred.new_zeros(())
            for n_fft, hop in c.resolutions:
                window = getattr(self, f"window_{n_fft}")
                p, t = _magnitude(pred, n_fft, hop, window), _magnitude(target, n_fft, hop, window)
                sc = sc + spectral_convergence(p, t)
                mag = mag + (p.log() - t.log()).abs().mean()
            parts["sc"], parts["stft_mag"] = sc / len(c.resolutions), mag / len(c.resolutions)
            total = total + c.stft_weight * (parts["sc"] + parts["stft_mag"])
        if c.mel_weight:
            parts["mel"] = (self.log_mel(pred) - self.log_mel(target)).abs().mean()
            total = total + c.mel_weight * parts["mel"]
        if c.magnitude_weight:
            floor = math.log(_MAG_FLOOR)
            target_log = target_spec.abs().clamp(min=_MAG_FLOOR).log()
            parts["magnitude"] = (log_magnitude.clamp(min=floor) - target_log).abs().mean()
            total = total + c.magnitude_weight * parts["magnitude"]
        if c.phase_weight:
            ip, gd, iaf = phase_losses(phase, target_spec.angle())
            parts["phase_ip"], parts["phase_gd"], parts["phase_iaf"] = ip, gd, iaf
            total = total + c.phase_weight * (ip + gd + iaf)
        return total, {k: float(v.detach()) for k, v in parts.items()}
