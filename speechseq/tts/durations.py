"""Character durations for duration-based text-to-speech, from CTC forced alignment.

A duration model (Non-Attentive Tacotron, FastSpeech) learns how many mel frames each input
character lasts. We take those counts from our own recognizer: force-align the text to the
recognizer's log-probs on the same trimmed audio the TTS model trains on, give each character
its aligned frames plus half of the blank gap on either side, and convert the boundaries from
recognizer frames (40 ms for ``asr-char.pt``) to TTS mel frames (12.5 ms). The recognizer and the
synthesizer share the character tokenizer, so the recognizer's token ids are the synthesizer's
inputs.

Both front ends use centred STFTs and the recognizer's convolutions are centred too, so
recognizer frame ``t`` is centred at ``t * asr_frame_seconds`` and TTS frame ``j`` at
``j * hop_seconds``: a boundary between recognizer frames ``t - 1`` and ``t`` lies at
``(t - 0.5) * asr_frame_seconds``, and each TTS frame goes to the character whose time span holds
its centre.

Example:
    >>> transcriber = Transcriber.from_pretrained("asr.pt", decoding=DecoderConfig(kind="greedy"))
    >>> utterance_durations(transcriber, waveform, "hi there", n_frames=97, hop_seconds=0.0125)
    [9, 14, 6, 10, 9, 12, 11, 26]
    >>> align_corpus("data/train.jsonl", "data/train.durations.jsonl", "asr.pt", features)
    {'utterances': 2800, 'written': 2800, 'skipped': 0, ...}
    >>> read_durations("data/train.durations.jsonl")[utterance.audio]    # one int per character
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from speechseq.asr.alignment import ctc_min_frames, forced_align_path, token_spans
from speechseq.asr.decoding import DecoderConfig
from speechseq.asr.transcriber import Transcriber
from speechseq.audio import resample
from speechseq.data.manifest import read_jsonl, read_manifest
from speechseq.data.tts import TtsDataset
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.files import atomic_path
from speechseq.pretrained import CHAR_RECOGNIZER, PRETRAINED_DIR
from speechseq.text import CharTokenizer, PieceTokenizer

__all__ = [
    "align_corpus",
    "character_durations",
    "fill_empty",
    "read_durations",
    "utterance_durations",
]


def character_durations(
    log_probs: torch.Tensor,
    token_ids: Sequence[int],
    blank: int,
    asr_frame_seconds: float,
    n_frames: int,
    hop_seconds: float,
) -> list[int]:
    """TTS frames per token, from a CTC forced alignment of ``token_ids`` to ``log_probs``.

    Each token gets its aligned frames; the blanks between two tokens are split at the midpoint
    of the gap; leading blanks go to the first token, trailing blanks to the last. The
    boundaries are converted to TTS frames (each TTS frame goes to the token whose span holds
    its centre), clamped to ``[0, n_frames]`` and kept monotonic. If ``n_frames`` allows it,
    a token left with no frame takes one from its nearest token that has two or more (the
    longer one when two are as near).

    Args:
        log_probs: (T', V) one utterance's recognizer log-probabilities.
        token_ids: (L,) the text's token ids (no blanks).
        blank: the CTC blank id.
        asr_frame_seconds: seconds per recognizer output frame (``Transcriber.frame_seconds``).
        n_frames: TTS mel frames of the same audio.
        hop_seconds: seconds per TTS mel frame (its hop).

    Returns:
        L durations in TTS frames, summing to ``n_frames``; each >= 1 if ``n_frames >= L``.

    Raises:
        SpeechseqError: no tokens, or too few recognizer frames to emit them.
    """
    tokens = list(token_ids)
    if not tokens:
        raise SpeechseqError("nothing to align: the text has no character the tokenizer knows")
    if n_frames < 0:
        raise SpeechseqError(f"n_frames must be >= 0, not {n_frames}")
    frames = log_probs.shape[0]
    needed = ctc_min_frames(tokens)  # a repeated character needs a blank between its two frames
    repeats = needed - len(tokens)
    if frames < needed:
        raise SpeechseqError(
            f"cannot align {len(tokens)} characters ({repeats} doubled) to {frames} recognizer "
            f"frames: CTC needs at least {needed} ({needed * asr_frame_seconds:.2f} s of audio)"
        )
    path = forced_align_path(log_probs, tokens, blank)  # (T',)
    spans = token_spans(path, blank)
    if [s.token for s in spans] != tokens:  # every path had probability 0 (-inf log-probs)
        raise SpeechseqError("forced alignment found no path that spells the text")

    # Recognizer frame edges: edge e lies between frames e - 1 and e, at (e - 0.5) frames.
    edges = [(a.end + b.start) / 2 for a, b in zip(spans, spans[1:], strict=False)]  # (L - 1,)
    ratio = asr_frame_seconds / hop_seconds
    # TTS frames with a centre before the edge; the epsilon keeps exact ties deterministic.
    inner = [math.ceil((e - 0.5) * ratio - 1e-6) for e in edges]
    boundaries = [0]
    for b in inner:
        boundaries.append(min(n_frames, max(boundaries[-1], b)))
    boundaries.append(n_frames)  # (L + 1,)
    durations = [b - a for a, b in zip(boundaries, boundaries[1:], strict=False)]  # (L,)
    if n_frames >= len(durations):
        fill_empty(durations)
    return durations


def fill_empty(durations: list[int]) -> None:
    """Give each zero-length token one frame from its nearest token with two or more (the
    longer when two are as near); the tokens between shift by one frame and keep their lengths.
    Needs ``sum(durations) >= len(durations)``."""
    for i in range(len(durations)):
        if durations[i] > 0:
            continue
        donor = min(
            (j for j, d in enumerate(durations) if d >= 2),
            key=lambda j: (abs(j - i), -durations[j]),
        )
        durations[donor] -= 1
        durations[i] += 1


@torch.no_grad()
def utterance_durations(
    transcriber: Transcriber,
    waveform: torch.Tensor,
    text: str,
    n_frames: int,
    hop_seconds: float,
) -> list[int]:
    """TTS frames per character of ``text``, aligned with ``transcriber``'s recognizer.

    Args:
        transcriber: the recognizer, its features and tokenizer (put in eval mode).
        waveform: (T,) samples at ``transcriber.sample_rate``, trimmed as the TTS data is.
        text: the transcript, normalised (characters outside the vocabulary are dropped).
        n_frames: TTS mel frames of the same audio.
        hop_seconds: seconds per TTS mel frame.

    Returns:
        one duration per id of ``transcriber.tokenizer.encode(text)``, summing to ``n_frames``.

    Raises:
        SpeechseqError: see :func:`character_durations`.
    """
    transcriber.model.eval()
    log_probs = transcriber.log_probs([waveform])[0].cpu()  # (T', V)
    tokenizer = transcriber.tokenizer
    return character_durations(
        log_probs,
        tokenizer.encode(text),
        tokenizer.blank_id,
        transcriber.frame_seconds,
        n_frames,
        hop_seconds,
    )


def align_corpus(
    manifest: str | Path,
    out_path: str | Path,
    recognizer: str | Path,
    feature_config: FeatureConfig,
    trim_db: float | None = 40.0,
    trim_margin: float = 0.05,
    progress: bool = True,
) -> dict:
    """Write the character durations of every utterance of a manifest, as TTS training sees it.

    Each utterance is trimmed and featurized by :class:`~speechseq.data.tts.TtsDataset` with
    the TTS settings, so its frame count is the one training uses (normalisation does not
    change it: a ``global`` config without statistics is run un-normalised). The trimmed audio
    is resampled to the recognizer's rate and aligned (:func:`utterance_durations`).

    One JSON line per utterance: ``{"audio": path, "text": str, "frames": n_frames,
    "durations": [int, ...]}``, audio relative to ``out_path``'s folder where it lies below it
    (as in manifests), one duration per character id, summing to ``frames``. Utterances that
    fail (unreadable audio, no speakable text, audio too short for the text) are skipped with a
    warning. The file is written atomically.

    Args:
        manifest: JSONL manifest (audio + text).
        out_path: the durations file to write.
        recognizer: a speech-to-text checkpoint whose tokenizer is the TTS one.
        feature_config: the synthesizer's feature settings.
        trim_db, trim_margin: the TTS data's silence trimming (``TtsDataConfig``).
        progress: show a progress bar on stderr.

    Returns:
        ``{"utterances", "written", "skipped", "frames_per_character", "seconds", "out"}``.

    Raises:
        SpeechseqError: bad manifest or checkpoint, or a recognizer with another tokenizer.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    utterances = read_manifest(manifest)
    transcriber = Transcriber.from_pretrained(recognizer, decoding=DecoderConfig(kind="greedy"))
    tokenizer = CharTokenizer()  # the synthesizer's (speechseq.tts.train)
    if isinstance(transcriber.tokenizer, PieceTokenizer):
        raise SpeechseqError(
            f"{recognizer}: outputs word pieces; durations need a recognizer of characters "
            f"(the package ships one: {PRETRAINED_DIR / CHAR_RECOGNIZER})"
        )
    if transcriber.tokenizer.vocab != tokenizer.vocab:
        raise SpeechseqError(
            f"{recognizer}: its characters {transcriber.tokenizer.vocab} are not the "
            f"synthesizer's {tokenizer.vocab}"
        )
    if feature_config.normalize == "global" and not feature_config.mean:
        feature_config = replace(feature_config, normalize="none")  # same frames
    dataset = TtsDataset(
        utterances, FeatureExtractor(feature_config), tokenizer, trim_db, trim_margin
    )
    rate, hop = feature_config.sample_rate, feature_config.frame_seconds

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    base = out_path.parent.resolve()
    written, frames, characters = 0, 0, 0
    with atomic_path(out_path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for i in tqdm(range(len(dataset)), unit="utt", file=sys.stderr, disable=not progress):
            utt = utterances[i]
            item = dataset[i]  # warns and gives None for bad audio or empty text
            if item is None:
                continue
            n_frames = item["mel"].shape[0]
            try:
                waveform = resample(dataset.waveform(i), rate, transcriber.sample_rate)
                durations = utterance_durations(transcriber, waveform, utt.text, n_frames, hop)
            except (SpeechseqError, RuntimeError, ValueError) as err:
                warnings.warn(f"skipping utterance: {utt.audio}: {err}", stacklevel=2)
                continue
            record = {
                "audio": _relative(utt.audio, base),
                "text": utt.text,
                "frames": n_frames,
                "durations": durations,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
            frames += n_frames
            characters += len(durations)
    return {
        "utterances": len(utterances),
        "written": written,
        "skipped": len(utterances) - written,
        "frames_per_character": frames / max(1, characters),
        "seconds": time.perf_counter() - started,
        "out": str(out_path),
    }


def _relative(audio: str, base: Path) -> str:
    """``audio`` relative to ``base`` where it lies below it (as :func:`read_manifest` resolves
    it back), else as given."""
    try:
        return str(Path(audio).relative_to(base))
    except ValueError:
        return audio


def read_durations(path: str | Path) -> dict[str, list[int]]:
    """Audio path → TTS frames per character, from a file :func:`align_corpus` wrote.

    Relative audio paths are resolved against the file's folder exactly as
    :func:`~speechseq.data.read_manifest` resolves a manifest's, so a durations file beside its
    manifest has keys equal to the manifest's ``Utterance.audio``.

    Raises:
        SpeechseqError: the file is missing, or a line is not a record whose durations are
            non-negative and sum to its frames.
    """
    out: dict[str, list[int]] = {}
    for where, record in read_jsonl(path, "durations"):
        try:
            durations = [int(d) for d in record["durations"]]
            frames = int(record["frames"])
        except (KeyError, TypeError, ValueError) as err:
            raise SpeechseqError(f"{where}: not a durations record ({err})") from None
        if sum(durations) != frames or min(durations, default=0) < 0:
            raise SpeechseqError(f"{where}: durations sum to {sum(durations)}, frames are {frames}")
        out[record["audio"]] = durations
    return out
