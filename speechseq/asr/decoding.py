"""CTC decoding: greedy, beam search, and the choice between them.

A :class:`DecoderConfig` says how log-probs become text; :func:`make_decoder` turns it into a
``decode(log_probs, lengths) -> texts`` function. A checkpoint can carry its own tuned choice in
a JSON file beside it (``best.pt`` → ``best.decoding.json``), which ``--decoder auto`` (the
default) then uses, so a copied model keeps its tuning when the file travels with it::

    {"kind": "beam", "beam_size": 50, "lm": "lm-default.arpa", "lm_weight": 1.0,
     "word_bonus": 0.0, "beam_tokens": 32, "no_speech_threshold": 0.36}

The LM is named relative to the JSON file; keys other than these (notes on how the values were
tuned) are ignored.

Example:
    >>> log_probs, lengths = model(features, feature_lengths)        # (B, T, V), (B,)
    >>> greedy_decode(log_probs, lengths, tokenizer)
    ['the cat sat']
    >>> decode = make_decoder(tokenizer, resolve_decoding(None, tuned_decoding("best.pt")))
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from speechseq.asr.beam import DEFAULT_BEAM_SIZE_TOKEN, BeamSearchDecoder, beam_available
from speechseq.errors import SpeechseqError
from speechseq.text import Tokenizer

if TYPE_CHECKING:  # torch-free at import: asr.lite decodes NumPy log-probs
    import torch

__all__ = [
    "DEFAULT_BEAM_SIZE",
    "DecoderConfig",
    "collapse_ctc",
    "decoding_path",
    "greedy_decode",
    "make_decoder",
    "resolve_decoding",
    "tuned_decoding",
]

DEFAULT_BEAM_SIZE = 50  # when neither the user nor a checkpoint's tuning says

log = logging.getLogger(__name__)


def collapse_ctc(ids: list[int], blank_id: int = 0) -> list[int]:
    """Merge repeats, then drop blanks: the CTC many-to-one map."""
    out, previous = [], None
    for i in ids:
        if i != previous and i != blank_id:
            out.append(i)
        previous = i
    return out


def greedy_decode(
    log_probs: torch.Tensor | np.ndarray, lengths: torch.Tensor | np.ndarray, tokenizer: Tokenizer
) -> list[str]:
    """Best symbol per frame, collapsed.

    Args:
        log_probs: (B, T, V) per-frame log-probabilities (torch or NumPy).
        lengths: (B,) valid frames.
        tokenizer: maps ids back to characters.

    Returns:
        B transcripts with surrounding and repeated spaces removed.
    """
    best = log_probs.argmax(-1)  # (B, T)
    best = best if isinstance(best, np.ndarray) else best.cpu()
    texts = []
    for b in range(best.shape[0]):
        ids = collapse_ctc(best[b, : int(lengths[b])].tolist(), tokenizer.blank_id)
        texts.append(" ".join(tokenizer.decode(ids).split()))
    return texts


@dataclass(frozen=True)
class DecoderConfig:
    """How log-probs become text, as chosen on the command line.

    Attributes:
        kind: "greedy" (fast), "beam", or "auto" (resolved by :func:`resolve_decoding`: a
            checkpoint's own tuning if it has one, else greedy decoding, or beam search if
            ``lm`` is set).
        beam_size: hypotheses kept per frame (beam only); None: the tuned value, else 50.
        lm: word n-gram LM, ARPA or KenLM binary (beam only).
        lm_weight: scale on the LM's log10 probabilities; None: the tuned value, else 1.0.
        word_bonus: score added per word; None: the tuned value, else 0.0.
        beam_tokens: tokens tried per frame, the most probable first (beam only); None: the
            tuned value, else 32 (unlike ``BeamSearchDecoder(beam_size_token=None)``, which
            tries all). A number at least the vocabulary's size tries them all.
        no_speech_threshold: pieces of audio whose no-speech score
            (:func:`speechseq.asr.alignment.no_speech_score`) is above this give no words;
            None: the tuned value, else 1.0 (every piece kept). A property of the model, so a
            checkpoint's tuned value holds whichever decoder is chosen.
    """

    kind: str = "greedy"
    beam_size: int | None = None
    lm: str | Path | None = None
    lm_weight: float | None = None
    word_bonus: float | None = None
    beam_tokens: int | None = None
    no_speech_threshold: float | None = None

    def filled(self) -> DecoderConfig:
        """This config with the search settings left unset (None) at their defaults: beam 50,
        LM weight 1.0, word bonus 0.0, 32 tokens per frame, no-speech threshold 1.0 (after any
        tuning has been applied)."""
        return replace(
            self,
            beam_size=DEFAULT_BEAM_SIZE if self.beam_size is None else self.beam_size,
            lm_weight=1.0 if self.lm_weight is None else self.lm_weight,
            word_bonus=0.0 if self.word_bonus is None else self.word_bonus,
            beam_tokens=DEFAULT_BEAM_SIZE_TOKEN if self.beam_tokens is None else self.beam_tokens,
            no_speech_threshold=(
                1.0 if self.no_speech_threshold is None else self.no_speech_threshold
            ),
        )

    def summary(self) -> str:
        """One line for the log: the decoder, its search and the no-speech threshold."""
        d = self.filled()
        search = (
            f" (size {d.beam_size}, {d.beam_tokens} tokens a frame, LM {d.lm}, weight "
            f"{d.lm_weight}, word bonus {d.word_bonus})"
        )
        return (
            f"decoder: {d.kind}{search if d.kind == 'beam' else ''}; "
            f"no-speech threshold {d.no_speech_threshold}"
        )


def decoding_path(checkpoint: str | Path) -> Path:
    """Where a checkpoint's tuned decoder lives: beside it, ``NAME.decoding.json``."""
    return Path(checkpoint).with_suffix(".decoding.json")


def tuned_decoding(checkpoint: str | Path) -> DecoderConfig | None:
    """The decoder tuned for ``checkpoint`` (its ``NAME.decoding.json``), or None if it has
    none.

    Raises:
        SpeechseqError: the file is there but is not such a JSON object.
    """
    path = decoding_path(checkpoint)
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpeechseqError(f"{path}: not a decoding JSON file ({err})") from None
    if not isinstance(saved, dict):
        raise SpeechseqError(f"{path}: expected a JSON object of decoder settings")
    lm = saved.get("lm")
    return DecoderConfig(
        kind=saved.get("kind", "beam"),
        beam_size=saved.get("beam_size"),
        lm=str(path.parent / lm) if lm else None,
        lm_weight=saved.get("lm_weight"),
        word_bonus=saved.get("word_bonus"),
        beam_tokens=saved.get("beam_tokens"),
        no_speech_threshold=saved.get("no_speech_threshold"),
    )


def resolve_decoding(decoding: DecoderConfig | None, tuned: DecoderConfig | None) -> DecoderConfig:
    """The decoder to run, given the user's choice and the checkpoint's tuning (if any).

    ``auto`` (the default) means the checkpoint's tuning if it has one, else greedy (beam if an
    LM is given). ``beam`` without an LM on a tuned checkpoint uses its LM and tuned weights.
    What the user set explicitly (beam size, LM, weight, bonus, tokens per frame, no-speech
    threshold) always wins. The tuned no-speech threshold holds for every decoder.
    """
    decoding = decoding or DecoderConfig(kind="auto")
    if tuned is not None and (
        decoding.kind == "auto" or (decoding.kind == "beam" and decoding.lm is None)
    ):
        chosen = {f.name: getattr(decoding, f.name) for f in fields(decoding) if f.name != "kind"}
        return replace(tuned, **{name: v for name, v in chosen.items() if v is not None})
    if decoding.kind == "auto":
        decoding = replace(decoding, kind="beam" if decoding.lm is not None else "greedy")
    if tuned is not None and decoding.no_speech_threshold is None:
        decoding = replace(decoding, no_speech_threshold=tuned.no_speech_threshold)
    return decoding


def make_decoder(
    tokenizer: Tokenizer, config: DecoderConfig | None = None
) -> Callable[..., list[str]]:
    """A ``decode(log_probs (B, T, V), lengths (B,)) -> texts`` function for ``config``.

    Beam search without flashlight-text installed falls back to greedy decoding, with a
    warning (logger ``speechseq``).

    Raises:
        SpeechseqError: an unknown kind, an LM without beam search, or a beam that cannot load.
    """
    config = (config or DecoderConfig()).filled()
    if config.kind == "auto":  # no checkpoint tuning at this level: beam only with an LM
        config = replace(config, kind="beam" if config.lm is not None else "greedy")
    if config.kind == "beam" and not beam_available():
        log.warning(
            "beam search needs flashlight-text, which is not installed (pip install "
            "'speechseq[beam]'; it has no wheels for Python 3.13 and newer): decoding greedily"
        )
        config = replace(config, kind="greedy", lm=None)
    if config.kind == "greedy":
        if config.lm is not None:
            raise SpeechseqError("a language model needs the beam decoder (--decoder beam)")
        return functools.partial(greedy_decode, tokenizer=tokenizer)
    if config.kind == "beam":
        # filled() above set every search setting that was unset
        assert config.beam_size is not None
        assert config.lm_weight is not None and config.word_bonus is not None
        return BeamSearchDecoder(
            tokenizer,
            lm=config.lm,
            lm_weight=config.lm_weight,
            word_bonus=config.word_bonus,
            beam_size=config.beam_size,
            beam_size_token=config.beam_tokens,
        )
    raise SpeechseqError(f"unknown decoder {config.kind!r}: use greedy, beam or auto")
