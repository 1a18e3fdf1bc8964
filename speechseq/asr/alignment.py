"""Word times and confidences from a CTC alignment.

A CTC alignment says which output frame emits which token. Times follow from the model's frame
rate (:func:`frame_seconds`): feature hop × the front end's time subsampling.

For the greedy transcript, the greedy path (best symbol per frame) *is* the forced alignment: it
is the most probable path of all, it collapses to the greedy transcript, so it is also the most
probable path among those that collapse to that transcript, which is what Viterbi forced
alignment (:func:`forced_align_path`, torchaudio's ``forced_align``) returns. So transcription
takes the times from the greedy path at no extra cost; :func:`forced_align_path` is for any other
transcript (a beam search's, a language model's, a reference text).

Example:
    >>> log_probs, lengths = model(features, feature_lengths)      # (B, T, V), (B,)
    >>> lp = log_probs[0, : lengths[0]]                             # (T, V)
    >>> words = word_timings(lp.argmax(-1), lp, tokenizer, frame_seconds(fc, mc))
    >>> [(w.word, w.start, w.end) for w in words]
    [('hello', 0.12, 0.48), ('world', 0.6, 1.04)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from speechseq.text import PieceTokenizer, Tokenizer

if TYPE_CHECKING:  # torch loads only when a torch tensor comes in (asr.lite never sends one)
    import torch

    from speechseq.mel import FeatureConfig
    from speechseq.models.asr import RecognizerConfig

__all__ = [
    "Word",
    "Segment",
    "TokenSpan",
    "frame_seconds",
    "ctc_min_frames",
    "forced_align_path",
    "viterbi_path",
    "token_spans",
    "word_timings",
    "START_LEAD_FRAMES",
    "PIECE_TAIL_FRAMES",
    "make_segment",
    "piece_words",
    "no_speech_score",
]


@dataclass(frozen=True)
class Word:
    """One word with its time in the file.

    Attributes:
        word: the word.
        start, end: seconds from the start of the file: its emitting frames, moved to where
            its sound is (:func:`word_timings`).
        probability: confidence in [0, 1], the mean posterior of the word's emitting frames
            (whisper's name for it).
    """

    word: str
    start: float
    end: float
    probability: float

    def to_dict(self) -> dict:
        return {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "probability": round(self.probability, 4),
        }


@dataclass(frozen=True)
class Segment:
    """A stretch of speech decoded as one piece (pieces are cut at pauses).

    Attributes:
        start, end: seconds from the start of the file (its first word's start, last word's end).
        text: its words joined by spaces.
        words: its words, in order.
        no_speech: how little its piece of audio looks like speech to the recognizer, in
            [0, 1] (:func:`no_speech_score`).
    """

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = field(default=())
    no_speech: float = 0.0

    def to_dict(self, segment_id: int = 0) -> dict:
        return {
            "id": segment_id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "no_speech": round(self.no_speech, 3),
            "words": [w.to_dict() for w in self.words],
        }


@dataclass(frozen=True)
class TokenSpan:
    """Frames [start, end) that emit ``token`` (one CTC-collapsed symbol)."""

    token: int
    start: int
    end: int


def frame_seconds(feature_config: FeatureConfig, model_config: RecognizerConfig) -> float:
    """Seconds per model output frame: feature hop × time subsampling."""
    return feature_config.hop_length / feature_config.sample_rate * model_config.subsampling


def ctc_min_frames(tokens: Sequence[int]) -> int:
    """Frames CTC needs to emit ``tokens``: one per token, plus a blank between equal
    neighbours (a repeat without one would collapse into a single token)."""
    return len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:], strict=False))


def forced_align_path(
    log_probs: torch.Tensor, tokens: Sequence[int], blank_id: int = 0
) -> torch.Tensor:
    """The most probable frame path that collapses to ``tokens`` (Viterbi, torchaudio).

    Args:
        log_probs: (T, V) one utterance's log-probabilities.
        tokens: the transcript's token ids (no blanks).
        blank_id: the CTC blank.

    Returns:
        (T,) token id per frame.

    Raises:
        ValueError: T is too short to emit ``tokens`` (each repeat needs a blank between).
    """
    import torch
    import torchaudio.functional as AF

    if len(tokens) == 0:
        return torch.full((log_probs.shape[0],), blank_id, dtype=torch.long)
    if log_probs.shape[0] < ctc_min_frames(tokens):
        raise ValueError(f"{log_probs.shape[0]} frames cannot emit {len(tokens)} tokens")
    targets = torch.tensor([list(tokens)], dtype=torch.int32)  # (1, L)
    path, _ = AF.forced_align(log_probs[None].float().cpu(), targets, blank=blank_id)  # (1, T)
    return path[0].long()


def viterbi_path(log_probs: np.ndarray, tokens: Sequence[int], blank_id: int = 0) -> np.ndarray:
    """:func:`forced_align_path` in NumPy, for the torch-free path (:mod:`speechseq.asr.lite`):
    the same Viterbi over the blank-interleaved tokens (tested to give torchaudio's path).

    Args:
        log_probs: (T, V) one utterance's log-probabilities.
        tokens: the transcript's token ids (no blanks).
        blank_id: the CTC blank.

    Returns:
        (T,) int64 token id per frame.

    Raises:
        ValueError: T is too short to emit ``tokens``.
    """
    frames = log_probs.shape[0]
    if len(tokens) == 0:
        return np.full(frames, blank_id, dtype=np.int64)
    if frames < ctc_min_frames(tokens):
        raise ValueError(f"{frames} frames cannot emit {len(tokens)} tokens")
    states = np.full(2 * len(tokens) + 1, blank_id, dtype=np.int64)  # (S,) blank, t1, blank, …
    states[1::2] = tokens
    # a state may skip the blank before it when it is a token unlike the one two states back
    skip = np.zeros(len(states), dtype=bool)
    skip[3::2] = states[3::2] != states[1:-2:2]
    emit = np.asarray(log_probs, dtype=np.float64)[:, states]  # (T, S)
    score = np.full(len(states), -np.inf)
    score[:2] = emit[0, :2]
    moves = np.zeros((frames, len(states)), dtype=np.int8)  # how far back each state came from
    for t in range(1, frames):
        stay = score
        step = np.concatenate([[-np.inf], score[:-1]])
        jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        best = np.stack([stay, step, jump])  # (3, S)
        moves[t] = best.argmax(axis=0)  # ties keep the earlier candidate: stay, then step
        score = best.max(axis=0) + emit[t]
    state = len(states) - 1 if score[-1] >= score[-2] else len(states) - 2
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = states[state]
        state -= int(moves[t, state])
    return path


def token_spans(
    path: np.ndarray | torch.Tensor | Sequence[int], blank_id: int = 0
) -> list[TokenSpan]:
    """The emitted tokens of a (T,) frame path, each with its frames: runs of one non-blank id
    (a repeat separated by blanks is a new token, as in CTC's collapse)."""
    ids: list[int] = path.tolist() if not isinstance(path, Sequence) else list(path)
    spans: list[TokenSpan] = []
    for t, i in enumerate(ids):
        if i == blank_id:
            continue
        if spans and spans[-1].token == i and spans[-1].end == t:
            spans[-1] = TokenSpan(i, spans[-1].start, t + 1)
        else:
            spans.append(TokenSpan(i, t, t + 1))
    return spans


# CTC fires on a unit about a frame after its sound begins, and on a word piece (several letters)
# before the piece's sound ends. Measured against festival's own word boundaries on dev's first
# 60 sentences (59 that festival reads word for word) × 3 voices (benchmarks/word_times.py),
# the word-piece model's starts were 52 ms late and its ends 39 ms early (40 ms frames), the
# character model's starts 60 ms late. A grid over the two shifts chose these.
START_LEAD_FRAMES = 1.0  # a word starts up to this much before its first emitting frame
PIECE_TAIL_FRAMES = 2.0  # with word pieces, a word ends up to this much after its last one


def word_timings(
    path: np.ndarray | torch.Tensor,
    log_probs: np.ndarray | torch.Tensor,
    tokenizer: Tokenizer,
    seconds_per_frame: float,
    offset: float = 0.0,
    duration: float | None = None,
    start_lead: float = START_LEAD_FRAMES,
    piece_tail: float = PIECE_TAIL_FRAMES,
) -> list[Word]:
    """Words, their times and confidences from a frame path.

    A word spans its emitting frames, moved to where its sound is: it starts up to
    ``start_lead`` frames earlier and, with word pieces, ends up to ``piece_tail`` frames later,
    each within the frames between it and its neighbours (an end takes at most half of them, and
    never one the next word's start took), so words never overlap.

    Args:
        path: (T,) token id per frame (the greedy path, or :func:`forced_align_path`'s).
        log_probs: (T, V) the log-probabilities the path was taken from.
        tokenizer: maps ids to text; a space, or a piece that begins with one, starts a word.
        seconds_per_frame: see :func:`frame_seconds`.
        offset: seconds to add to every time (where this piece starts in its file).
        duration: the audio's length in seconds, if known: times are capped at its end (the
            last frame, centred on the last sample, reaches past it).
        start_lead, piece_tail: the shifts above, in frames (0 and 0: the bare emitting frames,
            from the first one's centre to the centre of the frame after the last).

    Returns:
        the words in order; joined by spaces they give the CTC-collapsed transcript.
    """
    posteriors = _posteriors(log_probs)  # (T, V)
    last = offset + duration if duration is not None else float("inf")
    groups: list[list[TokenSpan]] = []  # each word's emitting spans
    for span in token_spans(path, tokenizer.blank_id):
        text = tokenizer.decode([span.token])
        if text[:1].isspace() or not groups:  # a space, or a piece that starts a word ("▁the")
            groups.append([])
        if text.strip():
            groups[-1].append(span)
    groups = [g for g in groups if g]
    tail = piece_tail if isinstance(tokenizer, PieceTokenizer) else 0.0

    def lead(i: int) -> float:
        """Frames word ``i`` starts before its first emitting frame."""
        gap = groups[i][0].start - (groups[i - 1][-1].end if i else 0)
        return min(start_lead, gap)

    words: list[Word] = []
    for i, spans in enumerate(groups):
        if i + 1 < len(groups):
            gap = groups[i + 1][0].start - spans[-1].end
            extra = min(tail, gap / 2, gap - lead(i + 1))
        else:
            extra = min(tail, (len(path) - spans[-1].end) / 2)
        probs = [float(posteriors[t, s.token]) for s in spans for t in range(s.start, s.end)]
        words.append(
            Word(
                word=tokenizer.decode([s.token for s in spans]).strip(),
                start=min(last, offset + (spans[0].start - lead(i)) * seconds_per_frame),
                end=min(last, offset + (spans[-1].end + extra) * seconds_per_frame),
                probability=sum(probs) / len(probs),
            )
        )
    return words


def piece_words(
    log_probs: np.ndarray | torch.Tensor,
    text: str | None,
    tokenizer: Tokenizer,
    seconds_per_frame: float,
    offset: float = 0.0,
    duration: float | None = None,
) -> list[Word]:
    """A decoded piece's words with their times: from the greedy path when ``text`` is None
    (greedy decoding: that path is its transcript's forced alignment), else from ``text``'s
    forced alignment (a beam's transcript): :func:`forced_align_path` for torch log-probs,
    :func:`viterbi_path` for NumPy ones (the same path).

    Args:
        log_probs: (T, V) the piece's log-probabilities.
        text: its transcript, or None for the greedy one.
        tokenizer, seconds_per_frame, offset, duration: as :func:`word_timings`.
    """
    if text is None:
        path = log_probs.argmax(-1)  # (T,)
    elif isinstance(log_probs, np.ndarray):
        path = viterbi_path(log_probs, tokenizer.encode(text), tokenizer.blank_id)
    else:
        path = forced_align_path(log_probs, tokenizer.encode(text), tokenizer.blank_id)
    return word_timings(path, log_probs, tokenizer, seconds_per_frame, offset, duration)


def make_segment(words: Sequence[Word], no_speech: float = 0.0) -> Segment:
    """A segment spanning ``words`` (which must not be empty)."""
    return Segment(
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.word for w in words),
        words=tuple(words),
        no_speech=no_speech,
    )


def _posteriors(log_probs: np.ndarray | torch.Tensor) -> np.ndarray:
    """(T, V) float32 posteriors of NumPy or torch log-probs (exp in torch for a tensor)."""
    if isinstance(log_probs, np.ndarray):
        return np.exp(log_probs.astype(np.float32, copy=False))
    return log_probs.detach().float().exp().cpu().numpy()


def no_speech_score(log_probs: np.ndarray | torch.Tensor) -> float:
    """How little a piece of audio looks like speech: 1 − the mean, over its frames, of the
    most probable symbol's posterior.

    A CTC recognizer is sure of itself on speech (a blank or a token near 1 on almost every
    frame, pauses and silence included) and unsure on noise it was never trained on, where it
    still emits words, each barely ahead of the rest. On the shipped recognizer's dev set the
    score is at most 0.19 on clean speech and 0.31 with white noise added at 5 to 20 dB SNR,
    while white, pink and brown noise score 0.41 or more.

    Args:
        log_probs: (T, V) one piece's log-probabilities.

    Returns:
        a score in [0, 1]; 0 for no frames.
    """
    if log_probs.shape[0] == 0:
        return 0.0
    if isinstance(log_probs, np.ndarray):
        return 1.0 - float(np.exp(log_probs.max(axis=-1).astype(np.float32)).mean())
    return 1.0 - float(log_probs.max(dim=-1).values.exp().mean())
