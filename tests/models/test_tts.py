from dataclasses import replace

import pytest
import torch
from conftest import TINY_TTS_MODEL

from speechseq.data import collate_tts
from speechseq.models.tts import Synthesizer, SynthesizerConfig
from speechseq.tts.config import TtsLossConfig
from speechseq.tts.losses import compute_tts_loss, diagonal_score

TINY = SynthesizerConfig(**TINY_TTS_MODEL)


def _batch(b=3, length=12, frames=50, n_mels=80):
    tokens = torch.randint(1, 29, (b, length))
    token_lengths = torch.tensor([length] + [length - 3 - i for i in range(b - 1)])
    for i, n in enumerate(token_lengths.tolist()):
        tokens[i, n:] = 0
    return tokens, token_lengths, torch.randn(b, frames, n_mels)


def test_default_size_is_like_the_measured_model():
    model = Synthesizer(SynthesizerConfig())
    assert 4.5e6 < sum(p.numel() for p in model.parameters()) < 5.5e6
    assert SynthesizerConfig().reduction_factor > 1


def test_config_round_trip_and_checks():
    assert SynthesizerConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError):
        SynthesizerConfig(reduction_factor=0)
    with pytest.raises(ValueError):
        SynthesizerConfig(encoder_channels=33)


@pytest.mark.parametrize("r", [1, 3, 4])
def test_teacher_forced_shapes(r):
    torch.manual_seed(0)
    model = Synthesizer(replace(TINY, reduction_factor=r, n_mels=20))
    tokens, token_lengths, mels = _batch(frames=50, n_mels=20)  # 50 frames: not a multiple of 3, 4
    mel_before, mel_after, stop_logits, alignments = model(tokens, token_lengths, mels)
    steps = -(-50 // r)
    assert mel_before.shape == mel_after.shape == (3, 50, 20)
    assert stop_logits.shape == (3, steps)
    assert alignments.shape == (3, steps, 12)
    # attention is a distribution over each utterance's own characters, none on padding
    torch.testing.assert_close(alignments.sum(-1), torch.ones(3, steps))
    for i, n in enumerate(token_lengths.tolist()):
        assert alignments[i, :, n:].abs().sum() == 0


def test_padding_does_not_change_outputs():
    """An utterance batched with a longer one (padded characters and frames) gets the same
    decoder output and attention as alone."""
    torch.manual_seed(0)
    model = Synthesizer(replace(TINY, prenet_dropout=0.0)).eval()
    tokens, token_lengths, mels = _batch(b=2, frames=40)
    n = int(token_lengths[1])
    together = model(tokens, token_lengths, mels)
    alone = model(tokens[1:, :n], token_lengths[1:], mels[1:, :30])
    torch.testing.assert_close(together[0][1, :30], alone[0][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together[3][1, :15, :n], alone[3][0], atol=1e-5, rtol=1e-4)


def test_untrained_model_runs_to_the_length_cap():
    torch.manual_seed(0)
    model = Synthesizer(TINY).eval()
    tokens, token_lengths, _ = _batch(b=2)
    mels, lengths, alignments, stopped = model.infer(tokens, token_lengths)
    caps = [TINY.max_frames(int(n)) for n in token_lengths]
    assert not stopped.any()  # its stop logits are near 0: probability ~0.5, not above
    assert lengths.tolist() == [-(-c // 2) * 2 for c in caps]
    assert mels.shape == (2, max(lengths), TINY.n_mels)
    assert alignments.shape == (2, max(lengths) // 2, 12)
    assert mels[1, int(lengths[1]) :].abs().sum() == 0  # zero past its own end
    short = model.infer(tokens, token_lengths, max_frames=10)
    assert short[1].tolist() == [10, 10]


def test_stop_waits_for_attention_to_reach_the_last_character():
    """With a stop head that always says stop, each utterance ends exactly at the first step
    whose attention peaks on its last character (or at the cap if none does)."""
    torch.manual_seed(0)
    model = Synthesizer(TINY).eval()
    with torch.no_grad():
        model.stop_proj.bias.fill_(50.0)
    tokens, token_lengths, _ = _batch(b=4, length=6)
    _, lengths, alignments, stopped = model.infer(tokens, token_lengths)
    assert stopped.any()
    for i in range(4):
        steps, last = int(lengths[i]) // TINY.reduction_factor, int(token_lengths[i]) - 1
        at_end = (alignments[i, :steps].argmax(-1) == last).nonzero().flatten().tolist()
        if stopped[i]:
            assert at_end == [steps - 1]
        else:
            assert at_end == [] and int(lengths[i]) >= TINY.max_frames(last + 1)


def test_inference_is_deterministic_by_default():
    torch.manual_seed(0)
    model = Synthesizer(TINY).eval()
    tokens, token_lengths, _ = _batch(b=1, length=8)
    a = model.infer(tokens, token_lengths, max_frames=20)[0]
    b = model.infer(tokens, token_lengths, max_frames=20)[0]
    c = model.infer(tokens, token_lengths, max_frames=20, seed=1)[0]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)  # the seed reaches the prenet dropout


@pytest.mark.slow
def test_overfits_a_few_utterances(tts_train_set):
    """Loss falls, attention becomes diagonal, and free-running generation reproduces the
    target mels and stops at about their length (~15 s on one core)."""
    torch.manual_seed(0)
    dataset = tts_train_set
    r = TINY.reduction_factor
    batch = collate_tts([dataset[i] for i in range(len(dataset))], r)
    assert batch is not None
    step_lengths = (batch.mel_lengths + r - 1) // r
    model = Synthesizer(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        outputs = model(batch.tokens, batch.token_lengths, batch.mels)
        loss = compute_tts_loss(outputs, batch, TtsLossConfig(), r)
        if not losses:
            first_diagonal = diagonal_score(outputs[3], batch.token_lengths, step_lengths)
        losses.append(loss["loss"].item())
        optimizer.zero_grad()
        loss["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    assert losses[-1] < losses[0] / 5
    assert loss["postnet"].item() < 0.25  # L1 in normalised units; ~0.8 untrained
    diagonal = diagonal_score(outputs[3], batch.token_lengths, step_lengths)
    assert first_diagonal < 0.6 and diagonal > 0.95

    model.eval()
    mels, lengths, alignments, stopped = model.infer(batch.tokens, batch.token_lengths)
    assert stopped.all()
    for i in range(len(dataset)):
        target = int(batch.mel_lengths[i])
        assert 0.8 * target <= int(lengths[i]) <= 1.2 * target + r
        n = min(target, int(lengths[i]))
        assert (mels[i, :n] - batch.mels[i, :n]).abs().mean() < 0.4
    free_steps = lengths // r
    assert diagonal_score(alignments, batch.token_lengths, free_steps) > 0.9


def test_an_utterance_comes_out_the_same_in_any_batch():
    torch.manual_seed(0)
    model = Synthesizer(TINY).eval()
    tokens, token_lengths, _ = _batch(b=2, length=8)
    together = model.infer(tokens, token_lengths, max_frames=20)[0]
    alone = model.infer(tokens[1:, : int(token_lengths[1])], token_lengths[1:], max_frames=20)[0]
    torch.testing.assert_close(together[1], alone[0], atol=1e-5, rtol=1e-4)
