"""The text-to-speech losses, and how close attention is to the diagonal.

Example:
    >>> outputs, losses = forward_and_loss(model, batch, config.loss)
    >>> losses["loss"].backward()
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from speechseq.data import TtsBatch
from speechseq.errors import SpeechseqError
from speechseq.models import DurationSynthesizer, Synthesizer
from speechseq.tts.config import TtsLossConfig

__all__ = [
    "compute_duration_tts_loss",
    "compute_tts_loss",
    "diagonal_score",
    "forward_and_loss",
    "guided_attention_loss",
    "lengths_mask",
]


def lengths_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) lengths → (B, size) True at valid positions."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def guided_attention_loss(
    alignments: torch.Tensor, token_lengths: torch.Tensor, step_lengths: torch.Tensor, g: float
) -> torch.Tensor:
    """Penalty on attention away from the diagonal (Tachibana et al., 2017), normalised per
    decoder step: summed over characters, averaged over valid steps. The element-mean form is
    about 60× weaker, and at weight 2 it did not change training measurably.

    Args:
        alignments: (B, S, L) attention weights.
        token_lengths: (B,) valid characters.
        step_lengths: (B,) valid decoder steps.
        g: band width, as a fraction of the utterance.
    """
    _, steps, chars = alignments.shape
    n = torch.arange(chars, device=alignments.device)[None, None, :] / token_lengths[:, None, None]
    t = torch.arange(steps, device=alignments.device)[None, :, None] / step_lengths[:, None, None]
    penalty = 1 - torch.exp(-((n - t) ** 2) / (2 * g * g))  # (B, S, L)
    mask = (
        lengths_mask(step_lengths, steps)[:, :, None]
        & lengths_mask(token_lengths, chars)[:, None, :]
    )
    return (alignments * penalty * mask).sum() / mask[:, :, 0].sum().clamp(min=1)


def _mel_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str):
    diff = (pred - target) * mask  # (B, T, n_mels)
    count = mask.sum().clamp(min=1) * pred.shape[-1]
    l1, l2 = diff.abs().sum() / count, diff.square().sum() / count
    return {"l1": l1, "l2": l2, "l1+l2": l1 + l2}[kind]


def compute_tts_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    batch: TtsBatch,
    config: TtsLossConfig,
    reduction_factor: int,
) -> dict[str, torch.Tensor]:
    """The text-to-speech loss and its parts.

    Args:
        outputs: :meth:`Synthesizer.forward`'s ``(mel_before, mel_after, stop_logits,
            alignments)``, shapes (B, T, n_mels) ×2, (B, S), (B, S, L).
        batch: the targets (``mels`` (B, T, n_mels), ``stop_targets`` (B, S), lengths).
        config: loss weights.
        reduction_factor: frames per decoder step.

    Returns:
        ``loss`` (the total to minimise), ``mel`` (before the postnet), ``postnet`` (after it),
        ``stop`` and ``attention`` (unweighted).
    """
    mel_before, mel_after, stop_logits, alignments = outputs
    frames, steps = mel_before.shape[1], stop_logits.shape[1]
    frame_mask = lengths_mask(batch.mel_lengths, frames)[:, :, None].float()  # (B, T, 1)
    step_lengths = (batch.mel_lengths + reduction_factor - 1) // reduction_factor  # (B,)
    step_mask = lengths_mask(step_lengths, steps).float()  # (B, S)
    mel = _mel_error(mel_before.float(), batch.mels, frame_mask, config.mel_loss)
    postnet = _mel_error(mel_after.float(), batch.mels, frame_mask, config.mel_loss)
    stop = F.binary_cross_entropy_with_logits(
        stop_logits.float(),
        batch.stop_targets,
        weight=step_mask,
        pos_weight=torch.tensor(config.stop_pos_weight, device=stop_logits.device),
        reduction="sum",
    ) / step_mask.sum().clamp(min=1)
    attention = guided_attention_loss(
        alignments.float(), batch.token_lengths, step_lengths, config.guided_attention_g
    )
    loss = mel + postnet + config.stop_weight * stop
    if config.guided_attention_weight > 0:
        loss = loss + config.guided_attention_weight * attention
    return {"loss": loss, "mel": mel, "postnet": postnet, "stop": stop, "attention": attention}


def compute_duration_tts_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    batch: TtsBatch,
    config: TtsLossConfig,
) -> dict[str, torch.Tensor]:
    """The duration model's loss and its parts.

    Args:
        outputs: :meth:`DurationSynthesizer.forward`'s ``(mel_before, mel_after,
            log_durations, weights)``, shapes (B, T, n_mels) ×2, (B, L), (B, S, L).
        batch: the targets (``mels``, ``mel_lengths``, ``char_frames`` (B, L), lengths).
        config: loss weights.

    Returns:
        ``loss``, ``mel`` (before the postnet), ``postnet`` (after it) and ``duration``
        (mean squared error of log(1 + frames) per character, unweighted).
    """
    mel_before, mel_after, log_durations, _ = outputs
    frame_mask = lengths_mask(batch.mel_lengths, mel_before.shape[1])[:, :, None].float()
    mel = _mel_error(mel_before.float(), batch.mels, frame_mask, config.mel_loss)
    postnet = _mel_error(mel_after.float(), batch.mels, frame_mask, config.mel_loss)
    char_mask = lengths_mask(batch.token_lengths, log_durations.shape[1]).float()  # (B, L)
    assert batch.char_frames is not None  # the duration model's batches carry them
    target = torch.log1p(batch.char_frames.float())
    duration = ((log_durations.float() - target).square() * char_mask).sum() / char_mask.sum()
    loss = mel + postnet + config.duration_weight * duration
    return {"loss": loss, "mel": mel, "postnet": postnet, "duration": duration}


def forward_and_loss(
    model: Synthesizer | DurationSynthesizer,
    batch: TtsBatch,
    config: TtsLossConfig,
    generator: torch.Generator | None = None,
) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """The training pass of either model on ``batch`` and its losses."""
    if model.config.kind == "duration":
        if batch.char_frames is None:
            raise SpeechseqError("the duration model needs data.train_durations/dev_durations")
        outputs = model(batch.tokens, batch.token_lengths, batch.mels, batch.char_frames)
        return outputs, compute_duration_tts_loss(outputs, batch, config)
    outputs = model(batch.tokens, batch.token_lengths, batch.mels, generator)
    return outputs, compute_tts_loss(outputs, batch, config, model.config.reduction_factor)


def diagonal_score(
    alignments: torch.Tensor,
    token_lengths: torch.Tensor,
    step_lengths: torch.Tensor,
    width: float = 0.2,
) -> float:
    """Fraction of attention mass within ``width`` (of the utterance) of the diagonal, over all
    valid steps: about ``2 * width`` for uniform attention, near 1 for a learned alignment.

    Args:
        alignments: (B, S, L) attention weights.
        token_lengths: (B,) valid characters.
        step_lengths: (B,) valid decoder steps.
    """
    _, steps, chars = alignments.shape
    n = (torch.arange(chars)[None, None, :] + 0.5) / token_lengths.cpu()[:, None, None]
    t = (torch.arange(steps)[None, :, None] + 0.5) / step_lengths.cpu()[:, None, None]
    near = ((n - t).abs() <= width) & lengths_mask(token_lengths.cpu(), chars)[:, None, :]
    valid = lengths_mask(step_lengths.cpu(), steps)  # (B, S)
    mass = (alignments.detach().float().cpu() * near).sum(-1)  # (B, S)
    return float(mass[valid].mean()) if bool(valid.any()) else 0.0
