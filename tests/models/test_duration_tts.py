from dataclasses import replace

import pytest
import torch

from speechseq.data import collate_tts
from speechseq.models.duration_tts import (
    DurationSynthesizer,
    DurationSynthesizerConfig,
    gaussian_upsample,
)
from speechseq.tts.config import TtsLossConfig
from speechseq.tts.losses import compute_duration_tts_loss

TINY = DurationSynthesizerConfig(
    embedding_dim=32,
    encoder_channels=64,
    encoder_conv_layers=2,
    duration_channels=32,
    decoder_dim=64,
    decoder_layers=1,
    postnet_channels=32,
    postnet_layers=3,
    dropout=0.0,
)


def _frames_for(token_lengths, mel_lengths, width):
    """Split each utterance's frames evenly over its characters (a stand-in alignment)."""
    out = torch.zeros(len(token_lengths), width, dtype=torch.long)
    for i, (n, t) in enumerate(zip(token_lengths.tolist(), mel_lengths.tolist(), strict=True)):
        edges = torch.linspace(0, t, n + 1).round().long()
        out[i, :n] = edges[1:] - edges[:-1]
    return out


def test_default_size_and_config_checks():
    model = DurationSynthesizer(DurationSynthesizerConfig())
    assert 4.5e6 < sum(p.numel() for p in model.parameters()) < 5.5e6
    assert DurationSynthesizerConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError):
        DurationSynthesizerConfig(kind="attention")
    with pytest.raises(ValueError):
        DurationSynthesizerConfig(reduction_factor=0)


def test_gaussian_upsampling_follows_the_durations():
    memory = torch.eye(3)[None]  # (1, L=3, C=3): state j is the one-hot j
    frames = torch.tensor([[2.0, 6.0, 2.0]])
    positions = torch.arange(10)[None].float() + 0.5  # (1, 10)
    context, weights = gaussian_upsample(memory, frames, torch.tensor([3]), positions, 0.3, 0.5)
    assert weights.shape == (1, 10, 3)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 10))
    assert context[0].argmax(-1).tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 2, 2]
    # padding characters get no weight
    _, w = gaussian_upsample(memory, frames, torch.tensor([2]), positions, 0.3, 0.5)
    assert float(w[..., 2].max()) == 0.0


@pytest.mark.parametrize("r", [1, 2, 3])
def test_shapes_and_lengths(r):
    torch.manual_seed(0)
    model = DurationSynthesizer(replace(TINY, reduction_factor=r, n_mels=20)).eval()
    tokens = torch.randint(1, 29, (2, 12))
    token_lengths = torch.tensor([12, 9])
    tokens[1, 9:] = 0
    mel_lengths = torch.tensor([50, 41])
    frames = _frames_for(token_lengths, mel_lengths, 12)
    before, after, log_durations, weights = model(
        tokens, token_lengths, torch.zeros(2, 50, 20), frames
    )
    assert before.shape == after.shape == (2, 50, 20)
    assert (
        log_durations.shape == (2, 12) and float(log_durations[1, 9:].detach().abs().max()) == 0.0
    )
    assert weights.shape[:2] == (2, -(-50 // r))
    assert float(after[1, 41:].detach().abs().max()) == 0.0  # nothing beyond an utterance's length
    mels, lengths, _, stopped = model.infer(tokens, token_lengths)
    assert stopped.all() and mels.shape[0] == 2 and int(lengths.max()) <= mels.shape[1]
    # deterministic, and the same alone as in a batch
    again = model.infer(tokens, token_lengths)[0]
    torch.testing.assert_close(mels, again)
    alone, alone_len, _, _ = model.infer(tokens[1:, :9], token_lengths[1:])
    assert int(alone_len[0]) == int(lengths[1])
    n = int(lengths[1])
    torch.testing.assert_close(alone[0, :n], mels[1, :n], atol=1e-4, rtol=1e-4)
    # a cap shortens and says so
    _, capped, _, ended = model.infer(tokens, token_lengths, max_frames=5)
    assert capped.max() <= 5 and not ended.all()


@pytest.mark.slow
def test_overfits_a_few_utterances(tts_train_set):
    """Loss falls, durations are learned, and generation with *predicted* durations reproduces
    the target mels at about their length (~20 s on one core)."""
    torch.manual_seed(0)
    dataset = tts_train_set
    batch = collate_tts([dataset[i] for i in range(len(dataset))], TINY.reduction_factor)
    assert batch is not None
    batch.char_frames = _frames_for(batch.token_lengths, batch.mel_lengths, batch.tokens.shape[1])
    model = DurationSynthesizer(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(250):
        outputs = model(batch.tokens, batch.token_lengths, batch.mels, batch.char_frames)
        loss = compute_duration_tts_loss(outputs, batch, TtsLossConfig())
        losses.append(loss["loss"].item())
        optimizer.zero_grad()
        loss["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    assert losses[-1] < losses[0] / 4
    assert loss["postnet"].item() < 0.25 and loss["duration"].item() < 0.05

    model.eval()
    mels, lengths, _, stopped = model.infer(batch.tokens, batch.token_lengths)
    assert stopped.all()
    for i in range(len(dataset)):
        target = int(batch.mel_lengths[i])
        assert 0.85 * target <= int(lengths[i]) <= 1.15 * target
        n = min(target, int(lengths[i]))
        assert (mels[i, :n] - batch.mels[i, :n]).abs().mean() < 0.4
