"""Tests for speechseq.text: transcript normalisation, the character and word-piece tokenizers."""

from __future__ import annotations

import json
import string

import pytest

from speechseq.errors import SpeechseqError
from speechseq.text import (
    BLANK,
    UNK,
    CharTokenizer,
    PieceTokenizer,
    normalize_text,
    tokenizer_from_dict,
    train_piece_tokenizer,
)

PIECE_TEXT = [
    "the cat sat on the mat",
    "the hat is on the cat",
    "a cat and a hat",
    "that is the cat's hat",
] * 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("SHOUTING IN CAPS", "shouting in caps"),
        ("  multiple   spaces\n\tand tabs ", "multiple spaces and tabs"),
        ('semi;colons: (brackets) [and] "quotes"...', "semi colons brackets and quotes"),
        ("A.B.C.", "a b c"),
        ("well-known e-mail", "well known e mail"),
    ],
)
def test_normalize_lower_cases_and_strips_punctuation(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("don't", "don't"),
        ("It's 3 o'clock", "it's three o'clock"),
        ("rock'n'roll", "rock'n'roll"),
        ("Don\u2019t", "don't"),  # typographic apostrophe becomes a plain one
        ("'quoted text'", "quoted text"),  # quotation marks are not apostrophes
        ("the dogs' bone", "the dogs' bone"),  # plural possessive keeps its apostrophe
        ("' lone '", "lone"),
        ("' '", ""),
    ],
)
def test_normalize_keeps_only_inner_apostrophes(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 cats", "three cats"),
        ("42", "forty two"),
        ("1,000 people", "one thousand people"),
        ("1,000,000", "one million"),
        ("2nd", "second"),
        ("21st century", "twenty first century"),
        ("the 3rd and 4th", "the third and fourth"),
        ("3.14", "three point one four"),
        ("0.5", "zero point five"),
        ("100%", "one hundred percent"),
        ("salt & pepper", "salt and pepper"),
        ("It's 3 o'clock \u2014 the 2nd time!", "it's three o'clock the second time"),
    ],
)
def test_normalize_spells_out_numbers(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Caf\u00e9", "cafe"),
        ("na\u00efve r\u00e9sum\u00e9", "naive resume"),
        ("\u00dcber Se\u00f1or", "uber senor"),
        ("Cafe\u0301", "cafe"),  # already decomposed: e + combining acute
    ],
)
def test_normalize_folds_accents(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "!!! ---", "...", "#@*/\\", "\u2014 \u2026"])
def test_normalize_gives_empty_for_only_symbols(text):
    assert normalize_text(text) == ""


def test_normalize_output_uses_only_tokenizer_characters():
    text = "Mr. O'Neil paid $3.50 for 2 caf\u00e9s on the 1st of May — 50% off!"
    out = normalize_text(text)
    assert set(out) <= set(CharTokenizer().symbols)
    assert "  " not in out and out == out.strip()


def test_normalize_is_idempotent():
    once = normalize_text("It's the 2nd time: 3.5 km, caf\u00e9 & bar!")
    assert normalize_text(once) == once


# --- CharTokenizer ------------------------------------------------------------------------------


def test_tokenizer_vocab():
    tok = CharTokenizer()

    assert tok.blank_id == 0
    assert tok.vocab[0] == BLANK
    assert len(tok) == 29
    assert tok.vocab[1:] == [" ", *string.ascii_lowercase, "'"]
    assert len(set(tok.vocab)) == len(tok.vocab)


def test_tokenizer_encode_ids():
    tok = CharTokenizer()

    assert tok.encode("ab") == [2, 3]
    assert tok.encode("a z'") == [2, 1, 27, 28]
    assert 0 not in tok.encode("hello world")


def test_tokenizer_round_trip():
    tok = CharTokenizer()
    text = "it's three o'clock the second time"

    ids = tok.encode(text)

    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_tokenizer_drops_unknown_characters_and_skips_blanks():
    tok = CharTokenizer()

    assert tok.encode("Hi!") == tok.encode("i")
    assert tok.encode(BLANK) == tok.encode("blank")  # "<" and ">" are dropped, letters kept
    assert tok.decode([0, 9, 0, 0, 10, 0]) == "hi"
    assert tok.decode([]) == ""


def test_tokenizer_decode_does_not_collapse_repeats():
    tok = CharTokenizer()
    assert tok.decode(tok.encode("llama")) == "llama"


def test_tokenizer_to_dict_from_dict():
    tok = CharTokenizer()

    d = tok.to_dict()
    again = CharTokenizer.from_dict(json.loads(json.dumps(d)))  # survives a JSON round trip

    assert d["type"] == "char"
    assert again.vocab == tok.vocab
    assert again.encode("hello world") == tok.encode("hello world")


def test_tokenizer_custom_symbols():
    tok = CharTokenizer(["x", "y", " "])

    assert len(tok) == 4
    assert tok.encode("xy yx") == [1, 2, 3, 2, 1]
    assert tok.decode([1, 2, 3]) == "xy "
    assert CharTokenizer.from_dict(tok.to_dict()).vocab == [BLANK, "x", "y", " "]


@pytest.mark.parametrize(
    "raw, expected",
    [("straße", "strasse"), ("Søren", "soren"), ("Œuvre", "oeuvre"), ("Æble", "aeble")],
)
def test_letters_without_decomposition_are_spelt_in_ascii(raw, expected):
    assert normalize_text(raw) == expected


# --- PieceTokenizer -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pieces() -> PieceTokenizer:
    return train_piece_tokenizer(PIECE_TEXT, vocab_size=30)


def test_pieces_vocab_has_the_blank_first_and_merges_frequent_words(pieces):
    assert len(pieces) == 31 and pieces.vocab[0] == BLANK and pieces.blank_id == 0
    assert pieces.vocab[pieces.unk_id] == UNK
    assert "\u2581the" in pieces.vocab  # a whole frequent word is one piece, marked word-initial
    assert set(pieces.symbols) == set("the cat sonmiad'")


def test_pieces_round_trip_and_word_initial_pieces(pieces):
    for text in ["the cat sat on the mat", "a hat", "mat's", "sad cats"]:
        ids = pieces.encode(text)
        assert 0 not in ids and pieces.unk_id not in ids
        assert pieces.decode(ids) == " " + text  # each word's first piece carries its space
    the = pieces.encode("the")
    assert len(the) == 1 and pieces.decode(the) == " the"
    assert len(pieces.encode("the cat sat on the mat")) < len("the cat sat on the mat") / 2


def test_pieces_encode_many_is_encode_of_each(pieces):
    texts = ["the cat", "zebra", "", "a dog sat on the mat", "the the"]
    assert pieces.encode_many(texts) == [pieces.encode(t) for t in texts]


def test_pieces_drop_what_they_cannot_spell_and_skip_blanks(pieces):
    assert pieces.decode(pieces.encode("the zebra")) == " the ea"  # z, b, r were never seen
    assert pieces.decode(pieces.encode("the zoo")) == " the oo"  # and "z" takes no space along
    ids = pieces.encode("the cat")
    assert pieces.decode([0, ids[0], 0, pieces.unk_id, ids[1]]) == " the cat"
    assert pieces.spell("cats") == [pieces.vocab[i] for i in pieces.encode("cats")]


def test_piece_training_is_deterministic_and_survives_a_json_round_trip(pieces):
    assert train_piece_tokenizer(PIECE_TEXT, vocab_size=30).model == pieces.model
    d = json.loads(json.dumps(pieces.to_dict()))
    again = tokenizer_from_dict(d)
    assert d["type"] == "sentencepiece" and isinstance(again, PieceTokenizer)
    assert again.vocab == pieces.vocab
    assert again.encode("the mat") == pieces.encode("the mat")
    assert isinstance(tokenizer_from_dict(CharTokenizer().to_dict()), CharTokenizer)


def test_piece_training_gives_fewer_pieces_when_the_text_is_small():
    tok = train_piece_tokenizer(["ab ab ba"], vocab_size=500)
    assert 4 <= len(tok) < 20
    assert tok.decode(tok.encode("ba ab")) == " ba ab"


def test_piece_tokenizer_errors():
    with pytest.raises(SpeechseqError, match="no text"):
        train_piece_tokenizer(["", "  "], vocab_size=30)
    with pytest.raises(SpeechseqError, match="SentencePiece"):
        PieceTokenizer(b"not a model")
    with pytest.raises(SpeechseqError, match="tokenizer type"):
        tokenizer_from_dict({"type": "phonemes"})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("In 1999.", "in nineteen ninety nine"),
        ("From 2005 to 2010", "from two thousand and five to twenty ten"),
        ("the 1980s", "the nineteen eighties"),
        ("It cost $5.50", "it cost five dollars fifty cents"),
        ("$1 or £3 or €4.01", "one dollar or three pounds or four euros one cent"),
        ("at 10:30 or 9:05 or 12:00", "at ten thirty or nine oh five or twelve o'clock"),
        ("the 3rd and 21st", "the third and twenty first"),
        ("Dr. Smith, Mr. Jones vs. St. Louis", "doctor smith mister jones versus saint louis"),
        ("pens, e.g. blue ones, etc.", "pens for example blue ones et cetera"),
        ("No. 5", "number five"),
        ("10000 and 1,000,000", "ten thousand and one million"),
    ],
)
def test_numbers_money_times_years_and_abbreviations_are_said_as_people_say_them(text, said):
    assert normalize_text(text) == said
