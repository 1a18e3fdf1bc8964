"""Dataset over a manifest, a sampler that batches by total duration, and a padding collate.

Example:
    >>> dataset = AsrDataset(read_manifest("train.jsonl"), FeatureExtractor(FeatureConfig()),
    ...                      CharTokenizer())
    >>> sampler = DurationBatchSampler(dataset.durations, max_batch_seconds=120, seed=0)
    >>> loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_asr)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from speechseq.audio import load_audio
from speechseq.augment import WaveformAugmenter, item_generator
from speechseq.data.manifest import Utterance
from speechseq.distributed import shard
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor
from speechseq.text import Tokenizer

__all__ = ["AsrDataset", "AsrBatch", "DurationBatchSampler", "collate_asr"]


class AsrDataset(Dataset):
    """Features and token ids of each utterance, computed on access (so DataLoader workers do the
    audio decoding).

    Args:
        utterances: the manifest's records.
        extractor: waveform → (frames, n_mels) features.
        tokenizer: text → ids.
        augmenter: waveform augmentation for training (None = off).
        seed: with :attr:`epoch` and the index, seeds each utterance's augmentation.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        extractor: FeatureExtractor,
        tokenizer: Tokenizer,
        augmenter: WaveformAugmenter | None = None,
        seed: int = 0,
    ) -> None:
        self.utterances = list(utterances)
        self.extractor = extractor
        self.tokenizer = tokenizer
        self.augmenter = augmenter
        self.seed = seed
        self.epoch = 0  # set before each epoch's DataLoader is created (workers copy it)

    @property
    def durations(self) -> list[float]:
        return [u.duration for u in self.utterances]

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict | None:
        """Features and tokens of one utterance, or None (with a warning) if its audio is bad, so
        one broken file in a large corpus does not stop a training run."""
        utt = self.utterances[index]
        try:
            waveform = load_audio(
                utt.audio,
                self.extractor.config.sample_rate,
                offset=utt.offset or 0.0,
                duration=None if utt.offset is None else utt.duration,
            )
        except SpeechseqError as err:
            warnings.warn(f"skipping utterance: {err}", stacklevel=2)
            return None
        warp = 1.0
        if self.augmenter is not None:
            g = item_generator(self.seed, self.epoch, index)
            waveform = self.augmenter(waveform, g)
            warp = self.augmenter.warp_factor(g)
        with torch.no_grad():
            features = self.extractor(waveform, warp)  # (frames, n_mels)
        tokens = torch.tensor(self.tokenizer.encode(utt.text), dtype=torch.long)  # (L,)
        return {
            "features": features,
            "tokens": tokens,
            "text": utt.text,
            "audio": utt.audio,
            "duration": waveform.numel() / self.extractor.config.sample_rate,
        }


@dataclass
class AsrBatch:
    """A padded batch.

    Attributes:
        features: (B, T, n_mels), zero-padded.
        feature_lengths: (B,) valid frames.
        tokens: (B, L), zero-padded.
        token_lengths: (B,) valid tokens.
        texts: the B transcripts.
        audio: the B audio paths.
        durations: (B,) seconds of audio.
    """

    features: torch.Tensor
    feature_lengths: torch.Tensor
    tokens: torch.Tensor
    token_lengths: torch.Tensor
    texts: list[str]
    audio: list[str]
    durations: list[float]


def collate_asr(items: Sequence[dict | None]) -> AsrBatch | None:
    """Pad features and tokens and return their lengths (None if no item was readable)."""
    kept = [it for it in items if it is not None]
    if not kept:
        return None
    feature_lengths = torch.tensor([it["features"].shape[0] for it in kept])
    token_lengths = torch.tensor([it["tokens"].numel() for it in kept])
    features = torch.nn.utils.rnn.pad_sequence(
        [it["features"] for it in kept], batch_first=True
    )  # (B, T, n_mels)
    tokens = torch.zeros(len(kept), max(1, int(token_lengths.max())), dtype=torch.long)  # (B, L)
    for i, it in enumerate(kept):
        tokens[i, : it["tokens"].numel()] = it["tokens"]
    return AsrBatch(
        features=features,
        feature_lengths=feature_lengths,
        tokens=tokens,
        token_lengths=token_lengths,
        texts=[it["text"] for it in kept],
        audio=[it["audio"] for it in kept],
        durations=[it["duration"] for it in kept],
    )


class DurationBatchSampler(Sampler[list[int]]):
    """Batches whose padded size (longest × count) stays under ``max_batch_seconds``.

    Utterances are sorted by duration (with a little per-epoch jitter, so batch membership varies
    between epochs), cut into batches, and the batches are shuffled. Everything is a function of
    ``seed`` and the epoch, so a resumed run sees the same order; ``start_batch`` skips the batches
    already trained on in the current epoch.

    With several ranks, :meth:`batches` are the global batches (the same on every rank, and the
    same as a single process's) and iterating yields this rank's share of each: utterances
    ``rank``, ``rank + num_replicas``, … of the batch (:func:`speechseq.distributed.shard`),
    possibly none when a batch holds fewer utterances than there are ranks.

    Args:
        durations: seconds per utterance.
        max_batch_seconds: padded audio seconds per batch.
        shuffle: shuffle (and jitter) per epoch; off gives a fixed, sorted order.
        seed: base seed.
        max_batch_size: optional cap on utterances per batch.
        num_replicas: ranks sharing each batch.
        rank: this rank's place among them.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        max_batch_size: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.durations = torch.tensor(list(durations), dtype=torch.float64)
        self.max_batch_seconds = max_batch_seconds
        self.shuffle = shuffle
        self.seed = seed
        self.max_batch_size = max_batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch, in order."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        keys = self.durations
        if self.shuffle:
            keys = keys * (
                1 + 0.1 * (torch.rand(len(keys), generator=g, dtype=torch.float64) - 0.5)
            )
        order = torch.argsort(keys, stable=True).tolist()
        batches, current, longest = [], [], 0.0
        for idx in order:
            dur = float(self.durations[idx])
            new_longest = max(longest, dur)
            full = self.max_batch_size is not None and len(current) >= self.max_batch_size
            if current and (new_longest * (len(current) + 1) > self.max_batch_seconds or full):
                batches.append(current)
                current, new_longest = [], dur
            current.append(idx)
            longest = new_longest
        if current:
            batches.append(current)
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=g).tolist()
            batches = [batches[i] for i in perm]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches()[self.start_batch :]:
            yield shard(batch, self.rank, self.num_replicas) if self.num_replicas > 1 else batch

    def __len__(self) -> int:
        return len(self.batches()) - self.start_batch
