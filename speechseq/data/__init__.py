"""Manifests, datasets, samplers and collate functions.

Lazy, as the package is: ``speechseq.data.manifest`` loads no torch (the jobs that read a
manifest of files to transcribe may run without it); the datasets load it on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'speechseq.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
