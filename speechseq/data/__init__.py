"""Manifests, datasets, samplers and collate functions.

Lazy, as the package is: ``speechseq.data.manifest`` loads no torch (the jobs that read a
manifest of files to transcribe may run without it); the datasets load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from speechseq.lazy import lazy_attributes

if TYPE_CHECKING:
    from speechseq.data.dataset import AsrBatch, AsrDataset, DurationBatchSampler, collate_asr
    from speechseq.data.manifest import (
        Utterance,
        manifest_from_folder,
        read_manifest,
        write_manifest,
    )
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

_MODULES = {
    "speechseq.data.dataset": ("AsrBatch", "AsrDataset", "DurationBatchSampler", "collate_asr"),
    "speechseq.data.manifest": (
        "Utterance",
        "manifest_from_folder",
        "read_manifest",
        "write_manifest",
    ),
    "speechseq.data.tts": ("TtsBatch", "TtsDataset", "collate_tts", "stop_targets"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
