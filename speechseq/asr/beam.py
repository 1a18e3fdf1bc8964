"""CTC beam search over characters or word pieces, optionally with a word n-gram language model.

The search is flashlight-text's, through ``torchaudio.models.decoder.ctc_decoder``. Our space
is the decoder's word separator ("|"). With a word LM (KenLM binary or ARPA, e.g. from
:func:`speechseq.asr.lm.build_arpa`) the decoder runs in lexicon mode over the LM's words, each
spelled as its letters then "|": flashlight's lexicon-free mode would feed every *character* to
the LM as if it were a word. Hypotheses are therefore made of LM words only. Without an LM or a
word list the search is lexicon-free, and since flashlight keeps the best path per state (no
log-add), its output then equals greedy decoding: the beam only pays off with words.

With word pieces (:class:`~speechseq.text.PieceTokenizer`) a word is spelled as its pieces, the
first of which carries the word boundary, so no separator is needed; flashlight's "silence" token
is then ``<unk>``, which the model never learns to emit (as NeMo does with flashlight).

Example:
    >>> decoder = BeamSearchDecoder(tokenizer, lm="lm.arpa", lm_weight=1.0, word_bonus=1.0)
    >>> log_probs, lengths = model(features, feature_lengths)   # (B, T, V), (B,)
    >>> decoder(log_probs, lengths)
    ['the cat sat']
"""

from __future__ import annotations

import importlib
import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from speechseq.asr.lm import arpa_words
from speechseq.errors import SpeechseqError
from speechseq.files import quiet_native_stderr
from speechseq.text import BLANK, UNK, WORD_START, PieceTokenizer, Tokenizer

__all__ = ["BeamSearchDecoder", "BeamHypothesis", "DEFAULT_BEAM_SIZE_TOKEN", "beam_available"]

_SEPARATOR = "|"  # flashlight's word boundary ("silence") token
# Tokens the beam tries per frame: all characters; the top eighth of 257 word pieces, which on
# the shipped piece model's dev set decode as all of them do (recipes/synthetic/asr/RESULTS.md).
DEFAULT_BEAM_SIZE_TOKEN = 32


@dataclass(frozen=True)
class BeamHypothesis:
    """The best path of one utterance.

    Attributes:
        text: the transcript, single-spaced.
        score: acoustic + weighted LM + word bonus score of the path.
        frames: the output frame at which each non-space character (or word piece) of ``text``
            starts.
    """

    text: str
    score: float
    frames: tuple[int, ...]


def beam_available() -> bool:
    """Whether flashlight-text, which beam search runs on, is installed (it has no wheels for
    Python 3.13 and newer)."""
    try:
        importlib.import_module("flashlight.lib.text.decoder")
    except ImportError:
        return False
    return True


def _ctc_decoder_factory():
    if not beam_available():
        raise SpeechseqError("beam search needs flashlight-text: pip install 'speechseq[beam]'")
    from torchaudio.models.decoder import ctc_decoder

    return ctc_decoder


def _word_source(binary: Path) -> Path:
    """Where a binary LM's words are: the ARPA file it was built from, beside it with the same
    stem (``lm.bin`` → ``lm.arpa``)."""
    arpa = binary.with_suffix(".arpa")
    if not arpa.is_file():
        raise SpeechseqError(
            f"{binary}: a binary LM needs its words: put the ARPA file it was built from "
            f"beside it ({arpa.name})"
        )
    return arpa


def _is_arpa(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(64).lstrip().startswith(b"\\data\\")


class BeamSearchDecoder:
    """CTC prefix beam search with an optional word n-gram LM.

    Args:
        tokenizer: the recognizer's tokenizer: characters (including the space) or word pieces.
        lm: a KenLM binary or ARPA file of words, or None. Words are matched to the tokenizer
            in lower case, so an upper-case LM works too.
        words: the vocabulary to decode into (default: the ARPA file's unigrams; for a binary
            LM, those of the same-stem ARPA file beside it); given without an LM it restricts
            the output to these words.
        lm_weight: scale on the LM's log10 probabilities.
        word_bonus: added to the score at each word (flashlight's ``word_score``); positive
            values counter the LM's pull towards fewer, shorter words.
        beam_size: hypotheses kept after each frame.
        beam_size_token: tokens tried per frame, the most probable first (None: all). The
            default, 32, covers every character; for the shipped model's 257 word pieces it
            gave the same dev WER and CER as all of them, with 4.7× less decoding time.
        beam_threshold: hypotheses scoring this far below the best are dropped.

    Example:
        >>> decoder = BeamSearchDecoder(CharTokenizer(), lm="lm.arpa")
        >>> decoder.decode(log_probs, lengths)[0].text
        'the cat sat'
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        lm: str | Path | None = None,
        words: Iterable[str] | None = None,
        lm_weight: float = 1.0,
        word_bonus: float = 0.0,
        beam_size: int = 50,
        beam_size_token: int | None = DEFAULT_BEAM_SIZE_TOKEN,
        beam_threshold: float = 50.0,
    ) -> None:
        ctc_decoder = _ctc_decoder_factory()
        self.pieces = isinstance(tokenizer, PieceTokenizer)
        if not self.pieces and (" " not in tokenizer.vocab or _SEPARATOR in tokenizer.vocab):
            raise SpeechseqError("beam search needs a tokenizer with a space and without '|'")
        if tokenizer.vocab[tokenizer.blank_id] != BLANK:
            raise SpeechseqError(f"beam search expects the blank {BLANK!r} at id 0")
        if beam_size < 1:
            raise SpeechseqError(f"beam size must be at least 1, got {beam_size}")
        self.tokenizer = tokenizer
        if isinstance(tokenizer, PieceTokenizer):  # what self.pieces says, for the type checker
            self.separator_id = tokenizer.unk_id
            tokens = list(tokenizer.vocab)
            silence = UNK
        else:
            self.separator_id = tokenizer.vocab.index(" ")
            tokens = [_SEPARATOR if s == " " else s for s in tokenizer.vocab]
            silence = _SEPARATOR

        lm_path = None
        if lm is not None:
            lm_path = Path(lm)
            if not lm_path.is_file():
                raise SpeechseqError(f"{lm_path}: no such language model file")
            if words is None:
                words = arpa_words(lm_path if _is_arpa(lm_path) else _word_source(lm_path))
        spellable = set(tokenizer.symbols) - {" "}
        # The LM's own spelling is kept (its n-grams are looked up by it); the tokens spell it
        # in lower case, so an upper-case ARPA file (LibriSpeech's) keeps its words.
        self.words = (
            None if words is None else [w for w in words if w and set(w.lower()) <= spellable]
        )
        if self.words is not None and not self.words:
            raise SpeechseqError("no word of the LM's vocabulary is spelt with the tokenizer")

        if beam_size_token is not None and beam_size_token < 1:
            raise SpeechseqError(f"tokens per frame must be at least 1, got {beam_size_token}")
        options = dict(
            tokens=tokens,
            beam_size=beam_size,
            beam_size_token=None if beam_size_token is None else min(beam_size_token, len(tokens)),
            beam_threshold=beam_threshold,
            lm_weight=lm_weight,
            word_score=word_bonus,
            blank_token=BLANK,
            sil_token=silence,
        )
        try:
            if self.words is None:
                self._decoder = ctc_decoder(lexicon=None, **options)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    lexicon = Path(tmp) / "lexicon.txt"
                    lexicon.write_text(
                        "".join(f"{w}\t{self._spelling(w.lower())}\n" for w in self.words),
                        encoding="utf-8",
                    )
                    with quiet_native_stderr():
                        self._decoder = ctc_decoder(
                            lexicon=str(lexicon),
                            lm=None if lm_path is None else str(lm_path),
                            **options,
                        )
        except (RuntimeError, ValueError) as err:
            raise SpeechseqError(f"{lm_path or 'decoder'}: cannot load ({err})") from None

    def _spelling(self, word: str) -> str:
        """A lexicon line's spelling: the word's pieces, or its letters then the separator."""
        if isinstance(self.tokenizer, PieceTokenizer):
            return " ".join(self.tokenizer.spell(word))
        return f"{' '.join(word)} {_SEPARATOR}"

    def _check(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> None:
        if log_probs.ndim != 3 or log_probs.shape[-1] != len(self.tokenizer):
            raise SpeechseqError(
                f"log-probs must be (B, T, {len(self.tokenizer)}), got {tuple(log_probs.shape)}"
            )
        if lengths.ndim != 1 or lengths.shape[0] != log_probs.shape[0]:
            raise SpeechseqError(
                f"lengths must be ({log_probs.shape[0]},), got {tuple(lengths.shape)}"
            )
        if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > log_probs.shape[1]):
            raise SpeechseqError(f"lengths must lie in [0, {log_probs.shape[1]}]")
        if torch.isnan(log_probs).any():
            raise SpeechseqError("log-probs contain NaN")

    def _hypothesis(self, emissions: torch.Tensor, length: int) -> BeamHypothesis:
        """Best path of (T, V) ``emissions`` whose first ``length`` frames are real."""
        hyps = self._decoder(emissions.unsqueeze(0).contiguous())[0]  # (1, T', V) in
        if not hyps:
            return BeamHypothesis("", -math.inf, ())
        best = hyps[0]
        chars: list[str] = []
        frames: list[int] = []
        # flashlight's path starts with a separator before frame 0, so its steps are frame + 1.
        for token, step in zip(best.tokens.tolist(), best.timesteps.tolist(), strict=True):
            frame = step - 1
            if token == self.separator_id or not 0 <= frame < length:
                chars.append(" ")
            else:
                chars.append(self.tokenizer.vocab[token])
                frames.append(frame)
        text = "".join(chars).replace(WORD_START, " ")
        return BeamHypothesis(" ".join(text.split()), float(best.score), tuple(frames))

    @torch.no_grad()
    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[BeamHypothesis]:
        """Beam-search each utterance.

        Args:
            log_probs: (B, T, V) per-frame log-probabilities.
            lengths: (B,) valid frames.

        Returns:
            B best hypotheses (text, score, character frames).

        Raises:
            SpeechseqError: shapes that do not match the tokenizer, bad lengths, NaN.
        """
        self._check(log_probs, lengths)
        emissions = log_probs.detach().float().cpu().clamp(min=-1e9)  # (B, T, V), no -inf
        end = torch.full((1, emissions.shape[-1]), -1e9)  # (1, V)
        end[0, self.separator_id] = 0.0
        results = []
        for b, length in enumerate(lengths.tolist()):
            if length == 0:
                results.append(BeamHypothesis("", 0.0, ()))
                continue
            frames = emissions[b, :length]  # (T_b, V)
            if self.words is not None and not self.pieces:
                # In lexicon mode a word ends on "|": close the last one with a sure separator
                # frame, or flashlight drops it (its final step keeps only finished words). A
                # word of pieces is finished by its last piece.
                frames = torch.cat([frames, end])  # (T_b + 1, V)
            results.append(self._hypothesis(frames, length))
        return results

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Transcripts only: ``decoder(log_probs, lengths)`` like ``greedy_decode``."""
        return [h.text for h in self.decode(log_probs, lengths)]
