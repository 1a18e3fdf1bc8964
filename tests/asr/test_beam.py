"""Tests for speechseq.asr.beam: beam search without an LM is greedy decoding; with a word LM it
turns an acoustically ambiguous non-word into the LM's word; it finds what torchaudio's wrapper of
the same flashlight search found, from NumPy or torch log-probs, without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from speechseq.asr.beam import BeamHypothesis, BeamSearchDecoder
from speechseq.asr.decoding import DecoderConfig, greedy_decode, make_decoder
from speechseq.asr.lm import arpa_words, build_arpa
from speechseq.errors import SpeechseqError
from speechseq.text import (
    BLANK,
    UNK,
    WORD_START,
    CharTokenizer,
    PieceTokenizer,
    Tokenizer,
    train_piece_tokenizer,
)

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


# --- the same search as torchaudio's ctc_decoder, without torch -------------------------------


def _torchaudio_decode(
    tokenizer: Tokenizer, lm, tmp_path, log_probs: torch.Tensor, lengths: torch.Tensor, **options
) -> list[BeamHypothesis]:
    """What BeamSearchDecoder gave when it wrapped torchaudio's ``ctc_decoder``: a lexicon file
    of the LM's words, one search per utterance (characters: plus a closing "|" frame), the
    best path's tokens read back as text and start frames."""
    from torchaudio.models.decoder import ctc_decoder

    def spelling(word: str) -> str:
        if isinstance(tokenizer, PieceTokenizer):
            return " ".join(tokenizer.spell(word))
        return " ".join(word) + " |"

    pieces = isinstance(tokenizer, PieceTokenizer)
    spellable = set(tokenizer.symbols) - {" "}
    lexicon = tmp_path / "lexicon.txt"
    words = [w for w in arpa_words(lm) if set(w) <= spellable]
    lexicon.write_text("".join(f"{w}\t{spelling(w)}\n" for w in words))
    tokens = ["|" if s == " " else s for s in tokenizer.vocab]
    separator = tokens.index(UNK if pieces else "|")
    decoder = ctc_decoder(
        lexicon=str(lexicon), tokens=tokens, lm=str(lm), blank_token=BLANK,
        sil_token=tokens[separator], **options,
    )  # fmt: skip
    end = torch.full((1, len(tokens)), -1e9)
    end[0, separator] = 0.0
    found = []
    for b, length in enumerate(lengths.tolist()):
        frames = log_probs[b, :length]
        best = decoder((frames if pieces else torch.cat([frames, end])).unsqueeze(0))[0][0]
        text, starts = "", []
        for token, step in zip(best.tokens.tolist(), best.timesteps.tolist(), strict=True):
            if token == separator or not 0 <= step - 1 < length:
                text += " "
            else:
                text += tokenizer.vocab[token].replace(WORD_START, " ")
                starts.append(step - 1)
        found.append(BeamHypothesis(" ".join(text.split()), best.score, tuple(starts)))
    return found


@pytest.mark.parametrize("tokenizer", [TOK, PIECES], ids=["characters", "pieces"])
def test_same_search_as_torchaudio(tokenizer, tmp_path):
    """On continuous random log-probs; where scores tie exactly (peaked made-up frames), the
    order flashlight keeps ties in follows memory addresses, in torchaudio's wrapper too."""
    # words of several pieces too ("cats": "▁cat" "s"), so their trie paths and scores count
    more = ["the cats like these hats", "this kitten sat on those mats", "that shy kitten"]
    lm_path = build_arpa([*LM_TEXT, *more], tmp_path / "lm.arpa", order=3).path
    g = torch.Generator().manual_seed(0)
    log_probs = (3 * torch.randn(6, 30, len(tokenizer), generator=g)).log_softmax(-1)
    lengths = torch.tensor([30, 29, 17, 8, 3, 1])
    options: dict = dict(beam_size=10, beam_size_token=8, beam_threshold=25.0, lm_weight=1.5)
    ours = BeamSearchDecoder(tokenizer, lm=lm_path, word_bonus=0.5, **options)
    theirs = _torchaudio_decode(
        tokenizer, lm_path, tmp_path, log_probs, lengths, word_score=0.5, **options
    )
    found = ours.decode(log_probs, lengths)
    assert [h.text for h in found] == [h.text for h in theirs]
    assert [h.frames for h in found] == [h.frames for h in theirs]
    assert [h.score for h in found] == pytest.approx([h.score for h in theirs], abs=1e-4)
    assert len({h.text for h in found}) > 3  # words were found, not one empty answer


@pytest.mark.parametrize("tokenizer", [TOK, PIECES], ids=["characters", "pieces"])
def test_numpy_and_torch_give_the_same(tokenizer, lm_path):
    g = torch.Generator().manual_seed(1)
    log_probs = (3 * torch.randn(3, 20, len(tokenizer), generator=g)).log_softmax(-1)
    log_probs[0, :, 5] = -torch.inf  # floored as from torch
    lengths = torch.tensor([20, 11, 0])
    for decoder in (BeamSearchDecoder(tokenizer, lm=lm_path), BeamSearchDecoder(tokenizer)):
        expected = decoder.decode(log_probs, lengths)
        assert decoder.decode(log_probs.numpy(), lengths.numpy().astype(np.int32)) == expected
        float64 = log_probs.double().numpy()
        assert decoder.decode(float64, lengths.numpy()) == expected
        # a view that is not C-contiguous
        transposed = np.ascontiguousarray(float64.transpose(1, 0, 2)).transpose(1, 0, 2)
        assert decoder.decode(transposed, lengths.numpy()) == expected
        assert decoder(log_probs.numpy(), lengths.numpy()) == [h.text for h in expected]
    with pytest.raises(SpeechseqError, match="whole numbers"):
        decoder.decode(log_probs.numpy(), lengths.numpy().astype(float))
    with pytest.raises(SpeechseqError, match="NaN"):
        decoder.decode(np.full((1, 2, len(tokenizer)), np.nan), np.array([2]))


def test_decodes_numpy_without_torch(lm_path):
    code = f"""
import sys
import numpy as np
from speechseq.asr.beam import BeamSearchDecoder
from speechseq.text import CharTokenizer

tok = CharTokenizer()
spoken = "the_ cat_ sat"
log_probs = np.full((1, len(spoken), len(tok)), -10.0)  # (B, T, V)
for t, ch in enumerate(spoken):
    log_probs[0, t, tok.blank_id if ch == "_" else tok.encode(ch)[0]] = 0.0
decoder = BeamSearchDecoder(tok, lm={str(lm_path)!r}, beam_size=10)
assert decoder(log_probs, np.array([len(spoken)])) == ["the cat sat"]
assert "torch" not in sys.modules, "torch was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
