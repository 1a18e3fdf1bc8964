"""Manifests, datasets, samplers and collate functions."""

from speechseq.data.dataset import AsrBatch, AsrDataset, DurationBatchSampler, collate_asr
from speechseq.data.manifest import Utterance, manifest_from_folder, read_manifest, write_manifest

__all__ = [
    "AsrBatch",
    "AsrDataset",
    "DurationBatchSampler",
    "Utterance",
    "collate_asr",
    "manifest_from_folder",
    "read_manifest",
    "write_manifest",
]
