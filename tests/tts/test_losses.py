"""The text-to-speech losses and the attention diagonality score."""

import pytest
import torch

from speechseq.data import TtsBatch, stop_targets
from speechseq.tts.config import TtsLossConfig
from speechseq.tts.losses import compute_tts_loss, diagonal_score, guided_attention_loss


def _batch(mels: torch.Tensor, lengths: list[int], r: int) -> TtsBatch:
    steps = mels.shape[1] // r
    mel_lengths = torch.tensor(lengths)
    return TtsBatch(
        tokens=torch.ones(len(lengths), 5, dtype=torch.long),
        token_lengths=torch.tensor([5] * len(lengths)),
        mels=mels,
        mel_lengths=mel_lengths,
        stop_targets=stop_targets(mel_lengths, r, steps),
        texts=["x"] * len(lengths),
        audio=["x"] * len(lengths),
        durations=[1.0] * len(lengths),
    )


def _diagonal(steps: int, chars: int) -> torch.Tensor:
    """(S, L) one-hot attention moving evenly from the first character to the last."""
    a = torch.zeros(steps, chars)
    a[torch.arange(steps), (torch.arange(steps) * chars) // steps] = 1.0
    return a


def test_guided_attention_is_per_step_and_ignores_padding():
    diagonal = _diagonal(40, 20)[None]  # (1, S, L)
    across = diagonal.flip(-1)  # last character first
    lengths, steps = torch.tensor([20]), torch.tensor([40])
    assert guided_attention_loss(diagonal, lengths, steps, 0.2) < 0.05
    # one-hot rows: the loss is the mean over steps of the penalty where attention sits
    t = torch.arange(40) / 40
    n = (19 - (torch.arange(40) * 20) // 40) / 20  # where `across` attends at each step
    expected = (1 - torch.exp(-((n - t) ** 2) / (2 * 0.2**2))).mean()
    torch.testing.assert_close(guided_attention_loss(across, lengths, steps, 0.2), expected)
    # summed over characters, not averaged: uniform attention over 20 or 80 characters costs the
    # same per step (an element mean would shrink with the text's length)
    uniform = [
        guided_attention_loss(torch.full((1, 40, c), 1 / c), torch.tensor([c]), steps, 0.2)
        for c in (20, 80)
    ]
    assert uniform[0] == pytest.approx(float(uniform[1]), rel=0.05) and uniform[0] > 0.4
    # padded steps and characters do not count
    padded = torch.zeros(1, 50, 30)
    padded[:, :40, :20] = across
    padded[:, 40:, 20:] = 1 / 10
    torch.testing.assert_close(guided_attention_loss(padded, lengths, steps, 0.2), expected)


def test_diagonal_score():
    lengths, steps = torch.tensor([20]), torch.tensor([40])
    assert diagonal_score(_diagonal(40, 20)[None], lengths, steps) == pytest.approx(1.0)
    uniform = diagonal_score(torch.full((1, 40, 20), 1 / 20), lengths, steps)
    assert 0.3 < uniform < 0.45
    assert diagonal_score(_diagonal(40, 20).flip(-1)[None], lengths, steps) < 0.3


def test_tts_loss_masks_padding():
    torch.manual_seed(0)
    mels = torch.randn(2, 12, 4)
    batch = _batch(mels, [12, 7], r=2)
    attention = torch.full((2, 6, 5), 0.2)
    stops = (batch.stop_targets * 20 - 10).clone()  # confident and right
    exact = compute_tts_loss((mels, mels, stops, attention), batch, TtsLossConfig(), 2)
    assert exact["mel"] == 0 and exact["postnet"] == 0 and exact["stop"] < 1e-3
    wrong_padding = mels.clone()
    wrong_padding[1, 7:] += 100.0  # frames past the second utterance's end
    stops[1, 4:] = -10.0  # steps past its end
    loss = compute_tts_loss(
        (wrong_padding, wrong_padding, stops, attention), batch, TtsLossConfig(), 2
    )
    assert loss["mel"] == 0 and loss["stop"] < 1e-3
    off = compute_tts_loss(
        (mels + 1, mels + 2, stops, attention), batch, TtsLossConfig(mel_loss="l1+l2"), 2
    )
    assert off["mel"].item() == pytest.approx(2.0) and off["postnet"].item() == pytest.approx(6.0)
    total = off["mel"] + off["postnet"] + off["stop"] + 2.0 * off["attention"]
    torch.testing.assert_close(off["loss"], total)
