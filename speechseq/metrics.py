"""Word and character error rates (jiwer), over a corpus rather than averaged per utterance."""

from __future__ import annotations

from collections.abc import Sequence

import jiwer

__all__ = ["wer", "cer", "error_counts"]


def _nonempty(texts: Sequence[str]) -> list[str]:
    # jiwer refuses empty references; a lone space is an empty sentence of zero words.
    return [t if t.strip() else "" for t in texts]


def error_counts(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, int]:
    """Edit counts for words and characters: ``word_errors``, ``words``, ``char_errors``,
    ``chars``."""
    word_errors = words = char_errors = chars = 0
    for ref, hyp in zip(_nonempty(references), _nonempty(hypotheses), strict=True):
        ref_words, hyp_words = ref.split(), hyp.split()
        words += len(ref_words)
        chars += len(" ".join(ref_words))
        if ref_words:
            w = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words) or "")
            word_errors += w.substitutions + w.deletions + w.insertions
            c = jiwer.process_characters(" ".join(ref_words), " ".join(hyp_words) or "")
            char_errors += c.substitutions + c.deletions + c.insertions
        else:
            word_errors += len(hyp_words)
            char_errors += len(" ".join(hyp_words))
    return {"word_errors": word_errors, "words": words, "char_errors": char_errors, "chars": chars}


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate: word edits / reference words."""
    c = error_counts(references, hypotheses)
    return c["word_errors"] / max(1, c["words"])


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate (spaces count as characters): char edits / reference characters."""
    c = error_counts(references, hypotheses)
    return c["char_errors"] / max(1, c["chars"])
