"""Neural vocoder: log-mel frames → STFT magnitude and phase → inverse STFT → waveform.

In the spirit of Vocos (Siuzdenko, 2023) and iSTFTNet: a stack of ConvNeXt blocks runs over the
mel frames at the frame rate (no upsampling layers), and a linear head predicts, for every frame,
the log-magnitude and the phase of each frequency bin of an STFT whose hop is the mel hop. One
inverse STFT turns them into samples. Everything runs at 80 frames a second (16 kHz, 200-sample
hop), so the network does a few million multiply-adds per frame and runs many times faster than
real time on a CPU; the frequency resolution comes from the inverse FFT, which costs nothing.

The network reads natural-log mel power (the features before any normalisation), normalised by
the statistics in its own :class:`~speechseq.features.FeatureConfig`; the caller
(:class:`speechseq.tts.vocoder.NeuralVocoder`) undoes the voice's normalisation first, so that one
vocoder serves every voice with the same mel settings.

Example:
    >>> model = IstftVocoder(IstftVocoderConfig())
    >>> waveform, log_magnitude, phase = model(torch.randn(2, 50, 80))
    >>> waveform.shape, log_magnitude.shape
    (torch.Size([2, 9800]), torch.Size([2, 401, 50]))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["IstftVocoder", "IstftVocoderConfig"]


@dataclass(frozen=True)
class IstftVocoderConfig:
    """Shape of an :class:`IstftVocoder`; saved in every vocoder checkpoint.

    Args:
        kind: the registry's name for this model.
        n_mels: input mel channels.
        n_fft: FFT size of the predicted STFT (``n_fft // 2 + 1`` bins; the window is as long).
        hop_length: its hop in samples: the mel hop, one STFT frame per mel frame.
        dim: channels of the ConvNeXt blocks.
        intermediate_dim: channels inside each block's pointwise layers.
        layers: ConvNeXt blocks.
        kernel_size: their depthwise convolution's width in frames.
        max_log_magnitude: the predicted log-magnitude is clamped here (exp overflows otherwise
            early in training).
    """

    kind: str = "istft"
    n_mels: int = 80
    n_fft: int = 800
    hop_length: int = 200
    dim: int = 192
    intermediate_dim: int = 576
    layers: int = 8
    kernel_size: int = 7
    max_log_magnitude: float = 8.0

    def __post_init__(self) -> None:
        if self.n_fft < self.hop_length:
            raise ValueError(f"n_fft ({self.n_fft}) must be at least hop_length")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, not {self.kernel_size}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IstftVocoderConfig:
        return cls(**d)


class _ConvNeXtBlock(nn.Module):
    """Depthwise convolution over time → LayerNorm → pointwise up → GELU → pointwise down, scaled
    by a learned per-channel factor (started small, so each block starts near the identity)."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, scale: float) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, intermediate_dim)
        self.down = nn.Linear(intermediate_dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) → (B, T, dim)."""
        y = self.depthwise(x.transpose(1, 2)).transpose(1, 2)  # (B, T, dim)
        y = self.down(torch.nn.functional.gelu(self.up(self.norm(y))))  # (B, T, dim)
        return x + self.scale * y


class IstftVocoder(nn.Module):
    """Normalised log-mel frames → waveform, through a predicted STFT.

    Args:
        config: the shape.
    """

    # buffer registered in __init__
    window: torch.Tensor

    def __init__(self, config: IstftVocoderConfig) -> None:
        super().__init__()
        c = self.config = config
        self.embed = nn.Conv1d(c.n_mels, c.dim, c.kernel_size, padding=c.kernel_size // 2)
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            _ConvNeXtBlock(c.dim, c.intermediate_dim, c.kernel_size, 1.0 / c.layers)
            for _ in range(c.layers)
        )
        self.final_norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.head = nn.Linear(c.dim, 2 * c.n_bins)  # log-magnitude and phase of every bin
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)

    def spectrum(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            features: (B, T, n_mels) normalised log-mels.

        Returns:
            log_magnitude and phase, (B, n_bins, T) each; the phase is an angle in radians, not
            wrapped.
        """
        x = self.embed(features.transpose(1, 2)).transpose(1, 2)  # (B, T, dim)
        x = self.norm(x)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.final_norm(x)).transpose(1, 2)  # (B, 2 * n_bins, T)
        log_magnitude, phase = out.chunk(2, dim=1)  # (B, n_bins, T) each
        return log_magnitude.clamp(max=self.config.max_log_magnitude), phase

    def synthesize(self, log_magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """(B, n_bins, T) log-magnitude and phase → (B, (T - 1) * hop_length) samples."""
        c = self.config
        spec = torch.polar(log_magnitude.exp(), phase)  # (B, n_bins, T) complex
        return torch.istft(
            spec,
            c.n_fft,
            c.hop_length,
            c.n_fft,
            self.window,
            center=True,  # frame t is centred on sample t * hop, as the mel frames are
            length=(spec.shape[-1] - 1) * c.hop_length,
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass.

        Args:
            features: (B, T, n_mels) normalised log-mels.

        Returns:
            waveform (B, (T - 1) * hop_length), log_magnitude and phase (B, n_bins, T) each.
        """
        log_magnitude, phase = self.spectrum(features)
        return self.synthesize(log_magnitude, phase), log_magnitude, phase

    @torch.no_grad()
    def infer(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) normalised log-mels → (B, (T - 1) * hop_length) samples."""
        return self.synthesize(*self.spectrum(features))
