"""Text-to-speech data over the same manifests as speech-to-text: trimmed audio → log-mels at
TTS settings, text → character ids, padded batches with stop targets.

Example:
    >>> dataset = TtsDataset(read_manifest("train.jsonl"), FeatureExtractor(feature_config),
    ...                      CharTokenizer())
    >>> sampler = DurationBatchSampler(dataset.durations, max_batch_seconds=120, seed=0)
    >>> loader = DataLoader(dataset, batch_sampler=sampler,
    ...                     collate_fn=functools.partial(collate_tts, reduction_factor=4))
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from speechseq.audio import load_audio
from speechseq.data.manifest import Utterance
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor
from speechseq.text import CharTokenizer

__all__ = ["TtsBatch", "TtsDataset", "collate_tts", "stop_targets", "trim_bounds", "trim_silence"]


def trim_bounds(
    waveform: torch.Tensor, top_db: float, hop_length: int, margin: int = 0
) -> tuple[int, int]:
    """Where :func:`trim_silence` cuts: ``(start, end)`` samples of ``waveform`` it keeps (all
    of it when nothing is loud)."""
    frame = 4 * hop_length
    padded = torch.nn.functional.pad(waveform, (frame // 2, frame // 2))
    frames = padded.unfold(0, frame, hop_length)  # (N, frame)
    db = 10 * torch.log10(frames.square().mean(dim=1).clamp(min=1e-20))  # (N,)
    loud = torch.nonzero(db > db.max() - top_db).squeeze(1)
    if loud.numel() == 0:
        return 0, len(waveform)
    start = int(loud[0]) * hop_length
    end = min(len(waveform), (int(loud[-1]) + 1) * hop_length)
    return max(0, start - margin), min(len(waveform), end + margin)


def trim_silence(
    waveform: torch.Tensor, top_db: float, hop_length: int, margin: int = 0
) -> torch.Tensor:
    """Cut leading and trailing audio quieter than ``top_db`` below the loudest frame, keeping
    ``margin`` samples of it each side (the rule of ``librosa.effects.trim``, in torch: librosa
    takes a second to import).

    Args:
        waveform: (T,) samples.
        top_db: threshold in dB below the peak frame RMS.
        hop_length: analysis hop in samples; frames are four hops long, centred.
        margin: samples of the quiet edge to keep on each side.

    Returns:
        (T',) samples, T' <= T.
    """
    start, end = trim_bounds(waveform, top_db, hop_length, margin)
    return waveform[start:end]


class TtsDataset(Dataset):
    """Log-mel frames and character ids of each utterance, computed on access.

    Args:
        utterances: the manifest's records.
        extractor: waveform → (frames, n_mels) features at TTS settings.
        tokenizer: text → ids (id 0 is padding).
        trim_db: trim leading/trailing audio this many dB below the peak (None = no trimming).
        trim_margin: seconds of the trimmed edge kept each side.
        cache: keep each item after its first extraction (there is no augmentation to redo;
            ~92 MB per hour of audio at 80 mels and 12.5 ms). Each DataLoader worker keeps its
            own cache for one epoch only, so this pays with ``num_workers`` 0.
        char_frames: audio path → frames per character (``speechseq.tts.durations``); when given,
            items carry ``char_frames`` and an utterance without a usable entry is skipped.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        extractor: FeatureExtractor,
        tokenizer: CharTokenizer,
        trim_db: float | None = 40.0,
        trim_margin: float = 0.05,
        cache: bool = False,
        char_frames: dict[str, list[int]] | None = None,
    ) -> None:
        self.utterances = list(utterances)
        segment = next((u for u in self.utterances if u.offset is not None), None)
        if segment is not None:  # durations are keyed by audio file: one utterance each
            raise SpeechseqError(
                f"{segment.audio}: a voice trains on one utterance per audio file, not on "
                "segments of recordings (offset in the manifest); cut them into files first"
            )
        self.char_frames = char_frames
        self.extractor = extractor
        self.tokenizer = tokenizer
        self.trim_db = trim_db
        self.trim_margin = trim_margin
        self._cache: dict[int, dict] | None = {} if cache else None

    @property
    def durations(self) -> list[float]:
        return [u.duration for u in self.utterances]

    def __len__(self) -> int:
        return len(self.utterances)

    def waveform(self, index: int) -> torch.Tensor:
        """(T,) trimmed samples of utterance ``index`` at the extractor's rate."""
        c = self.extractor.config
        waveform = load_audio(self.utterances[index].audio, c.sample_rate)
        if self.trim_db is not None:
            margin = round(self.trim_margin * c.sample_rate)
            waveform = trim_silence(waveform, self.trim_db, c.hop_length, margin)
        return waveform

    def __getitem__(self, index: int) -> dict | None:
        """Mel frames and ids of one utterance, or None (with a warning) if its audio is bad or
        its text has no character the tokenizer knows."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        utt = self.utterances[index]
        tokens = torch.tensor(self.tokenizer.encode(utt.text), dtype=torch.long)  # (L,)
        if tokens.numel() == 0:
            warnings.warn(f"skipping utterance: {utt.audio}: no speakable text", stacklevel=2)
            return None
        try:
            waveform = self.waveform(index)
        except SpeechseqError as err:
            warnings.warn(f"skipping utterance: {err}", stacklevel=2)
            return None
        with torch.no_grad():
            mel = self.extractor(waveform)  # (frames, n_mels)
        item = {
            "mel": mel,
            "tokens": tokens,
            "text": utt.text,
            "audio": utt.audio,
            "duration": waveform.numel() / self.extractor.config.sample_rate,
        }
        if self.char_frames is not None:
            frames = self.char_frames.get(utt.audio)
            if frames is None or len(frames) != tokens.numel() or sum(frames) != mel.shape[0]:
                warnings.warn(
                    f"skipping utterance: {utt.audio}: no durations matching its "
                    f"{tokens.numel()} characters and {mel.shape[0]} frames",
                    stacklevel=2,
                )
                return None
            item["char_frames"] = torch.tensor(frames, dtype=torch.long)  # (L,)
        if self._cache is not None:
            self._cache[index] = item
        return item


def stop_targets(mel_lengths: torch.Tensor, reduction_factor: int, steps: int) -> torch.Tensor:
    """Stop targets per decoder step: 1 from the step holding an utterance's last frame on.

    Args:
        mel_lengths: (B,) valid frames.
        reduction_factor: frames per decoder step (r).
        steps: decoder steps S of the padded batch.

    Returns:
        (B, S) float targets.
    """
    last_step = (mel_lengths - 1).div(reduction_factor, rounding_mode="floor")  # (B,)
    step = torch.arange(steps, device=mel_lengths.device)
    return (step[None, :] >= last_step[:, None]).float()


@dataclass
class TtsBatch:
    """A padded batch.

    Attributes:
        tokens: (B, L) character ids, zero-padded.
        token_lengths: (B,) valid characters.
        mels: (B, T, n_mels) zero-padded frames, T a multiple of the reduction factor.
        mel_lengths: (B,) valid frames.
        stop_targets: (B, T / r) stop targets (see :func:`stop_targets`).
        texts: the B texts.
        audio: the B audio paths.
        durations: the B trimmed durations in seconds.
        char_frames: (B, L) measured frames per character, zero-padded (None unless the
            dataset was given durations).
    """

    tokens: torch.Tensor
    token_lengths: torch.Tensor
    mels: torch.Tensor
    mel_lengths: torch.Tensor
    stop_targets: torch.Tensor
    texts: list[str]
    audio: list[str]
    durations: list[float]
    char_frames: torch.Tensor | None = None

    def to(self, device: torch.device) -> TtsBatch:
        """A copy with its tensors on ``device``."""
        return TtsBatch(
            self.tokens.to(device),
            self.token_lengths.to(device),
            self.mels.to(device),
            self.mel_lengths.to(device),
            self.stop_targets.to(device),
            self.texts,
            self.audio,
            self.durations,
            None if self.char_frames is None else self.char_frames.to(device),
        )


def collate_tts(items: Sequence[dict | None], reduction_factor: int = 1) -> TtsBatch | None:
    """Pad ids and mels (frames to a multiple of ``reduction_factor``) and build stop targets
    (None if no item was usable)."""
    kept = [it for it in items if it is not None]
    if not kept:
        return None
    token_lengths = torch.tensor([it["tokens"].numel() for it in kept])
    mel_lengths = torch.tensor([it["mel"].shape[0] for it in kept])
    tokens = torch.nn.utils.rnn.pad_sequence(
        [it["tokens"] for it in kept], batch_first=True
    )  # (B, L)
    steps = math.ceil(int(mel_lengths.max()) / reduction_factor)
    n_mels = kept[0]["mel"].shape[1]
    mels = torch.zeros(len(kept), steps * reduction_factor, n_mels)  # (B, T, n_mels)
    for i, it in enumerate(kept):
        mels[i, : it["mel"].shape[0]] = it["mel"]
    return TtsBatch(
        tokens=tokens,
        token_lengths=token_lengths,
        mels=mels,
        mel_lengths=mel_lengths,
        stop_targets=stop_targets(mel_lengths, reduction_factor, steps),
        texts=[it["text"] for it in kept],
        audio=[it["audio"] for it in kept],
        durations=[it["duration"] for it in kept],
        char_frames=(
            torch.nn.utils.rnn.pad_sequence([it["char_frames"] for it in kept], batch_first=True)
            if "char_frames" in kept[0]
            else None
        ),
    )
