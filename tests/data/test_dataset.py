"""Tests for speechseq.data.dataset: AsrDataset, collate_asr and DurationBatchSampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from speechseq.data import (
    AsrBatch,
    AsrDataset,
    DurationBatchSampler,
    Utterance,
    collate_asr,
)
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.text import CharTokenizer


def _write_noise(path: Path, seconds: float, rate: int) -> str:
    g = np.random.default_rng(int(seconds * 1000) + rate)
    sf.write(path, (0.1 * g.standard_normal(int(rate * seconds))).astype(np.float32), rate)
    return str(path)


@pytest.fixture
def dataset(tmp_path) -> AsrDataset:
    utts = [
        Utterance(_write_noise(tmp_path / "a.wav", 0.5, 16000), "hello world", 0.5),
        Utterance(_write_noise(tmp_path / "b.flac", 1.0, 8000), "hi", 1.0),  # resampled to 16k
        Utterance(_write_noise(tmp_path / "c.wav", 0.25, 22050), "", 0.25),
    ]
    return AsrDataset(utts, FeatureExtractor(FeatureConfig()), CharTokenizer())


# --- AsrDataset ---------------------------------------------------------------------------------


def test_dataset_item_shapes_and_fields(dataset):
    tok = CharTokenizer()
    assert len(dataset) == 3
    assert dataset.durations == [0.5, 1.0, 0.25]

    item = dataset[0]
    assert item["features"].shape == (8000 // 160 + 1, 80)
    assert item["features"].dtype == torch.float32
    assert not item["features"].requires_grad
    assert item["tokens"].dtype == torch.long
    assert item["tokens"].tolist() == tok.encode("hello world")
    assert item["text"] == "hello world"
    assert item["audio"] == dataset.utterances[0].audio
    assert item["duration"] == pytest.approx(0.5)


def test_dataset_resamples_to_feature_rate(dataset):
    item = dataset[1]  # 1 s at 8 kHz
    assert item["features"].shape == (16000 // 160 + 1, 80)
    assert item["duration"] == pytest.approx(1.0)


def test_dataset_empty_transcript_gives_no_tokens(dataset):
    item = dataset[2]
    assert item["tokens"].shape == (0,)
    assert item["features"].shape == (4000 // 160 + 1, 80)


def test_dataset_features_are_utterance_normalised(dataset):
    feats = dataset[1]["features"]
    torch.testing.assert_close(feats.mean(dim=0), torch.zeros(80), atol=1e-4, rtol=0)


def test_dataset_missing_audio_warns_and_gives_none(tmp_path):
    missing = tmp_path / "gone.wav"
    ds = AsrDataset(
        [Utterance(str(missing), "x", 1.0)], FeatureExtractor(FeatureConfig()), CharTokenizer()
    )
    with pytest.warns(UserWarning, match="gone.wav: no such file"):
        assert ds[0] is None


# --- collate_asr --------------------------------------------------------------------------------


def _item(frames: int, tokens: list[int], fill: float) -> dict:
    return {
        "features": torch.full((frames, 4), fill),
        "tokens": torch.tensor(tokens, dtype=torch.long),
        "text": f"t{frames}",
        "audio": f"{frames}.wav",
        "duration": frames / 100,
    }


def test_collate_pads_features_and_tokens_with_zeros():
    items = [_item(3, [5, 6], 1.0), _item(5, [7], 2.0), _item(2, [8, 9, 10], 3.0)]

    batch = collate_asr(items)

    assert isinstance(batch, AsrBatch)
    assert batch.features.shape == (3, 5, 4)
    assert batch.feature_lengths.tolist() == [3, 5, 2]
    assert batch.tokens.shape == (3, 3)
    assert batch.tokens.dtype == torch.long
    assert batch.token_lengths.tolist() == [2, 1, 3]
    assert batch.tokens.tolist() == [[5, 6, 0], [7, 0, 0], [8, 9, 10]]
    for i, it in enumerate(items):
        n = it["features"].shape[0]
        assert torch.equal(batch.features[i, :n], it["features"])
        assert not batch.features[i, n:].any()
    assert batch.texts == ["t3", "t5", "t2"]
    assert batch.audio == ["3.wav", "5.wav", "2.wav"]
    assert batch.durations == [0.03, 0.05, 0.02]


def test_collate_all_empty_transcripts_keeps_one_token_column():
    batch = collate_asr([_item(2, [], 1.0), _item(4, [], 1.0)])

    assert batch is not None
    assert batch.tokens.shape == (2, 1)
    assert not batch.tokens.any()
    assert batch.token_lengths.tolist() == [0, 0]


def test_dataloader_with_sampler_and_collate(dataset):
    sampler = DurationBatchSampler(dataset.durations, max_batch_seconds=2.0, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_asr)

    batches = list(loader)

    assert sum(b.features.shape[0] for b in batches) == 3
    for b in batches:
        assert b.features.shape[1] == int(b.feature_lengths.max())
        assert b.features.shape[2] == 80
    assert sorted(a for b in batches for a in b.audio) == sorted(
        u.audio for u in dataset.utterances
    )


# --- DurationBatchSampler -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def durations() -> list[float]:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(300, generator=g) * 15 + 0.5).tolist()  # 0.5–15.5 s


def _padded_seconds(batch: list[int], durations: list[float]) -> float:
    return max(durations[i] for i in batch) * len(batch)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("epoch", [0, 1, 7])
def test_every_index_exactly_once_per_epoch(durations, shuffle, epoch):
    sampler = DurationBatchSampler(durations, max_batch_seconds=60, shuffle=shuffle, seed=3)
    sampler.set_epoch(epoch)

    flat = [i for batch in sampler for i in batch]

    assert sorted(flat) == list(range(len(durations)))
    assert len(sampler) == len(sampler.batches())


@pytest.mark.parametrize("max_seconds", [16.0, 60.0, 250.0])
def test_padded_batch_seconds_stay_under_max(durations, max_seconds):
    sampler = DurationBatchSampler(durations, max_batch_seconds=max_seconds, seed=0)

    batches = sampler.batches()

    assert all(_padded_seconds(b, durations) <= max_seconds for b in batches)
    assert len(batches) > 1
    # Greedy filling: batches are not needlessly small (at least half full on average).
    mean_fill = np.mean([_padded_seconds(b, durations) for b in batches]) / max_seconds
    assert mean_fill > 0.5


def test_over_long_utterance_goes_alone(durations):
    long = [*durations[:50], 100.0, *durations[50:100], 75.0]
    sampler = DurationBatchSampler(long, max_batch_seconds=60, seed=0)

    batches = sampler.batches()

    assert [50] in batches and [101] in batches
    for b in batches:
        if b not in ([50], [101]):
            assert _padded_seconds(b, long) <= 60
    assert sorted(i for b in batches for i in b) == list(range(len(long)))


def test_max_batch_size_caps_utterances(durations):
    sampler = DurationBatchSampler(durations, max_batch_seconds=10_000, max_batch_size=7, seed=0)

    batches = sampler.batches()

    assert max(len(b) for b in batches) == 7
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))


def test_same_seed_and_epoch_is_deterministic(durations):
    a = DurationBatchSampler(durations, 60, seed=5)
    b = DurationBatchSampler(durations, 60, seed=5)
    a.set_epoch(4)
    b.set_epoch(4)

    assert list(a) == list(b)
    assert list(a) == list(a)  # iterating twice gives the same epoch again


def test_different_epoch_or_seed_changes_order(durations):
    sampler = DurationBatchSampler(durations, 60, seed=5)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    other_seed = list(DurationBatchSampler(durations, 60, seed=6))

    assert epoch0 != epoch1
    assert epoch0 != other_seed
    # Not just a reordering of the same batches: the jitter changes membership too.
    assert {tuple(sorted(b)) for b in epoch0} != {tuple(sorted(b)) for b in epoch1}


def test_without_shuffle_batches_are_sorted_and_fixed(durations):
    sampler = DurationBatchSampler(durations, 60, shuffle=False, seed=0)
    epoch0 = list(sampler)
    sampler.set_epoch(3)

    assert list(sampler) == epoch0
    flat = [durations[i] for b in epoch0 for i in b]
    assert flat == sorted(flat)


@pytest.mark.parametrize("start_batch", [0, 1, 5])
def test_set_epoch_start_batch_resumes_mid_epoch(durations, start_batch):
    sampler = DurationBatchSampler(durations, 60, seed=2)
    sampler.set_epoch(3)
    full = list(sampler)

    sampler.set_epoch(3, start_batch=start_batch)

    assert list(sampler) == full[start_batch:]
    assert len(sampler) == len(full) - start_batch


def test_set_epoch_start_batch_at_end_yields_nothing(durations):
    sampler = DurationBatchSampler(durations, 60, seed=2)
    total = len(sampler.batches())

    sampler.set_epoch(0, start_batch=total)

    assert list(sampler) == []
    assert len(sampler) == 0


def test_next_epoch_resets_start_batch(durations):
    sampler = DurationBatchSampler(durations, 60, seed=2)
    sampler.set_epoch(0, start_batch=3)
    sampler.set_epoch(1)
    assert len(list(sampler)) == len(sampler.batches())


def test_a_broken_file_is_skipped_not_fatal(tmp_path, speech_manifest):
    from speechseq.data import AsrDataset, collate_asr, read_manifest
    from speechseq.features import FeatureConfig, FeatureExtractor
    from speechseq.text import CharTokenizer

    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    utts = read_manifest(speech_manifest)[:1] + [
        read_manifest(speech_manifest)[0].with_audio(str(broken))
    ]
    dataset = AsrDataset(utts, FeatureExtractor(FeatureConfig()), CharTokenizer())
    with pytest.warns(UserWarning, match="broken.wav"):
        items = [dataset[0], dataset[1]]
    assert items[1] is None
    batch = collate_asr(items)
    assert batch is not None and batch.features.shape[0] == 1
    assert collate_asr([None]) is None
