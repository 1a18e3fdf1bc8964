"""Tacotron-2-style synthesizer: characters → log-mel frames, r frames per decoder step.

Character embedding → 3 convolutions → BiLSTM encoder; location-sensitive attention; a prenet
(dropout kept at inference, as Tacotron 2 does, drawn from a seeded generator so output is
deterministic by default); an attention LSTM and a decoder LSTM that emit ``reduction_factor``
mel frames and one stop logit per step; a 5-layer convolutional postnet adding a residual.

Example:
    >>> model = Synthesizer(SynthesizerConfig())
    >>> tokens, token_lengths = torch.randint(1, 29, (2, 30)), torch.tensor([30, 22])
    >>> mel_before, mel_after, stop_logits, alignments = model(tokens, token_lengths,
    ...                                                        torch.randn(2, 120, 80))
    >>> mel_after.shape, stop_logits.shape, alignments.shape
    (torch.Size([2, 120, 80]), torch.Size([2, 30]), torch.Size([2, 30, 30]))
    >>> mels, mel_lengths, alignments, stopped = model.infer(tokens, token_lengths)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from speechseq.models.tts_layers import Postnet, TextEncoder, TtsConfigBase

__all__ = ["Synthesizer", "SynthesizerConfig"]


@dataclass(frozen=True)
class SynthesizerConfig(TtsConfigBase):
    """Shape of a :class:`Synthesizer`; saved in every checkpoint. The defaults give 5.0 M
    parameters (embedding 128, 3 convolutions of 256, BiLSTM 2×128, prenet 2×128, attention
    LSTM 256, location-sensitive attention 128, decoder LSTM 512, r = 4, a 5-layer postnet).

    Args:
        kind, vocab_size, n_mels, reduction_factor, embedding_dim, encoder_channels,
            encoder_conv_layers, encoder_kernel_size, postnet_channels, postnet_layers,
            postnet_kernel_size, dropout: as in :class:`~speechseq.models.tts_layers.TtsConfigBase`.
        prenet_dim: units of each of the two prenet layers.
        prenet_dropout: prenet dropout, applied in training and inference alike.
        attention_rnn_dim: attention LSTM units.
        attention_dim: location-sensitive attention's hidden size.
        location_filters, location_kernel_size: its convolution over past attention weights.
        decoder_rnn_dim: decoder LSTM units.
        rnn_dropout: dropout on the attention and decoder LSTM states (training only).
        max_frames_per_char, min_max_frames: :meth:`Synthesizer.infer` stops at
            ``min_max_frames + max_frames_per_char * characters`` frames at the latest.
        stop_threshold: stop probability above which generation ends (once attention has
            reached the last character).
    """

    kind: str = "attention"
    reduction_factor: int = 4
    prenet_dim: int = 128
    prenet_dropout: float = 0.5
    attention_rnn_dim: int = 256
    attention_dim: int = 128
    location_filters: int = 32
    location_kernel_size: int = 31
    decoder_rnn_dim: int = 512
    rnn_dropout: float = 0.1
    max_frames_per_char: float = 10.0
    min_max_frames: int = 40
    stop_threshold: float = 0.5

    def max_frames(self, num_chars: int) -> int:
        """The longest output :meth:`Synthesizer.infer` makes for a text of ``num_chars``."""
        return self.min_max_frames + math.ceil(self.max_frames_per_char * num_chars)


class _Prenet(nn.Module):
    """Two ReLU layers with dropout that stays on at inference (Tacotron 2's source of
    variation, and a bottleneck that makes the decoder rely on attention)."""

    def __init__(self, n_in: int, dim: int, p: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(n_in, dim), nn.Linear(dim, dim)])
        self.p = p

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None = None
    ) -> torch.Tensor:
        """(B, ..., n_in) → (B, ..., dim). Dropout masks come from ``generator`` (the global RNG
        if None), or from one generator per batch row if it is a list (so that a row's masks do
        not depend on what else is in the batch)."""
        for layer in self.layers:
            x = F.relu(layer(x))
            if self.p > 0:
                if isinstance(generator, list):
                    draws = [
                        torch.rand(x.shape[1:], generator=g, device=x.device) for g in generator
                    ]
                    noise = torch.stack(draws)  # (B, ..., dim)
                else:
                    noise = torch.rand(x.shape, generator=generator, device=x.device)
                x = x * (noise >= self.p) / (1 - self.p)
        return x


class _LocationSensitiveAttention(nn.Module):
    """Additive attention whose energies also see a convolution over the previous and the
    cumulative attention weights, which pushes it forward monotonically."""

    def __init__(self, c: SynthesizerConfig) -> None:
        super().__init__()
        k = c.location_kernel_size
        self.query = nn.Linear(c.attention_rnn_dim, c.attention_dim, bias=False)
        self.memory = nn.Linear(c.encoder_channels, c.attention_dim, bias=False)
        self.location_conv = nn.Conv1d(2, c.location_filters, k, padding=(k - 1) // 2, bias=False)
        self.location_dense = nn.Linear(c.location_filters, c.attention_dim, bias=False)
        self.v = nn.Linear(c.attention_dim, 1)

    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        past_weights: torch.Tensor,
        pad_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            query: (B, attention_rnn_dim) attention LSTM output.
            memory: (B, L, encoder_channels) encoder output.
            processed_memory: (B, L, attention_dim) ``self.memory(memory)``, computed once.
            past_weights: (B, 2, L) previous and cumulative attention weights.
            pad_mask: (B, L) True at padding.

        Returns:
            context: (B, encoder_channels) and weights: (B, L).
        """
        location = self.location_dense(self.location_conv(past_weights).transpose(1, 2))
        energies = self.v(
            torch.tanh(self.query(query).unsqueeze(1) + location + processed_memory)
        ).squeeze(-1)  # (B, L)
        energies = energies.masked_fill(pad_mask, torch.finfo(energies.dtype).min)
        weights = energies.softmax(dim=-1)  # (B, L)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, encoder_channels)
        return context, weights


class Synthesizer(nn.Module):
    """Character ids → log-mel frames, teacher-forced (:meth:`forward`) or free-running
    (:meth:`infer`). The losses live on the training side (``speechseq.tts.train``).

    Args:
        config: the model's shape.
    """

    def __init__(self, config: SynthesizerConfig) -> None:
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
        self.prenet = _Prenet(c.n_mels, c.prenet_dim, c.prenet_dropout)
        self.attention_rnn = nn.LSTMCell(c.prenet_dim + c.encoder_channels, c.attention_rnn_dim)
        self.attention = _LocationSensitiveAttention(c)
        self.decoder_rnn = nn.LSTMCell(c.attention_rnn_dim + c.encoder_channels, c.decoder_rnn_dim)
        self.frame_proj = nn.Linear(
            c.decoder_rnn_dim + c.encoder_channels, c.n_mels * c.reduction_factor
        )
        self.stop_proj = nn.Linear(c.decoder_rnn_dim + c.encoder_channels, 1)
        self.postnet = Postnet(
            c.n_mels, c.postnet_channels, c.postnet_layers, c.postnet_kernel_size, c.dropout
        )

    def _initial_state(self, memory: torch.Tensor) -> dict[str, torch.Tensor]:
        b, length, _ = memory.shape
        c = self.config
        zeros = memory.new_zeros
        return {
            "attention_h": zeros(b, c.attention_rnn_dim),
            "attention_c": zeros(b, c.attention_rnn_dim),
            "decoder_h": zeros(b, c.decoder_rnn_dim),
            "decoder_c": zeros(b, c.decoder_rnn_dim),
            "weights": zeros(b, length),
            "cumulative": zeros(b, length),
            "context": zeros(b, c.encoder_channels),
        }

    def _step(
        self,
        prenet_out: torch.Tensor,
        s: dict[str, torch.Tensor],
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        pad_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoder step; updates the state ``s`` in place.

        Args:
            prenet_out: (B, prenet_dim) the prenet applied to the previous step's last frame.

        Returns:
            frames: (B, r * n_mels) and stop logit: (B,).
        """
        p = self.config.rnn_dropout if self.training else 0.0
        h, cell = self.attention_rnn(
            torch.cat([prenet_out, s["context"]], dim=-1), (s["attention_h"], s["attention_c"])
        )
        s["attention_h"], s["attention_c"] = F.dropout(h, p, self.training), cell
        past = torch.stack([s["weights"], s["cumulative"]], dim=1)  # (B, 2, L)
        s["context"], s["weights"] = self.attention(
            s["attention_h"], memory, processed_memory, past, pad_mask
        )
        s["cumulative"] = s["cumulative"] + s["weights"]
        h, cell = self.decoder_rnn(
            torch.cat([s["attention_h"], s["context"]], dim=-1), (s["decoder_h"], s["decoder_c"])
        )
        s["decoder_h"], s["decoder_c"] = F.dropout(h, p, self.training), cell
        out = torch.cat([s["decoder_h"], s["context"]], dim=-1)  # (B, decoder_rnn_dim + C)
        return self.frame_proj(out), self.stop_proj(out).squeeze(-1)

    def _encode(
        self, tokens: torch.Tensor, token_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        memory = self.encoder(tokens, token_lengths)  # (B, L, C)
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        pad_mask = positions[None, :] >= token_lengths[:, None].to(tokens.device)  # (B, L)
        return memory, self.attention.memory(memory), pad_mask

    def forward(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
        mels: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced pass: each step is fed the true last frame of the step before.

        Args:
            tokens: (B, L) character ids, zero-padded.
            token_lengths: (B,) valid characters.
            mels: (B, T, n_mels) target frames, padded (T need not be a multiple of r).
            generator: random source for the prenet dropout (global RNG if None).

        Returns:
            mel_before: (B, T, n_mels) decoder output.
            mel_after: (B, T, n_mels) decoder output plus the postnet's residual.
            stop_logits: (B, S) one per decoder step, S = ceil(T / r); step k covers frames
                ``k*r … k*r + r - 1``.
            alignments: (B, S, L) attention weights of each step over the characters.
        """
        r, n_mels = self.config.reduction_factor, self.config.n_mels
        b, t, _ = mels.shape
        steps = math.ceil(t / r)
        padded = F.pad(mels, (0, 0, 0, steps * r - t))  # (B, S * r, n_mels)
        previous = padded[:, r - 1 :: r][:, :-1]  # (B, S - 1, n_mels): last frame of each step
        previous = torch.cat([padded.new_zeros(b, 1, n_mels), previous], dim=1)  # (B, S, n_mels)
        prenet_out = self.prenet(previous, generator)  # (B, S, prenet_dim)

        memory, processed, pad_mask = self._encode(tokens, token_lengths)
        state = self._initial_state(memory)
        frames, stops, alignments = [], [], []
        for k in range(steps):
            frame, stop = self._step(prenet_out[:, k], state, memory, processed, pad_mask)
            frames.append(frame)
            stops.append(stop)
            alignments.append(state["weights"])
        mel_before = torch.stack(frames, dim=1).reshape(b, steps * r, n_mels)[:, :t]  # (B, T, M)
        mel_after = mel_before + self.postnet(mel_before)
        return mel_before, mel_after, torch.stack(stops, dim=1), torch.stack(alignments, dim=1)

    @torch.no_grad()
    def infer(
        self,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor | None = None,
        seed: int | None = 0,
        max_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Free-running generation, each step fed its own last frame.

        An utterance ends at the first step whose stop probability exceeds
        ``config.stop_threshold`` after its attention has peaked on the last character (in a
        measured run, a plain threshold cut 5–7 of 40 unseen sentences short; the gate cut
        none), or at
        ``config.max_frames(characters)`` frames.

        Args:
            tokens: (B, L) character ids, zero-padded.
            token_lengths: (B,) valid characters (default: all L).
            seed: seeds the prenet dropout (one generator per utterance), so a text gives the
                same output whatever it is batched with; None draws from the global RNG.
            max_frames: overrides the length cap (frames) for every utterance.

        Returns:
            mels: (B, T, n_mels) frames after the postnet, zero beyond each length.
            mel_lengths: (B,) frames of each utterance (a multiple of r).
            alignments: (B, S, L) attention weights of each step.
            stopped: (B,) True where the stop token ended the utterance, False where it ran to
                the length cap.
        """
        c = self.config
        r, b, device = c.reduction_factor, tokens.shape[0], tokens.device
        if token_lengths is None:
            token_lengths = torch.full((b,), tokens.shape[1], dtype=torch.long)
        token_lengths = token_lengths.to(device)
        caps = [max_frames or c.max_frames(int(n)) for n in token_lengths.tolist()]
        max_steps = torch.tensor([math.ceil(m / r) for m in caps], device=device)  # (B,)
        generators = None  # one per utterance: its output does not depend on the batch
        if seed is not None:
            generators = [torch.Generator(device=device).manual_seed(seed) for _ in range(b)]

        memory, processed, pad_mask = self._encode(tokens, token_lengths)
        state = self._initial_state(memory)
        frame = memory.new_zeros(b, c.n_mels)
        reached = torch.zeros(b, dtype=torch.bool, device=device)
        finished = torch.zeros_like(reached)
        stopped = torch.zeros_like(reached)
        steps = torch.zeros(b, dtype=torch.long, device=device)
        frames, alignments = [], []
        for k in range(int(max_steps.max())):
            out, stop = self._step(
                self.prenet(frame, generators), state, memory, processed, pad_mask
            )
            frames.append(out)
            alignments.append(state["weights"])
            frame = out[:, -c.n_mels :]  # (B, n_mels) the step's last frame
            reached |= state["weights"].argmax(dim=-1) >= token_lengths - 1
            fire = reached & (stop.sigmoid() > c.stop_threshold)
            done = ~finished & (fire | (k + 1 >= max_steps))
            stopped |= done & fire
            steps = torch.where(done, torch.full_like(steps, k + 1), steps)
            finished |= done
            if bool(finished.all()):
                break
        total = len(frames) * r
        mel_before = torch.stack(frames, dim=1).reshape(b, total, c.n_mels)  # (B, T, n_mels)
        mel_lengths = steps * r
        mels = torch.zeros_like(mel_before)
        for i, n in enumerate(mel_lengths.tolist()):  # postnet over each utterance's own frames
            before = mel_before[i : i + 1, :n]  # (1, n, n_mels)
            mels[i, :n] = (before + self.postnet(before))[0]
        return mels, mel_lengths, torch.stack(alignments, dim=1), stopped
