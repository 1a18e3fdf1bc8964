"""CTC beam search over characters or word pieces, optionally with a word n-gram language model.

The search is flashlight-text's, called directly (the way ``torchaudio.models.decoder.ctc_decoder``
calls it, minus torch: a transcript needs no torch here). Our space is the decoder's word
separator ("|"). With a word LM (KenLM binary or ARPA, e.g. from
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speechseq.asr.lm import arpa_words
from speechseq.errors import SpeechseqError
from speechseq.files import quiet_native_stderr
from speechseq.text import BLANK, UNK, WORD_START, PieceTokenizer, Tokenizer

if TYPE_CHECKING:  # annotations only: decoding takes NumPy arrays without importing torch
    import torch

__all__ = ["BeamSearchDecoder", "BeamHypothesis", "DEFAULT_BEAM_SIZE_TOKEN", "beam_available"]

_SEPARATOR = "|"  # flashlight's word boundary ("silence") token
# Tokens the beam tries per frame: all characters; the top eighth of 257 word pieces, which on
# the shipped piece model's dev set decode as all of them do (recipes/synthetic/asr/RESULTS.md).
DEFAULT_BEAM_SIZE_TOKEN = 32
_FLOOR = np.float32(-1e9)  # what -inf log-probs become: flashlight's sums need finite scores


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


def _flashlight() -> Any:
    """flashlight-text's decoder module (its classes are untyped pybind11 bindings)."""
    if not beam_available():
        raise SpeechseqError("beam search needs flashlight-text: pip install 'speechseq[beam]'")
    return importlib.import_module("flashlight.lib.text.decoder")


def _load_kenlm(path: Path, word_dict: Any) -> Any:
    """KenLM over ``word_dict``'s words: the index the decoder gives a word is its index there."""
    try:
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError:  # older flashlight-text builds put it beside the decoder
        from flashlight.lib.text.decoder import KenLM  # type: ignore[no-redef]
    with quiet_native_stderr():
        return KenLM(str(path), word_dict)


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


def _numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array; a torch tensor (told apart without importing torch) is detached
    and brought to the CPU first, and a floating one made float32 (NumPy has no bfloat16)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()
    return np.asarray(x)


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
        fl = _flashlight()
        self.pieces = isinstance(tokenizer, PieceTokenizer)
        if not self.pieces and (" " not in tokenizer.vocab or _SEPARATOR in tokenizer.vocab):
            raise SpeechseqError("beam search needs a tokenizer with a space and without '|'")
        if tokenizer.vocab[tokenizer.blank_id] != BLANK:
            raise SpeechseqError(f"beam search expects the blank {BLANK!r} at id 0")
        if beam_size < 1:
            raise SpeechseqError(f"beam size must be at least 1, got {beam_size}")
        if beam_size_token is not None and beam_size_token < 1:
            raise SpeechseqError(f"tokens per frame must be at least 1, got {beam_size_token}")
        self.tokenizer = tokenizer
        # flashlight's silence: "|" in place of our space, or <unk> between word pieces
        if isinstance(tokenizer, PieceTokenizer):  # what self.pieces says, for the type checker
            self.separator_id = tokenizer.unk_id
        else:
            self.separator_id = tokenizer.vocab.index(" ")

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

        vocab_size = len(tokenizer)
        common = dict(
            beam_size=beam_size,
            beam_size_token=min(beam_size_token or vocab_size, vocab_size),
            beam_threshold=beam_threshold,
            lm_weight=lm_weight,
            sil_score=0.0,
            log_add=False,
            criterion_type=fl.CriterionType.CTC,
        )
        # In lexicon mode with characters a word ends on "|": decode() closes the last one
        # with a sure separator frame, or flashlight drops it (its final step keeps only
        # finished words). A word of pieces is finished by its last piece.
        self._closing_frame = self.words is not None and not self.pieces
        try:
            if self.words is None:
                options = fl.LexiconFreeDecoderOptions(**common)
                self._lm = fl.ZeroLM()
                self._decoder = fl.LexiconFreeDecoder(
                    options,
                    self._lm,
                    sil_token_idx=self.separator_id,
                    blank_token_idx=tokenizer.blank_id,
                    transitions=[],
                )
            else:
                options = fl.LexiconDecoderOptions(
                    **common, word_score=word_bonus, unk_score=-math.inf
                )
                self._decoder = self._lexicon_decoder(fl, options, lm_path)
        except (RuntimeError, ValueError) as err:
            raise SpeechseqError(f"{lm_path or 'decoder'}: cannot load ({err})") from None

    def _lexicon_decoder(self, fl: Any, options: Any, lm_path: Path | None) -> Any:
        """flashlight's decoder over :attr:`words`, their spellings in a trie built in memory.

        Word ``i`` of the word dictionary (which KenLM maps to its own words by name) is the
        ``i``-th distinct word, then ``<unk>``; each spelling carries the word's LM score from
        the start state, and every trie node the best score below it (smearing MAX), as
        torchaudio's ``ctc_decoder`` builds them from a lexicon file.
        """
        from flashlight.lib.text.dictionary import Dictionary

        names = [w for w in dict.fromkeys(self.words or ()) if w != UNK]
        word_dict = Dictionary([*names, UNK])  # raises ValueError on a duplicate
        # Keep the pybind LM alive as long as the decoder: pytorch/audio#3218.
        self._lm = fl.ZeroLM() if lm_path is None else _load_kenlm(lm_path, word_dict)
        trie = fl.Trie(len(self.tokenizer), self.separator_id)
        start = self._lm.start(False)
        with quiet_native_stderr():  # a spelling shared by over 6 words is reported, not kept
            for index, spelling in enumerate(self._spellings([w.lower() for w in names])):
                if spelling:  # a word whose pieces are all <unk> cannot be spelt
                    score = 0.0 if lm_path is None else self._lm.score(start, index)[1]
                    trie.insert(spelling, index, score)
        trie.smear(fl.SmearingMode.MAX)
        return fl.LexiconDecoder(
            options,
            trie,
            self._lm,
            sil_token_idx=self.separator_id,
            blank_token_idx=self.tokenizer.blank_id,
            unk_token_idx=len(names),
            transitions=[],
            is_token_lm=False,  # a word LM
        )

    def _spellings(self, words: list[str]) -> list[list[int]]:
        """Token ids spelling each (lower-case) word: its pieces, or its letters then "|"."""
        if isinstance(self.tokenizer, PieceTokenizer):
            return self.tokenizer.encode_many(words)
        ids = {s: i for i, s in enumerate(self.tokenizer.vocab)}
        return [[ids[ch] for ch in word] + [self.separator_id] for word in words]

    def _check(self, log_probs: np.ndarray, lengths: np.ndarray) -> None:
        if log_probs.ndim != 3 or log_probs.shape[-1] != len(self.tokenizer):
            raise SpeechseqError(
                f"log-probs must be (B, T, {len(self.tokenizer)}), got {tuple(log_probs.shape)}"
            )
        if lengths.ndim != 1 or lengths.shape[0] != log_probs.shape[0]:
            raise SpeechseqError(
                f"lengths must be ({log_probs.shape[0]},), got {tuple(lengths.shape)}"
            )
        if not np.issubdtype(lengths.dtype, np.integer):
            raise SpeechseqError(f"lengths must be whole numbers, got {lengths.dtype}")
        if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > log_probs.shape[1]):
            raise SpeechseqError(f"lengths must lie in [0, {log_probs.shape[1]}]")
        if np.isnan(log_probs).any():
            raise SpeechseqError("log-probs contain NaN")

    def _hypothesis(self, results: list, length: int) -> BeamHypothesis:
        """The best of flashlight's ``results`` for an utterance of ``length`` real frames."""
        if not results:
            return BeamHypothesis("", -math.inf, ())
        best = results[0]
        tokens: list[int] = best.tokens  # (T' + 2,): a separator step before and after the frames
        chars: list[str] = []
        frames: list[int] = []
        for step, token in enumerate(tokens):
            if token == self.tokenizer.blank_id or (step and token == tokens[step - 1]):
                continue  # CTC: a token starts where it differs from the step before
            frame = step - 1
            if token == self.separator_id or not 0 <= frame < length:
                chars.append(" ")
            else:
                chars.append(self.tokenizer.vocab[token])
                frames.append(frame)
        text = "".join(chars).replace(WORD_START, " ")
        return BeamHypothesis(" ".join(text.split()), float(best.score), tuple(frames))

    def decode(
        self, log_probs: np.ndarray | torch.Tensor, lengths: np.ndarray | torch.Tensor
    ) -> list[BeamHypothesis]:
        """Beam-search each utterance.

        Args:
            log_probs: (B, T, V) per-frame log-probabilities, NumPy (float32 or float64) or a
                torch tensor.
            lengths: (B,) valid frames, integers.

        Returns:
            B best hypotheses (text, score, character frames).

        Raises:
            SpeechseqError: shapes that do not match the tokenizer, bad lengths, NaN.
        """
        scores, lengths = _numpy(log_probs), _numpy(lengths)
        self._check(scores, lengths)
        batch, time, vocab = scores.shape
        extra = int(self._closing_frame)
        # C-contiguous float32, as flashlight reads it, with room for a closing frame.
        emissions = np.empty((batch, time + extra, vocab), dtype=np.float32)  # (B, T + 1?, V)
        emissions[:, :time] = scores
        np.maximum(emissions, _FLOOR, out=emissions)  # no -inf
        if extra:
            end = np.full(vocab, _FLOOR, dtype=np.float32)  # (V,): a sure separator
            end[self.separator_id] = 0.0
            emissions[np.arange(batch), lengths] = end  # frame T_b of utterance b
        results = []
        for b, length in enumerate(lengths.tolist()):
            if length == 0:
                results.append(BeamHypothesis("", 0.0, ()))
                continue
            pointer = emissions.ctypes.data + b * emissions.strides[0]  # (T_b + 1?, V) from here
            found = self._decoder.decode(pointer, length + extra, vocab)
            results.append(self._hypothesis(found, length))
        return results

    def __call__(
        self, log_probs: np.ndarray | torch.Tensor, lengths: np.ndarray | torch.Tensor
    ) -> list[str]:
        """Transcripts only: ``decoder(log_probs, lengths)`` like ``greedy_decode``."""
        return [h.text for h in self.decode(log_probs, lengths)]
