"""Duration-based synthesizer: characters → log-mel frames, with no attention to learn.

In the spirit of Non-Attentive Tacotron: the same character encoder as :mod:`speechseq.models.tts`
(embedding → 3 convolutions → BiLSTM); a duration predictor (frames per character, in the log
domain); Gaussian upsampling of the encoder states to the frame rate, each frame also told where
it is inside its character; a BiLSTM decoder over groups of ``reduction_factor`` frames that
emits their mels; the same 5-layer postnet. Training uses per-character durations measured on
the training audio (CTC forced alignment with the recognizer, :mod:`speechseq.tts.durations`); at
inference the predicted ones. The decoder is not autoregressive: nothing it emits is fed back,
so free-running output is the teacher-forced output (no exposure bias), the length is known in
advance (no stop token that can fire early or never), and inference is deterministic.

Example:
    >>> model = DurationSynthesizer(DurationSynthesizerConfig())
    >>> tokens, token_lengths = torch.randint(1, 29, (2, 30)), torch.tensor([30, 22])
    >>> frames = torch.full((2, 30), 4)
    >>> mel_before, mel_after, log_durations, weights = model(tokens, token_lengths,
    ...                                                       torch.randn(2, 120, 80), frames)
    >>> mels, mel_lengths, weights, stopped = model.infer(tokens, token_lengths)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechseq.models.tts_layers import Postnet, TextEncoder, TtsConfigBase

__all__ = ["DurationSynthesizer", "DurationSynthesizerConfig"]


@dataclass(frozen=True)
class DurationSynthesizerConfig(TtsConfigBase):
    """Shape of a :class:`DurationSynthesizer`; saved in every checkpoint.

    Args:
        kind, vocab_size, n_mels, reduction_factor, embedding_dim, encoder_channels,
            encoder_conv_layers, encoder_kernel_size, postnet_channels, postnet_layers,
            postnet_kernel_size, dropout: as in :class:`~speechseq.models.tts_layers.TtsConfigBase`.
        duration_channels, duration_kernel_size: the duration predictor's two convolutions.
        decoder_dim: units per direction of the decoder BiLSTM.
        decoder_layers: its layers.
        sigma_scale, sigma_floor: each character's Gaussian in the upsampling has standard
            deviation ``sigma_floor + sigma_scale * duration`` frames.
        max_frames_per_char: cap on a predicted duration (frames).
    """

    kind: str = "duration"
    reduction_factor: int = 2
    dropout: float = 0.2
    duration_channels: int = 256
    duration_kernel_size: int = 3
    decoder_dim: int = 256
    decoder_layers: int = 2
    sigma_scale: float = 0.3
    sigma_floor: float = 0.5
    max_frames_per_char: float = 40.0


class _DurationPredictor(nn.Module):
    """(B, L, C) encoder states → (B, L) log(1 + frames) of each character."""

    def __init__(self, c: DurationSynthesizerConfig) -> None:
        super().__init__()
        k, ch = c.duration_kernel_size, c.duration_channels
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(c.encoder_channels, ch, k, padding=(k - 1) // 2),
                nn.Conv1d(ch, ch, k, padding=(k - 1) // 2),
            ]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(ch), nn.LayerNorm(ch)])
        self.dropout = nn.Dropout(c.dropout)
        self.proj = nn.Linear(ch, 1)

    def forward(self, memory: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = memory.transpose(1, 2)  # (B, C, L)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = conv(x * keep[:, None, :]).transpose(1, 2)  # (B, L, ch)
            x = self.dropout(norm(torch.relu(x))).transpose(1, 2)  # (B, ch, L)
        return self.proj(x.transpose(1, 2)).squeeze(-1) * keep  # (B, L)


def gaussian_upsample(
    memory: torch.Tensor,
    frames: torch.Tensor,
    token_lengths: torch.Tensor,
    positions: torch.Tensor,
    sigma_scale: float,
    sigma_floor: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder states at output positions: a softmax over characters of Gaussians centred on
    each character's middle frame (Non-Attentive Tacotron's upsampling).

    Args:
        memory: (B, L, C) encoder states.
        frames: (B, L) frames per character (float; 0 beyond each text).
        token_lengths: (B,) valid characters.
        positions: (B, S) frame times (in frames, e.g. group centres) to sample at.

    Returns:
        context (B, S, C) and weights (B, S, L).
    """
    ends = frames.cumsum(dim=1)  # (B, L)
    centres = ends - frames / 2  # (B, L)
    sigma = sigma_floor + sigma_scale * frames  # (B, L)
    dist = (positions[:, :, None] - centres[:, None, :]) / sigma[:, None, :]  # (B, S, L)
    logits = -0.5 * dist.square()
    valid = torch.arange(memory.shape[1], device=memory.device) < token_lengths[:, None]
    logits = logits.masked_fill(~valid[:, None, :], -math.inf)
    weights = torch.softmax(logits, dim=-1)  # (B, S, L)
    return weights @ memory, weights


class DurationSynthesizer(nn.Module):
    """Character ids (and, in training, their measured durations) → log-mel frames.

    :meth:`forward` is the training pass on measured durations; :meth:`infer` generates with
    predicted ones and returns what :meth:`speechseq.models.tts.Synthesizer.infer` returns, so
    the same :class:`speechseq.tts.speaker.Speaker` and validation code drive either model. The
    losses live on the training side (``speechseq.tts.train``).

    Args:
        config: the model's shape.
    """

    def __init__(self, config: DurationSynthesizerConfig) -> None:
        super().__init__()
        c = self.config = config
        self.encoder = TextEncoder(
            c.vocab_size,
            c.embedding_dim,
            c.encoder_channels,
            c.encoder_conv_layers,
            c.encoder_kernel_size,
            c.dropout,
        )
        self.duration_predictor = _DurationPredictor(c)
        self.decoder = nn.LSTM(
            c.encoder_channels + 2,  # + where the step is inside its character, and its length
            c.decoder_dim,
            num_layers=c.decoder_layers,
            batch_first=True,
            bidirectional=True,
            dropout=c.dropout if c.decoder_layers > 1 else 0.0,
        )
        self.frame_proj = nn.Linear(2 * c.decoder_dim, c.n_mels * c.reduction_factor)
        self.postnet = Postnet(
            c.n_mels, c.postnet_channels, c.postnet_layers, c.postnet_kernel_size, c.dropout
        )

    def _decode(
        self,
        memory: torch.Tensor,
        frames: torch.Tensor,
        token_lengths: torch.Tensor,
        mel_lengths: torch.Tensor,
        total: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Upsample to ``total`` frames (a multiple of r) and decode: the mel before the
        postnet (B, total, n_mels), zero beyond each length, and the upsampling weights
        (B, S, L)."""
        c, b = self.config, memory.shape[0]
        r = c.reduction_factor
        steps = total // r
        positions = (torch.arange(steps, device=memory.device) + 0.5) * r  # group centres
        positions = positions[None, :].expand(b, steps)  # (B, S)
        context, weights = gaussian_upsample(
            memory, frames, token_lengths, positions, c.sigma_scale, c.sigma_floor
        )  # (B, S, C), (B, S, L)
        # where each step is inside the character it mostly hears: 0 at its start, 1 at its end
        ends = frames.cumsum(dim=1)
        offset = (positions[:, :, None] - (ends - frames)[:, None, :]) / frames.clamp(min=1)[
            :, None, :
        ]  # (B, S, L)
        inside = (weights * offset.clamp(0, 1)).sum(-1)  # (B, S)
        length = (weights * torch.log1p(frames)[:, None, :]).sum(-1)  # (B, S)
        x = torch.cat([context, inside[..., None], length[..., None]], dim=-1)
        step_lengths = ((mel_lengths + r - 1) // r).clamp(min=1, max=steps)
        packed = pack_padded_sequence(x, step_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.decoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)  # (B, S, 2D)
        before = self.frame_proj(out).reshape(b, total, c.n_mels)  # (B, T, n_mels)
        keep = torch.arange(total, device=memory.device)[None, :] < mel_lengths[:, None]
        return before * keep[..., None], weights

    def forward(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        mels: torch.Tensor,
        char_frames: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass on measured durations.

        Args:
            tokens: (B, L) character ids, zero-padded.
            token_lengths: (B,) valid characters.
            mels: (B, T, n_mels) target frames, padded (only their shape is used).
            char_frames: (B, L) measured frames per character (0 on padding); each row sums
                to its utterance's frame count.

        Returns:
            mel_before: (B, T, n_mels) decoder output.
            mel_after: (B, T, n_mels) plus the postnet's residual.
            log_durations: (B, L) predicted log(1 + frames) per character.
            weights: (B, S, L) upsampling weights of each decoder step over the characters.
        """
        r = self.config.reduction_factor
        token_lengths = token_lengths.to(tokens.device)
        keep = torch.arange(tokens.shape[1], device=tokens.device) < token_lengths[:, None]
        keep = keep.float()  # (B, L)
        memory = self.encoder(tokens, token_lengths)  # (B, L, C)
        log_durations = self.duration_predictor(memory.detach(), keep)  # (B, L)
        frames = char_frames.float() * keep
        mel_lengths = frames.sum(dim=1).round().long()  # (B,)
        total = math.ceil(mels.shape[1] / r) * r
        before, weights = self._decode(memory, frames, token_lengths, mel_lengths, total)
        keep_frames = torch.arange(total, device=tokens.device)[None, :] < mel_lengths[:, None]
        after = (before + self.postnet(before)) * keep_frames[..., None]
        t = mels.shape[1]
        return before[:, :t], after[:, :t], log_durations, weights

    @torch.no_grad()
    def infer(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor | None = None,
        seed: int | None = 0,
        max_frames: int | None = None,
        pace: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Generate with predicted durations (deterministic: ``seed`` is accepted for the
        :class:`speechseq.models.tts.Synthesizer` interface and has nothing to draw).

        Args:
            tokens: (B, L) character ids, zero-padded.
            token_lengths: (B,) valid characters (default: all L).
            max_frames: caps every utterance's length (frames).
            pace: > 1 speaks faster (durations divided by it).

        Returns:
            mels: (B, T, n_mels) frames after the postnet, zero beyond each length.
            mel_lengths: (B,) frames of each utterance.
            weights: (B, S, L) upsampling weights of each decoder step.
            stopped: (B,) True: every utterance ends where its durations say, never at a cap
                (False only where ``max_frames`` cut it).
        """
        c = self.config
        b, device = tokens.shape[0], tokens.device
        if token_lengths is None:
            token_lengths = torch.full((b,), tokens.shape[1], dtype=torch.long)
        token_lengths = token_lengths.to(device)
        keep = (torch.arange(tokens.shape[1], device=device) < token_lengths[:, None]).float()
        memory = self.encoder(tokens, token_lengths)
        log_durations = self.duration_predictor(memory, keep)
        frames = torch.expm1(log_durations).clamp(min=1.0, max=c.max_frames_per_char) / pace
        frames = frames.round().clamp(min=1.0) * keep  # (B, L) whole frames
        mel_lengths = frames.sum(dim=1).long()
        stopped = torch.ones(b, dtype=torch.bool, device=device)
        if max_frames is not None:
            stopped = mel_lengths <= max_frames
            mel_lengths = mel_lengths.clamp(max=max_frames)
        total = math.ceil(int(mel_lengths.max()) / c.reduction_factor) * c.reduction_factor
        before, weights = self._decode(memory, frames, token_lengths, mel_lengths, total)
        mels = torch.zeros_like(before)
        for i, n in enumerate(mel_lengths.tolist()):  # postnet over each utterance's own frames
            mels[i, :n] = (before[i : i + 1, :n] + self.postnet(before[i : i + 1, :n]))[0]
        return mels, mel_lengths, weights, stopped
