"""CTC decoding.

Example:
    >>> log_probs, lengths = model(features, feature_lengths)
    >>> texts = greedy_decode(log_probs, lengths, tokenizer)
"""

from __future__ import annotations

import torch

from speechseq.text import Tokenizer

__all__ = ["greedy_decode", "collapse_ctc"]


def collapse_ctc(ids: list[int], blank_id: int = 0) -> list[int]:
    """Merge repeats, then drop blanks: the CTC many-to-one map."""
    out, previous = [], None
    for i in ids:
        if i != previous and i != blank_id:
            out.append(i)
        previous = i
    return out


def greedy_decode(
    log_probs: torch.Tensor, lengths: torch.Tensor, tokenizer: Tokenizer
) -> list[str]:
    """Best symbol per frame, collapsed.

    Args:
        log_probs: (B, T, V) per-frame log-probabilities.
        lengths: (B,) valid frames.
        tokenizer: maps ids back to characters.

    Returns:
        B transcripts with surrounding and repeated spaces removed.
    """
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    texts = []
    for b in range(best.shape[0]):
        ids = collapse_ctc(best[b, : int(lengths[b])].tolist(), tokenizer.blank_id)
        texts.append(" ".join(tokenizer.decode(ids).split()))
    return texts
