"""Text normalisation and the character tokenizer.

Example:
    >>> normalize_text("It's 3 o'clock — the 2nd time!")
    "it's three o'clock the second time"
    >>> tok = CharTokenizer()
    >>> tok.decode(tok.encode("hi there"))
    'hi there'
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Sequence

from num2words import num2words

__all__ = ["normalize_text", "CharTokenizer", "BLANK"]

BLANK = "<blank>"

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
# Letters that Unicode decomposition does not reduce to a-z.
_LIGATURES = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "TH",
        "ð": "d",
        "Ð": "D",
        "ı": "i",
    }
)
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_NUMBER = re.compile(r"\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NOT_ALLOWED = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r"\s+")


def _spell(number: str, to: str = "cardinal") -> str:
    return " " + num2words(int(number), to=to) + " "


def _spell_decimal(match: re.Match) -> str:
    digits = " ".join(num2words(int(d)) for d in match.group(2))
    return f" {num2words(int(match.group(1)))} point {digits} "


def _clean_apostrophes(word: str) -> str:
    # Keep apostrophes inside words (don't, o'clock) and a plural possessive (dogs');
    # drop the ones that are quotation marks.
    word = word.lstrip("'")
    stripped = word.rstrip("'")
    if stripped != word and stripped.endswith("s"):
        return stripped + "'"
    return stripped


def normalize_text(text: str) -> str:
    """Lower-case, spell out numbers, keep only a–z, apostrophe and single spaces.

    Args:
        text: any text.

    Returns:
        the normalised text (may be empty if nothing speakable was left).
    """
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).translate(_LIGATURES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("&", " and ").replace("%", " percent ")
    text = _THOUSANDS.sub("", text)
    text = _ORDINAL.sub(lambda m: _spell(m.group(1), "ordinal"), text)
    text = _DECIMAL.sub(_spell_decimal, text)
    text = _NUMBER.sub(lambda m: _spell(m.group(0)), text)
    text = _NOT_ALLOWED.sub(" ", text.lower())
    words = (_clean_apostrophes(w) for w in text.split())
    return _SPACES.sub(" ", " ".join(w for w in words if w)).strip()


class CharTokenizer:
    """Characters ↔ ids, with the CTC blank at id 0.

    Args:
        symbols: the characters after the blank; default space, a–z and apostrophe.

    Example:
        >>> CharTokenizer().encode("ab")
        [2, 3]
    """

    def __init__(self, symbols: Sequence[str] | None = None) -> None:
        if symbols is None:
            symbols = [" ", *string.ascii_lowercase, "'"]
        self.symbols: list[str] = list(symbols)
        self.vocab: list[str] = [BLANK, *self.symbols]
        self._ids = {s: i for i, s in enumerate(self.vocab)}

    @property
    def blank_id(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """Ids of an already-normalised text; characters outside the vocabulary are dropped."""
        return [self._ids[ch] for ch in text if ch in self._ids and ch != BLANK]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids (blanks skipped; no CTC collapsing — that is the decoder's job)."""
        return "".join(self.vocab[i] for i in ids if i != 0)

    def to_dict(self) -> dict:
        return {"type": "char", "symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        return cls(d["symbols"])
