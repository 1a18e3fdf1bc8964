"""Tests for speechseq.text: transcript normalisation and the character tokenizer."""

from __future__ import annotations

import json
import string

import pytest

from speechseq.text import BLANK, CharTokenizer, normalize_text


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
