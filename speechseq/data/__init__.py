"""Manifests, datasets, samplers and collate functions."""

from speechseq.data.dataset import AsrBatch, AsrDataset, DurationBatchSampler, collate_asr
from speechseq.data.manifest import Utterance, manifest_from_folder, read_manifest, write_manifest
from speechseq.data.tts import TtsBatch, TtsDataset, collate_tts, stop_targets

__all__ = [
    "AsrBatch",
    "AsrDataset",
    "DurationBatchSampler",
    "TtsBatch",
    "TtsDataset",
    "Utterance",
    "collate_asr",
    "collate_tts",
    "manifest_from_folder",
    "read_manifest",
    "stop_targets",
    "write_manifest",
]
