"""Tests for speechseq.asr.decoding: the CTC collapse and greedy decoding."""

from __future__ import annotations

import pytest
import torch

from speechseq.asr.decoding import collapse_ctc, greedy_decode
from speechseq.text import CharTokenizer

TOK = CharTokenizer()
B = TOK.blank_id
SPACE = TOK.encode(" ")[0]


def _ids(chars: str) -> list[int]:
    """Frame ids from a string where "_" is the blank."""
    return [B if ch == "_" else TOK.encode(ch)[0] for ch in chars]


def _log_probs(*frame_strings: str, vocab: int = len(TOK)) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, V) log-probs whose best path spells each string, padded with strong "z" frames
    (so padding that leaked into the output would be visible)."""
    longest = max(len(s) for s in frame_strings)
    logits = torch.full((len(frame_strings), longest, vocab), -5.0)
    logits[:, :, TOK.encode("z")[0]] = 5.0  # padding frames vote "z"
    g = torch.Generator().manual_seed(0)
    logits += 0.1 * torch.rand(logits.shape, generator=g)  # ties must not decide anything
    for b, s in enumerate(frame_strings):
        for t, i in enumerate(_ids(s)):
            logits[b, t, i] = 10.0
    lengths = torch.tensor([len(s) for s in frame_strings])
    return logits.log_softmax(dim=-1), lengths


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([], []),
        ([0, 0, 0], []),
        ([1, 2, 3], [1, 2, 3]),
        ([1, 1, 1, 2, 2], [1, 2]),  # repeats merge
        ([1, 0, 1], [1, 1]),  # a blank separates a real double letter
        ([0, 1, 1, 0, 0, 1, 0], [1, 1]),
        ([2, 0, 0, 2, 2, 3, 0, 3], [2, 2, 3, 3]),
        ([5], [5]),
    ],
)
def test_collapse_ctc(frames, expected):
    assert collapse_ctc(frames) == expected


def test_collapse_ctc_with_other_blank_id():
    assert collapse_ctc([3, 3, 1, 3, 2, 2], blank_id=3) == [1, 2]
    # 0 is an ordinary symbol here.
    assert collapse_ctc([0, 0, 3, 0], blank_id=3) == [0, 0]


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ("hhh_eee_ll_ll_ooo", "hello"),  # blank between repeated letters keeps both l's
        ("hheelllloo", "helo"),  # without a blank the l's merge
        ("__c_aa_t__", "cat"),
        ("a_  _b", "a b"),
        ("  hi  __  there   ", "hi there"),  # spaces trimmed and squeezed
        ("it''s", "it's"),
        ("______", ""),
        ("   ", ""),
    ],
)
def test_greedy_decode_single(frames, expected):
    log_probs, lengths = _log_probs(frames)
    assert greedy_decode(log_probs, lengths, TOK) == [expected]


def test_greedy_decode_batch_respects_lengths():
    log_probs, lengths = _log_probs("go_od_", "n_o", "_")

    texts = greedy_decode(log_probs, lengths, TOK)

    assert log_probs.shape == (3, 6, len(TOK))
    assert texts == ["good", "no", ""]  # the "z" padding frames are never decoded


def test_greedy_decode_zero_length():
    log_probs, _ = _log_probs("abc")
    assert greedy_decode(log_probs, torch.tensor([0]), TOK) == [""]


def test_greedy_decode_takes_argmax_not_first_symbol():
    log_probs = torch.log(torch.tensor([[[0.2, 0.1, 0.7] + [0.0] * 26]]) + 1e-9)  # (1, 1, V)
    assert greedy_decode(log_probs, torch.tensor([1]), TOK) == ["a"]
    log_probs = torch.log(torch.tensor([[[0.6, 0.1, 0.3] + [0.0] * 26]]) + 1e-9)
    assert greedy_decode(log_probs, torch.tensor([1]), TOK) == [""]


def test_greedy_decode_space_between_repeated_letter_is_kept():
    # "a a": the space separates the two a's even without a blank.
    log_probs, lengths = _log_probs("aa aa")
    assert greedy_decode(log_probs, lengths, TOK) == ["a a"]
    assert SPACE == 1
