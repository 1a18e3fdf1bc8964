"""Griffin-Lim: mel → linear magnitude → iterative phase recovery. No training, and the sound
of it: phasey and metallic (:class:`~speechseq.tts.vocoder.NeuralVocoder` is the better-sounding
alternative).

Example:
    >>> vocoder = GriffinLimVocoder(feature_config)
    >>> waveform = vocoder(mel)          # (T, n_mels) → ((T - 1) * hop_length,) samples
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF

from speechseq import functional as F
from speechseq.features import FeatureConfig
from speechseq.tts.vocoder.base import Vocoder, mel_to_power

__all__ = ["GriffinLimVocoder"]


class GriffinLimVocoder(Vocoder):
    """Mel → linear magnitude → Griffin-Lim phase recovery (torchaudio).

    Mel power goes back to linear frequencies with the filterbank's pseudo-inverse (the
    minimum-norm solution, as torchaudio's ``InverseMelScale`` computes with ``lstsq``, but a
    precomputed matrix: 0.6 ms instead of 1.9 ms for 4.5 s of audio), clamped at zero, then
    refined by ``nnls_iters`` multiplicative non-negative least-squares updates. Measured on
    40 flite-slt utterances, round-tripped through 32 Griffin-Lim iterations and recognised
    by speechseq's recognizer: CER 38.4 % on the original audio, 40.9 % with the pseudo-inverse
    alone, 39.4 % with 10 updates (39.2 % with 50); sharpening the magnitude (``power`` 1.5,
    as Tacotron did) raised it to 48 %.

    Args:
        feature_config: the acoustic model's feature settings.
        n_iter: Griffin-Lim iterations.
        nnls_iters: non-negative refinements of the pseudo-inverse (0 = none).
        power: exponent applied to the linear magnitude before phase recovery.
        momentum: Griffin-Lim's fast-GL momentum.
        peak: the output is scaled so its largest sample is this (0 = leave the level alone).
    """

    # buffers registered in __init__
    fbank: torch.Tensor
    fbank_pinv: torch.Tensor
    window: torch.Tensor

    def __init__(
        self,
        feature_config: FeatureConfig,
        n_iter: int = 32,
        nnls_iters: int = 10,
        power: float = 1.0,
        momentum: float = 0.99,
        peak: float = 0.9,
    ) -> None:
        super().__init__(feature_config)
        c = feature_config
        self.n_iter, self.nnls_iters, self.power = n_iter, nnls_iters, power
        self.momentum, self.peak = momentum, peak
        fbank = F.mel_filterbank(c.n_fft, c.n_mels, c.sample_rate, c.f_min, c.f_max)  # (F, M)
        self.register_buffer("fbank", fbank, persistent=False)
        self.register_buffer("fbank_pinv", torch.linalg.pinv(fbank), persistent=False)  # (M, F)
        self.register_buffer(
            "window", torch.hann_window(c.win_length, periodic=True), persistent=False
        )

    def linear_power(self, mel_power: torch.Tensor) -> torch.Tensor:
        """(..., T, n_mels) mel power → (..., T, n_fft // 2 + 1) non-negative linear power."""
        linear = (mel_power @ self.fbank_pinv).clamp(min=0.0) + 1e-10  # (..., T, F)
        target = mel_power @ self.fbank.T  # (..., T, F), fixed across updates
        for _ in range(self.nnls_iters):  # Lee-Seung updates for min |linear @ fbank - mel|²
            linear = linear * target / ((linear @ self.fbank) @ self.fbank.T + 1e-12)
        return linear

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Args:
            features: (T, n_mels) or (B, T, n_mels) features.

        Returns:
            ((T - 1) * hop_length,) or (B, (T - 1) * hop_length) samples.
        """
        c = self.feature_config
        magnitude = self.linear_power(mel_to_power(features.float(), c)).sqrt()  # (..., T, F)
        if self.power != 1.0:
            magnitude = magnitude**self.power
        frames = magnitude.shape[-2]
        waveform = AF.griffinlim(
            magnitude.transpose(-1, -2),  # (..., F, T)
            self.window,
            c.n_fft,
            c.hop_length,
            c.win_length,
            power=1.0,
            n_iter=self.n_iter,
            momentum=self.momentum,
            length=(frames - 1) * c.hop_length,  # centred frames: T frames span (T - 1) hops
            rand_init=False,  # deterministic: the same mel always gives the same audio
        )
        if self.peak > 0:
            scale = waveform.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8)
            waveform = waveform * (self.peak / scale)
        return waveform
