"""Tests for speechseq.asr.alignment: token spans, word times and confidences, forced alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechseq.asr.alignment import (
    Word,
    ctc_min_frames,
    forced_align_path,
    frame_seconds,
    make_segment,
    no_speech_score,
    piece_words,
    token_spans,
    viterbi_path,
    word_timings,
)
from speechseq.asr.decoding import greedy_decode
from speechseq.features import FeatureConfig
from speechseq.models.asr import RecognizerConfig
from speechseq.text import CharTokenizer, train_piece_tokenizer

TOK = CharTokenizer()


def _path(chars: str) -> torch.Tensor:
    """Frame ids from a string where "_" is the blank."""
    return torch.tensor([0 if ch == "_" else TOK.encode(ch)[0] for ch in chars])


def _peaky(chars: str, seed: int = 0) -> torch.Tensor:
    """(T, V) log-probs whose best symbol per frame spells ``chars`` ("_" = blank), with random
    competitors so that the other paths differ in probability."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(chars), len(TOK), generator=g)
    logits[torch.arange(len(chars)), _path(chars)] += 4.0
    return logits.log_softmax(dim=-1)


def test_frame_seconds_is_hop_times_subsampling():
    assert frame_seconds(FeatureConfig(), RecognizerConfig(subsampling=4)) == pytest.approx(0.04)
    fc = FeatureConfig(sample_rate=8000, hop_length=80)
    assert frame_seconds(fc, RecognizerConfig(subsampling=2)) == pytest.approx(0.02)
    assert frame_seconds(fc, RecognizerConfig(subsampling=6)) == pytest.approx(0.06)


def test_token_spans_follow_the_ctc_collapse():
    spans = token_spans(_path("_hh_e_ll_l__o"))
    assert [(TOK.decode([s.token]), s.start, s.end) for s in spans] == [
        ("h", 1, 3),
        ("e", 4, 5),
        ("l", 6, 8),
        ("l", 9, 10),  # a repeat after a blank is a new token
        ("o", 12, 13),
    ]
    assert token_spans(_path("____")) == []


def test_word_times_confidences_and_offset():
    chars = "__hi_ _ _yo___"
    log_probs = _peaky(chars)
    words = word_timings(_path(chars), log_probs, TOK, seconds_per_frame=0.04, offset=10.0)
    assert [w.word for w in words] == ["hi", "yo"]
    # a word starts a frame before its first emitting frame; a word of characters ends with
    # its last one: "hi" emits on frames 2-3, "yo" on 9-10
    assert words[0].start == pytest.approx(10.04) and words[0].end == pytest.approx(10.16)
    assert words[1].start == pytest.approx(10.32) and words[1].end == pytest.approx(10.44)
    post = log_probs.exp()
    expected = (post[2, TOK.encode("h")[0]] + post[3, TOK.encode("i")[0]]) / 2
    assert words[0].probability == pytest.approx(float(expected))
    assert all(0.0 < w.probability <= 1.0 for w in words)
    # no earlier than the audio, nor into the previous word's frames
    words = word_timings(_path("hi yo_"), _peaky("hi yo_"), TOK, seconds_per_frame=0.04)
    assert [t for w in words for t in (w.start, w.end)] == pytest.approx([0.0, 0.08, 0.08, 0.20])


def test_word_times_from_word_pieces():
    pieces = train_piece_tokenizer(["hi yo", "hi there yo", "yo there hi"] * 10, vocab_size=16)
    spelt = {w: pieces.encode(w) for w in ("hi", "there", "yo")}
    assert [pieces.vocab[i] for i in spelt["there"]] == ["\u2581", "th", "ere"]  # a lone "▁"
    # frames: 3 blanks, hi, 4 blanks, ▁ th ere, a blank, yo, 6 blanks
    path = torch.tensor(
        [0] * 3 + spelt["hi"] + [0] * 4 + spelt["there"] + [0] + spelt["yo"] + [0] * 6
    )
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(len(path), len(pieces), generator=g)
    logits[torch.arange(len(path)), path] += 4.0
    words = word_timings(path, logits.log_softmax(-1), pieces, seconds_per_frame=0.04)
    assert [w.word for w in words] == ["hi", "there", "yo"]
    # Emitting frames: hi 3, there 9-10 (the lone "▁" on 8 is no word's), yo 12. Each word
    # starts a frame early. A word of pieces ends up to 2 frames late, in at most half the
    # frames after it and not in one the next word's start took: hi takes 2 of 5, there none
    # of 1, yo 2 of 6.
    expected = [(2, 6), (8, 11), (11, 15)]
    # pytest 9's approx compares flat sequences only: compare the times in order
    assert [t for w in words for t in (w.start, w.end)] == pytest.approx(
        [f * 0.04 for span in expected for f in span]
    )


def test_word_piece_times_stay_between_their_neighbours():
    pieces = train_piece_tokenizer(["hi yo", "hi there yo", "yo there hi"] * 10, vocab_size=16)
    (hi,), (yo,) = pieces.encode("hi"), pieces.encode("yo")
    # frames: hi, yo (touching it), 3 blanks, hi, a blank
    path = torch.tensor([hi, yo, 0, 0, 0, hi, 0])
    log_probs = torch.full((len(path), len(pieces)), -9.0)
    log_probs[torch.arange(len(path)), path] = 0.0

    def frames(**kwargs) -> list[float]:
        """Each word's start and end, in frames."""
        words = word_timings(path, log_probs, pieces, seconds_per_frame=0.04, **kwargs)
        assert [w.word for w in words] == ["hi", "yo", "hi"]
        return [t / 0.04 for w in words for t in (w.start, w.end)]

    assert frames(start_lead=0, piece_tail=0) == pytest.approx([0, 1, 1, 2, 5, 6])
    # The first starts at the audio's start, and yo touches it: neither moves. yo's end takes
    # half of the 3 blanks (the next start took 1), the last end half of the 1 blank after it.
    assert frames() == pytest.approx([0, 1, 1, 3.5, 4, 6.5])
    # no time beyond the audio's end
    assert frames(duration=0.25)[-2:] == pytest.approx([4, 0.25 / 0.04])


@pytest.mark.parametrize("seed", range(5))
def test_greedy_path_is_the_forced_alignment_of_the_greedy_transcript(seed):
    log_probs = _peaky("__th_e  _ccaa_t_ s_aatt", seed)  # (T, V)
    greedy = log_probs.argmax(dim=-1)
    (text,) = greedy_decode(log_probs[None], torch.tensor([len(greedy)]), TOK)
    tokens = [s.token for s in token_spans(greedy)]
    forced = forced_align_path(log_probs, tokens)
    assert torch.equal(forced, greedy)
    words = word_timings(greedy, log_probs, TOK, 0.04)
    assert " ".join(w.word for w in words) == text


def test_forced_alignment_of_another_transcript():
    log_probs = _peaky("__ca_t__")  # greedy says "cat"
    tokens = TOK.encode("cut")
    path = forced_align_path(log_probs, tokens)
    assert [s.token for s in token_spans(path)] == tokens
    assert [w.word for w in word_timings(path, log_probs, TOK, 0.04)] == ["cut"]
    assert torch.equal(forced_align_path(log_probs, []), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="cannot emit"):
        forced_align_path(log_probs[:3], TOK.encode("aab"))


@pytest.mark.parametrize("seed", range(3))
def test_numpy_viterbi_takes_torchaudios_path(seed):
    """The torch-free path's forced alignment gives torchaudio's path, on transcripts that fit
    the log-probs and ones that do not (random words, repeats needing a blank between)."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        frames = int(rng.integers(4, 90))
        log_probs = torch.from_numpy(rng.normal(size=(frames, len(TOK))) * 3).float()
        log_probs = log_probs.log_softmax(dim=-1)  # (T, V)
        tokens = [int(t) for t in rng.integers(1, len(TOK), int(rng.integers(1, frames // 2 + 2)))]
        if rng.random() < 0.3:
            tokens = tokens[:1] * 3 + tokens  # repeats
        if ctc_min_frames(tokens) > frames:
            with pytest.raises(ValueError, match="cannot emit"):
                viterbi_path(log_probs.numpy(), tokens)
            continue
        want = forced_align_path(log_probs, tokens).numpy()
        assert np.array_equal(viterbi_path(log_probs.numpy(), tokens), want)
    assert np.array_equal(viterbi_path(np.zeros((4, 3)), []), np.zeros(4, dtype=np.int64))


def test_word_times_and_no_speech_score_alike_from_numpy_and_torch():
    log_probs = _peaky("__th_e  _ccaa_t_ s_aatt", 7)  # (T, V)
    path = log_probs.argmax(dim=-1)
    want = word_timings(path, log_probs, TOK, 0.04, offset=1.0, duration=2.0)
    got = word_timings(path.numpy(), log_probs.numpy(), TOK, 0.04, 1.0, 2.0)
    assert [(w.word, w.start, w.end) for w in got] == [(w.word, w.start, w.end) for w in want]
    # NumPy's exp and torch's differ in the last bits of float32
    assert [w.probability for w in got] == pytest.approx([w.probability for w in want], abs=1e-6)
    assert no_speech_score(log_probs.numpy()) == pytest.approx(no_speech_score(log_probs), abs=1e-6)


def test_piece_words_from_the_greedy_path_or_a_transcript_numpy_or_torch():
    log_probs = _peaky("__ca_t__")  # greedy says "cat"
    for lp in (log_probs, log_probs.numpy()):
        assert [w.word for w in piece_words(lp, None, TOK, 0.04)] == ["cat"]
        words = piece_words(lp, "cut", TOK, 0.04, offset=1.0)
        assert [w.word for w in words] == ["cut"] and words[0].start >= 1.0
    want = piece_words(log_probs, "cut", TOK, 0.04)
    got = piece_words(log_probs.numpy(), "cut", TOK, 0.04)
    assert [(w.start, w.end) for w in got] == [(w.start, w.end) for w in want]


def test_make_segment_spans_its_words():
    words = [Word("a", 1.0, 1.2, 0.9), Word("b", 1.5, 2.0, 0.8)]
    segment = make_segment(words)
    assert (segment.start, segment.end, segment.text) == (1.0, 2.0, "a b")
    assert segment.to_dict(3)["id"] == 3 and segment.to_dict()["words"][1]["word"] == "b"


def test_no_speech_score_is_how_unsure_the_frames_are():
    frames = _path("_h_e_l_l_o_")
    sure = torch.nn.functional.one_hot(frames, len(TOK)).float().mul(12).log_softmax(dim=-1)
    assert no_speech_score(sure) < 0.001
    assert 0.2 < no_speech_score(_peaky("_h_e_l_l_o_")) < 0.5  # best ahead by a margin of 4
    vocabulary = sure.shape[1]
    unsure = torch.full((20, vocabulary), -float(torch.log(torch.tensor(float(vocabulary)))))
    assert no_speech_score(unsure) == pytest.approx(1 - 1 / vocabulary)
    assert no_speech_score(sure[:0]) == 0.0
    segment = make_segment([Word("hello", 0.1, 0.5, 0.9)], no_speech=0.123456)
    assert segment.to_dict()["no_speech"] == 0.123
