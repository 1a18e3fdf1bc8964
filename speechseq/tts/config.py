"""The sections of a text-to-speech experiment (``speechseq train tts``) and their loader.

Example:
    >>> config = load_tts_config("recipes/synthetic/tts/hparams/train.yaml", {"train.epochs": 2})
    >>> config.model.kind                      # attention (Tacotron-style) or duration
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechseq.config import TrainingConfig, build_section, read_experiment
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.models import MODELS, TTS_KINDS, DurationSynthesizerConfig, SynthesizerConfig

__all__ = [
    "TtsDataConfig",
    "TtsExperimentConfig",
    "TtsLossConfig",
    "TtsValidationConfig",
    "load_tts_config",
    "tts_feature_config",
]


def tts_feature_config(sample_rate: int = 16000, **overrides: Any) -> FeatureConfig:
    """Log-mel settings for text-to-speech: 80 mels, 12.5 ms hop, 50 ms window, FFT the next
    power of two, corpus-global normalisation (invertible, unlike per-utterance)."""
    win = round(0.05 * sample_rate)
    values = {
        "sample_rate": sample_rate,
        "n_fft": 1 << (win - 1).bit_length(),
        "win_length": win,
        "hop_length": round(0.0125 * sample_rate),
        "n_mels": 80,
        "normalize": "global",
        **overrides,
    }
    return FeatureConfig(**values)


@dataclass(frozen=True)
class TtsDataConfig:
    """Where the text-to-speech data is and how it is cut and batched.

    Args:
        train_manifest: JSONL manifest (audio + text) of one voice.
        dev_manifest: JSONL manifest for validation (optional).
        max_batch_seconds: padded audio seconds per batch (before trimming).
        max_batch_size: cap on utterances per batch (optional).
        num_workers: DataLoader worker processes decoding audio.
        max_duration: skip training utterances longer than this many seconds (optional).
        max_missing: the share of a manifest's utterances whose audio file may be missing;
            they are left out with one warning line. More, or all, is an error before training.
        trim_db: trim leading/trailing audio this many dB below the loudest frame (null = off).
        trim_margin: seconds of the trimmed edges kept.
        cache: keep every utterance's features in memory after the first epoch (~92 MB per hour
            of audio; useful with ``num_workers`` 0, the default).
        train_durations, dev_durations: per-character frame counts of each utterance
            (``speechseq.tts.durations.align_corpus``); the duration model (``model.kind:
            duration``) needs them, the attention model ignores them.
    """

    train_manifest: str = ""
    dev_manifest: str | None = None
    max_batch_seconds: float = 100.0
    max_batch_size: int | None = None
    num_workers: int = 0
    max_duration: float | None = None
    max_missing: float = 0.05
    trim_db: float | None = 40.0
    trim_margin: float = 0.05
    cache: bool = True
    train_durations: str | None = None
    dev_durations: str | None = None


@dataclass(frozen=True)
class TtsLossConfig:
    """Terms of the text-to-speech loss (``speechseq.tts.train.compute_tts_loss``).

    Args:
        mel_loss: ``l1``, ``l2`` or ``l1+l2``, on the frames before and after the postnet.
        stop_weight: weight of the stop-token binary cross-entropy.
        stop_pos_weight: weight of its positive (stop) steps, rarer than the others.
        guided_attention_weight: weight of the guided-attention loss (0 = off).
        guided_attention_g: width of its diagonal band (fraction of the utterance).
        duration_weight: weight of the duration model's duration loss (squared error of
            log(1 + frames) per character).
    """

    mel_loss: str = "l1"
    stop_weight: float = 1.0
    stop_pos_weight: float = 5.0
    guided_attention_weight: float = 2.0
    guided_attention_g: float = 0.2
    duration_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.mel_loss not in ("l1", "l2", "l1+l2"):
            raise ValueError(f"mel_loss must be l1, l2 or l1+l2, not {self.mel_loss!r}")


@dataclass(frozen=True)
class TtsValidationConfig:
    """What each validation measures besides the teacher-forced dev loss.

    Args:
        recognizer: a speech-to-text checkpoint that transcribes free-running synthesis of dev
            sentences, giving its character error rate (null = no intelligibility check).
        sentences: dev sentences synthesized free-running at each validation.
        max_utterances: dev utterances for the teacher-forced loss (null = all).
        save_audio: keep the synthesized sentences as wavs in ``out_dir/samples/``.
        plot: write attention plots (PNG) to ``out_dir/alignments/``.
        seed: seeds the prenet dropout of validation passes.
    """

    recognizer: str | None = None
    sentences: int = 4
    max_utterances: int | None = None
    save_audio: bool = True
    plot: bool = True
    seed: int = 0


@dataclass(frozen=True)
class TtsExperimentConfig:
    """Everything ``speechseq train tts`` needs, one field per YAML section (``data``,
    ``features``, ``model``, ``loss``, ``validation``, ``train``)."""

    data: TtsDataConfig = field(default_factory=TtsDataConfig)
    features: FeatureConfig = field(default_factory=tts_feature_config)
    model: SynthesizerConfig | DurationSynthesizerConfig = field(default_factory=SynthesizerConfig)
    loss: TtsLossConfig = field(default_factory=TtsLossConfig)
    validation: TtsValidationConfig = field(default_factory=TtsValidationConfig)
    train: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Training defaults that differ from speech-to-text's.
TTS_TRAIN_DEFAULTS = {
    "out_dir": "exp/tts",
    "epochs": 100,
    "lr": 1e-3,
    "weight_decay": 1e-6,
    "warmup_steps": 200,
    "final_lr_ratio": 0.1,
    "grad_clip": 1.0,
    "checkpoint_every": 200,
    "log_every": 10,
    "validate_every": 5,
}


def load_tts_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> TtsExperimentConfig:
    """Read a text-to-speech YAML experiment file and apply ``section.key`` overrides.

    ``features`` defaults to :func:`tts_feature_config` at its ``sample_rate`` (so setting only
    ``sample_rate: 22050`` gives a 276-sample hop and a 1102-sample window).

    Raises:
        SpeechseqError: missing file, bad YAML, unknown section or key, or a bad value.
    """
    classes = {
        "data": TtsDataConfig,
        "features": FeatureConfig,
        "model": SynthesizerConfig,
        "loss": TtsLossConfig,
        "validation": TtsValidationConfig,
        "train": TrainingConfig,
    }
    paths = {
        "data": ("train_manifest", "dev_manifest", "train_durations", "dev_durations"),
        "validation": ("recognizer",),
        "train": ("out_dir", "init_from"),
    }
    raw, sections, where = read_experiment(path, list(classes), overrides, paths)
    kind = sections["model"].get("kind", "attention")
    if kind == "tacotron":  # the attention model's other name
        kind = sections["model"]["kind"] = "attention"
    if kind not in TTS_KINDS:
        raise SpeechseqError(
            f"{where} [model]: kind must be {' or '.join(TTS_KINDS)}, not {kind!r}"
        )
    classes["model"] = MODELS[kind][1]
    rate = sections["features"].get("sample_rate", 16000)
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise SpeechseqError(f"{where} [features]: sample_rate must be a positive int")
    defaults = {
        "features": tts_feature_config(rate).to_dict(),
        "train": TTS_TRAIN_DEFAULTS,
    }
    built = {
        name: build_section(cls, {**defaults.get(name, {}), **sections[name]}, f"{where} [{name}]")
        for name, cls in classes.items()
    }
    return TtsExperimentConfig(**built)
