"""The sections of a speech-to-text experiment (``speechseq train asr``) and their loader.

Example:
    >>> config = load_asr_config("recipes/tiny/asr/hparams/train.yaml", {"train.epochs": 2})
    >>> config.model.hidden_size, config.train.out_dir
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechseq.augment import AugmentConfig
from speechseq.config import TrainingConfig, build_section, read_experiment
from speechseq.features import FeatureConfig, SpecAugmentConfig
from speechseq.models import RecognizerConfig

__all__ = ["AsrExperimentConfig", "DataConfig", "load_asr_config"]


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how it is batched.

    Args:
        train_manifest: JSONL manifest of training utterances, or a list of them (joined).
        dev_manifest: JSONL manifest for validation each epoch (optional).
        max_batch_seconds: padded audio seconds per batch.
        max_batch_size: cap on utterances per batch (optional).
        num_workers: DataLoader worker processes decoding audio.
        max_duration: skip training utterances longer than this many seconds (optional).
        max_missing: the share of a manifest's utterances whose audio file may be missing;
            they are left out with one warning line. More, or all, is an error before training.
        tokenizer: the output units: ``char`` (letters, space, apostrophe), ``bpe:N`` (N
            SentencePiece word pieces learnt from the training transcripts when the run starts)
            or the path of a SentencePiece ``.model`` file. Unset: ``char`` for a new model, the
            checkpoint's own when fine-tuning. Set when fine-tuning to units other than the
            checkpoint's, the model keeps its trained encoder and gets a fresh output layer.
            The tokenizer is saved in every checkpoint; resuming keeps the checkpoint's.
    """

    train_manifest: str | tuple[str, ...] = ""
    dev_manifest: str | None = None
    max_batch_seconds: float = 200.0
    max_batch_size: int | None = None
    num_workers: int = 0
    max_duration: float | None = None
    max_missing: float = 0.05
    tokenizer: str | None = None


@dataclass(frozen=True)
class AsrExperimentConfig:
    """Everything ``speechseq train asr`` needs, one field per YAML section.

    ``spec_augment: null`` in the YAML turns SpecAugment off; waveform augmentation is off unless
    an ``augment`` section is given (``augment: {}`` takes its defaults).
    """

    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: RecognizerConfig = field(default_factory=RecognizerConfig)
    spec_augment: SpecAugmentConfig | None = field(default_factory=SpecAugmentConfig)
    augment: AugmentConfig | None = None
    train: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# the keys that hold file paths (relative ones: to the YAML file, or for overrides the working
# directory)
_PATHS = {
    "data": ("train_manifest", "dev_manifest", "tokenizer"),
    "train": ("out_dir", "init_from"),
}
_SECTIONS = {
    "data": DataConfig,
    "features": FeatureConfig,
    "model": RecognizerConfig,
    "spec_augment": SpecAugmentConfig,
    "augment": AugmentConfig,
    "train": TrainingConfig,
}


def load_asr_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> AsrExperimentConfig:
    """Read a YAML experiment file and apply ``section.key`` overrides.

    Raises:
        SpeechseqError: missing file, bad YAML, unknown section or key, or a bad value.
    """
    raw, sections, where = read_experiment(path, list(_SECTIONS), overrides, _PATHS)
    spec_off = "spec_augment" in raw and raw["spec_augment"] is None
    augment_on = "augment" in raw and raw["augment"] is not None
    built = {
        name: build_section(cls, sections[name], f"{where} [{name}]")
        for name, cls in _SECTIONS.items()
    }
    if spec_off and not sections["spec_augment"]:
        built["spec_augment"] = None
    if not augment_on and not sections["augment"]:
        built["augment"] = None
    return AsrExperimentConfig(**built)
