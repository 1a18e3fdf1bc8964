"""Tests for speechseq.asr.beam: beam search without an LM is greedy decoding; with a word LM it
turns an acoustically ambiguous non-word into the LM's word."""

from __future__ import annotations

import sys

import pytest
import torch

from speechseq.asr.beam import BeamSearchDecoder
from speechseq.asr.decoding import DecoderConfig, greedy_decode, make_decoder
from speechseq.asr.lm import build_arpa
from speechseq.errors import SpeechseqError
from speechseq.text import BLANK, UNK, CharTokenizer, train_piece_tokenizer

TOK = CharTokenizer()
LM_TEXT = ["the cat sat on the mat", "the cat sat", "a cat sat on a hat", "i like my hat"]


def _log_probs(*frames: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, V) log-probs from frame lists; a frame is a character ("_" = blank), whose logit
    is 8 against -8 elsewhere, or a {character: logit} dict for a close call."""
    longest = max(len(f) for f in frames)
    logits = torch.full((len(frames), longest, len(TOK)), -8.0)
    logits[:, :, TOK.encode("z")[0]] = 8.0  # padding votes "z": leaks would show
    for b, utterance in enumerate(frames):
        for t, frame in enumerate(utterance):
            logits[b, t] = -8.0
            for ch, value in (frame if isinstance(frame, dict) else {frame: 8.0}).items():
                logits[b, t, TOK.blank_id if ch == "_" else TOK.encode(ch)[0]] = value
    return logits.log_softmax(dim=-1), torch.tensor([len(f) for f in frames])


# "the ?at sat", where the unclear letter leans to "k", then "h", then "c".
AMBIGUOUS = [*"the_ ", {"k": 3.0, "h": 2.8, "c": 2.5}, *"_at_ sat"]


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    return build_arpa(LM_TEXT, tmp_path_factory.mktemp("lm") / "lm.arpa", order=3).path


def test_without_lm_equals_greedy():
    frames = ["hhh_eee_ll_ll_ooo", "__c_aa_t__", "  hi  __  there   ", "it''s", "______", "aa aa"]
    log_probs, lengths = _log_probs(*map(list, frames))
    hyps = BeamSearchDecoder(TOK, beam_size=8).decode(log_probs, lengths)
    assert [h.text for h in hyps] == greedy_decode(log_probs, lengths, TOK)
    assert [h.text for h in hyps] == ["hello", "cat", "hi there", "it's", "", "a a"]
    assert hyps[1].frames == (2, 4, 7)  # c, a, t start there
    assert all(len(h.frames) == len(h.text.replace(" ", "")) for h in hyps)


def test_without_lm_equals_greedy_on_random_peaked_frames():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(TOK), (6, 40), generator=g)
    ids[:, ::3] = TOK.blank_id  # mostly blanks, as CTC models emit
    logits = torch.randn(6, 40, len(TOK), generator=g)
    logits.scatter_(2, ids.unsqueeze(-1), 6.0)
    log_probs, lengths = logits.log_softmax(-1), torch.tensor([40, 39, 25, 10, 1, 0])
    decoder = BeamSearchDecoder(TOK)
    assert decoder(log_probs, lengths) == greedy_decode(log_probs, lengths, TOK)


def test_lm_turns_a_non_word_into_the_lm_word(lm_path):
    log_probs, lengths = _log_probs(AMBIGUOUS)
    assert greedy_decode(log_probs, lengths, TOK) == ["the kat sat"]
    # The word list alone forces a real word, the acoustically closest one ...
    assert BeamSearchDecoder(TOK, lm=lm_path, lm_weight=0.0)(log_probs, lengths) == ["the hat sat"]
    # ... and the LM picks the one it has seen after "the" and before "sat".
    (hyp,) = BeamSearchDecoder(TOK, lm=lm_path, lm_weight=1.0).decode(log_probs, lengths)
    assert hyp.text == "the cat sat"
    assert hyp.frames == (0, 1, 2, 5, 7, 8, 11, 12, 13)


def test_lm_keeps_the_last_word_and_handles_a_batch(lm_path):
    # The last word ends without a trailing space; the decoder must still emit it.
    log_probs, lengths = _log_probs(list("the_ mat"), list("a_ hat_"), AMBIGUOUS, [])
    decoder = BeamSearchDecoder(TOK, lm=lm_path, word_bonus=0.5, beam_size=20)
    assert decoder(log_probs, lengths) == ["the mat", "a hat", "the cat sat", ""]


def test_words_without_lm_restrict_the_output():
    log_probs, lengths = _log_probs(AMBIGUOUS)
    assert BeamSearchDecoder(TOK, words=["the", "cat", "sat"])(log_probs, lengths) == [
        "the cat sat"
    ]


@pytest.mark.parametrize(
    ("log_probs", "lengths", "message"),
    [
        (torch.zeros(2, 5), torch.tensor([5, 5]), "must be"),
        (torch.zeros(1, 5, 10), torch.tensor([5]), "must be"),
        (torch.zeros(2, 5, len(TOK)), torch.tensor([5]), "lengths"),
        (torch.zeros(1, 5, len(TOK)), torch.tensor([6]), "lengths"),
        (torch.zeros(1, 5, len(TOK)), torch.tensor([-1]), "lengths"),
        (torch.full((1, 5, len(TOK)), float("nan")), torch.tensor([5]), "NaN"),
    ],
)
def test_bad_inputs(log_probs, lengths, message):
    with pytest.raises(SpeechseqError, match=message):
        BeamSearchDecoder(TOK).decode(log_probs, lengths)


def test_bad_setup(tmp_path, monkeypatch):
    with pytest.raises(SpeechseqError, match="no such language model"):
        BeamSearchDecoder(TOK, lm=tmp_path / "missing.arpa")
    binary = tmp_path / "lm.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\0")
    with pytest.raises(SpeechseqError, match="lm.arpa"):  # its words: the ARPA beside it
        BeamSearchDecoder(TOK, lm=binary)
    with pytest.raises(SpeechseqError, match="cannot load"):
        BeamSearchDecoder(TOK, lm=binary, words=["cat"])
    (tmp_path / "lm.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\tcat\n\n\\end\\\n")
    with pytest.raises(SpeechseqError, match="cannot load"):  # words found; the binary is junk
        BeamSearchDecoder(TOK, lm=binary)
    with pytest.raises(SpeechseqError, match="space"):
        BeamSearchDecoder(CharTokenizer(list("abc")))
    with pytest.raises(SpeechseqError, match="no word"):
        BeamSearchDecoder(TOK, words=["ÜBER", "123"])
    monkeypatch.setitem(sys.modules, "flashlight.lib.text.decoder", None)
    with pytest.raises(SpeechseqError, match=r"pip install 'speechseq\[beam\]'"):
        BeamSearchDecoder(TOK)


def test_an_upper_case_lm_keeps_its_words(lm_path, tmp_path):
    """LibriSpeech's published LMs are upper case; the tokenizer is lower case."""
    lines = lm_path.read_text().splitlines()
    upper = [line if line.startswith(("\\", "ngram ")) else line.upper() for line in lines]
    markers = {"<S>": "<s>", "</S>": "</s>", "<UNK>": "<unk>"}  # as LibriSpeech's keep them
    for big, small in markers.items():
        upper = [line.replace(big, small) for line in upper]
    (tmp_path / "upper.arpa").write_text("\n".join(upper) + "\n")
    log_probs, lengths = _log_probs(AMBIGUOUS)
    for lm in (lm_path, tmp_path / "upper.arpa"):
        decoder = BeamSearchDecoder(TOK, lm=lm, beam_size=10)
        assert decoder.words is not None and {"CAT", "cat"} & set(decoder.words)
        assert decoder(log_probs, lengths) == ["the cat sat"]


def test_make_decoder(lm_path):
    log_probs, lengths = _log_probs(AMBIGUOUS)
    assert make_decoder(TOK)(log_probs, lengths) == ["the kat sat"]  # greedy by default
    beam = make_decoder(TOK, DecoderConfig(kind="beam", lm=lm_path, beam_size=10))
    assert isinstance(beam, BeamSearchDecoder)
    assert beam(log_probs, lengths) == ["the cat sat"]
    with pytest.raises(SpeechseqError, match="needs the beam decoder"):
        make_decoder(TOK, DecoderConfig(kind="greedy", lm=lm_path))
    with pytest.raises(SpeechseqError, match="unknown decoder"):
        make_decoder(TOK, DecoderConfig(kind="viterbi"))
    # auto, with no shipped tuning at this level: beam if an LM is given, else greedy
    assert isinstance(make_decoder(TOK, DecoderConfig(kind="auto", lm=lm_path)), BeamSearchDecoder)
    assert make_decoder(TOK, DecoderConfig(kind="auto"))(log_probs, lengths) == ["the kat sat"]


# --- word pieces --------------------------------------------------------------------------------

PIECES = train_piece_tokenizer([*LM_TEXT, "the hat", "the kat kit"] * 10, vocab_size=40)


def _piece_log_probs(*frames: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`_log_probs` over :data:`PIECES`: a frame is a piece ("_" = blank) or a
    {piece: logit} dict."""
    longest = max(len(f) for f in frames)
    logits = torch.full((len(frames), longest, len(PIECES)), -8.0)
    for b, utterance in enumerate(frames):
        for t, frame in enumerate(utterance):
            for piece, value in (frame if isinstance(frame, dict) else {frame: 8.0}).items():
                logits[b, t, PIECES.vocab.index(BLANK if piece == "_" else piece)] = value
    return logits.log_softmax(dim=-1), torch.tensor([len(f) for f in frames])


def _spelt(text: str) -> list[str]:
    """The pieces of ``text``, a blank after each."""
    return [p for i in PIECES.encode(text) for p in (PIECES.vocab[i], "_")]


def test_pieces_without_lm_equal_greedy():
    frames = [_spelt("the cat sat"), ["_", *_spelt("a hat")], ["_", "_"]]
    log_probs, lengths = _piece_log_probs(*frames)
    hyps = BeamSearchDecoder(PIECES, beam_size=8).decode(log_probs, lengths)
    assert [h.text for h in hyps] == greedy_decode(log_probs, lengths, PIECES)
    assert [h.text for h in hyps] == ["the cat sat", "a hat", ""]
    assert hyps[1].frames == tuple(range(1, 2 * len(PIECES.encode("a hat")), 2))


def test_pieces_with_lm_pick_the_lm_word_and_keep_the_last_one(lm_path):
    # "the ?at sat" where the first piece of the unclear word leans to "kat", then "hat", "cat".
    kat, hat, cat = (PIECES.spell(w) for w in ("kat", "hat", "cat"))
    assert len(kat) == len(hat) == len(cat) == 1  # whole-word pieces, so one frame decides
    unclear = {kat[0]: 3.0, hat[0]: 2.8, cat[0]: 2.5}
    frames = [*_spelt("the"), unclear, "_", *_spelt("sat")]
    log_probs, lengths = _piece_log_probs(frames, _spelt("the mat"))
    assert greedy_decode(log_probs, lengths, PIECES) == ["the kat sat", "the mat"]
    with_lm = BeamSearchDecoder(PIECES, lm=lm_path, lm_weight=1.0, beam_size=20)
    assert with_lm(log_probs, lengths) == ["the cat sat", "the mat"]
    # A word list alone forces the closest real word; "cats" is spelt with two pieces.
    assert PIECES.spell("cats") == ["\u2581cat", "s"]
    log_probs, lengths = _piece_log_probs(frames, _spelt("the cats"))
    words_only = BeamSearchDecoder(PIECES, words=["the", "hat", "cat", "cats", "sat", "mat"])
    assert words_only(log_probs, lengths) == ["the hat sat", "the cats"]


def test_tokens_tried_per_frame(lm_path):
    """The beam tries only the ``beam_size_token`` most probable tokens of a frame. Where the
    LM's word is the third most probable piece, the default (32) and 3 reach it and 2 do not;
    where it ranks below 32, only a wider setting (or None: all) does."""
    kat, hat, cat = (PIECES.spell(w)[0] for w in ("kat", "hat", "cat"))

    def decode(unclear: dict, **kwargs) -> str:
        frames = [*_spelt("the"), unclear, "_", *_spelt("sat")]
        return BeamSearchDecoder(PIECES, lm=lm_path, **kwargs)(*_piece_log_probs(frames))[0]

    third = {kat: 3.0, hat: 2.8, cat: 2.5}
    assert decode(third) == decode(third, beam_size_token=3) == "the cat sat"
    assert decode(third, beam_size_token=2) == "the hat sat"
    # DecoderConfig.beam_tokens (--beam-tokens) reaches the decoder; unset, it is the default
    scores = _piece_log_probs([*_spelt("the"), third, "_", *_spelt("sat")])
    for tokens, text in ((2, "the hat sat"), (None, "the cat sat")):
        beam = make_decoder(PIECES, DecoderConfig(kind="beam", lm=lm_path, beam_tokens=tokens))
        assert beam(*scores)[0] == text
    # every other piece above "cat": it ranks last of the 39 pieces
    others = [p for p in PIECES.vocab if p not in (BLANK, UNK, cat)]
    last = {**dict.fromkeys(others, 2.9), kat: 3.0, cat: 2.5}
    assert len(others) >= 32
    assert decode(last, beam_size_token=None) == decode(last, beam_size_token=40) == "the cat sat"
    assert decode(last) != "the cat sat"
    with pytest.raises(SpeechseqError, match="at least 1"):
        BeamSearchDecoder(PIECES, beam_size_token=0)
