"""Tests for speechseq.metrics: corpus WER/CER, checked against jiwer."""

from __future__ import annotations

import jiwer
import pytest

from speechseq.metrics import cer, error_counts, wer

EXAMPLES = [
    # (references, hypotheses)
    (["the cat sat on the mat"], ["the cat sat on the mat"]),
    (["the cat sat on the mat"], ["the cat sat on mat"]),
    (["hello world"], ["hello there world"]),
    (["a b c d"], ["a x c d e"]),
    (
        ["the cat sat on the mat", "hello world", "a b c d", "it's three o'clock"],
        ["the cat sat on mat", "hello there world", "a x c d e", "its three oclock"],
    ),
    (["short", "a much longer reference sentence here"], ["shirt", "a longer reference here"]),
]


@pytest.mark.parametrize(("refs", "hyps"), EXAMPLES)
def test_wer_matches_jiwer(refs, hyps):
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))


@pytest.mark.parametrize(("refs", "hyps"), EXAMPLES)
def test_cer_matches_jiwer(refs, hyps):
    assert cer(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps))


def test_rates_are_corpus_level_not_averaged():
    refs = ["one", "two three four five six seven eight nine ten eleven"]
    hyps = ["uno", "two three four five six seven eight nine ten eleven"]

    # One substitution over 11 words, not the mean of 100% and 0%.
    assert wer(refs, hyps) == pytest.approx(1 / 11)


def test_hand_counted_errors():
    counts = error_counts(["the cat sat"], ["the bat sat down"])

    assert counts == {"word_errors": 2, "words": 3, "char_errors": 6, "chars": 11}
    assert wer(["the cat sat"], ["the bat sat down"]) == pytest.approx(2 / 3)
    assert cer(["the cat sat"], ["the bat sat down"]) == pytest.approx(6 / 11)


@pytest.mark.parametrize("empty", ["", " ", "   "])
def test_empty_hypothesis_is_all_deletions(empty):
    assert wer(["hello world"], [empty]) == 1.0
    assert cer(["hello world"], [empty]) == 1.0
    assert wer(["hello world"], [empty]) == pytest.approx(jiwer.wer("hello world", ""))
    assert cer(["hello world"], [empty]) == pytest.approx(jiwer.cer("hello world", ""))


def test_empty_hypothesis_in_a_corpus():
    refs, hyps = ["hello world", "good morning"], ["", "good morning"]
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps)) == 0.5


def test_empty_reference_counts_insertions():
    counts = error_counts(["", "a b"], ["x y", "a b"])

    assert counts == {"word_errors": 2, "words": 2, "char_errors": 3, "chars": 3}
    assert wer(["", "a b"], ["x y", "a b"]) == 1.0


def test_all_empty_gives_zero_not_division_error():
    assert wer([""], [""]) == 0.0
    assert cer([""], [""]) == 0.0
    assert wer([], []) == 0.0


def test_extra_whitespace_is_not_an_error():
    assert wer(["hello  world "], [" hello world"]) == 0.0
    assert cer(["hello  world "], [" hello world"]) == 0.0


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        wer(["a", "b"], ["a"])
