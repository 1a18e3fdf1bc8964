"""Experiment configs: one YAML per experiment, in sections, loaded into frozen dataclasses and
overridable from the command line (``train.epochs=3`` or ``--train.epochs 3``).

No object construction from YAML: the wiring stays in Python you can grep.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from speechseq.augment import AugmentConfig
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, SpecAugmentConfig
from speechseq.models.asr import RecognizerConfig

__all__ = [
    "AsrExperimentConfig",
    "DataConfig",
    "TrainingConfig",
    "load_asr_config",
    "parse_overrides",
]


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
    tokenizer: str | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """The optimisation and bookkeeping of a run.

    Args:
        out_dir: checkpoints (``last.pt``, ``best.pt``), ``metrics.jsonl`` and ``config.yaml``.
        epochs: passes over the training data.
        max_steps: stop after this many optimizer steps (optional; overrides ``epochs``).
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps.
        final_lr_ratio: cosine decay ends at ``lr * final_lr_ratio``.
        grad_clip: gradient-norm clipping threshold.
        amp: mixed precision (bfloat16 on CPU, float16 on CUDA).
        seed: seeds model init, data order and augmentation.
        checkpoint_every: also write ``last.pt`` every this many steps (0 = epoch ends only).
        log_every: append training metrics every this many steps.
        device: ``auto``, ``cpu`` or ``cuda``.
        num_threads: torch intra-op threads (optional).
        validate_every: validate on the dev set every this many epochs (and at the end).
        max_minutes: stop (with a checkpoint) after this much wall-clock training (optional).
        init_from: fine-tune: start from this checkpoint's weights, features, model and
            tokenizer (``default``: the shipped recognizer's), with a fresh optimizer and
            schedule (optional; a resumed run ignores it). ``data.tokenizer`` can swap the
            output units; the config's ``features`` and ``model`` settings are not used (the
            run names those that differ from the checkpoint's).
    """

    out_dir: str = "exp/asr"
    epochs: int = 10
    max_steps: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 200
    final_lr_ratio: float = 0.05
    grad_clip: float = 5.0
    amp: bool = False
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    device: str = "auto"
    num_threads: int | None = None
    validate_every: int = 1
    max_minutes: float | None = None
    init_from: str | None = None


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


_SECTIONS = {
    "data": DataConfig,
    "features": FeatureConfig,
    "model": RecognizerConfig,
    "spec_augment": SpecAugmentConfig,
    "augment": AugmentConfig,
    "train": TrainingConfig,
}


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", "--model.hidden_size", "128"]`` → ``{"train.epochs": 3, ...}``
    (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if "=" in arg:
            key, value = arg.lstrip("-").split("=", 1)
            i += 1
        elif arg.startswith("--") and i + 1 < len(args):
            key, value = arg[2:], args[i + 1]
            i += 2
        else:
            raise SpeechseqError(f"cannot read override {arg!r}: use section.key=value")
        try:
            out[key.replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise SpeechseqError(f"override {key}: cannot read value {value!r}") from None
    return out


def _check_type(value: Any, hint: Any, where: str, name: str) -> Any:
    """Coerce ``value`` to a field's type where it is safe (int → float), or refuse it."""
    options = (
        typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    )
    if value is None:
        if type(None) in options:
            return None
        raise SpeechseqError(f"{where}: {name} cannot be empty")
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is str and isinstance(value, str):
            return value
        if origin in (tuple, list) and isinstance(value, (list, tuple)):
            return tuple(value)
    expected = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise SpeechseqError(f"{where}: {name} must be {expected}, not {value!r}")


def _build(cls: type, values: dict, where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise SpeechseqError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    values = {k: _check_type(v, hints[k], where, k) for k, v in values.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise SpeechseqError(f"{where}: {err}") from None


def load_asr_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> AsrExperimentConfig:
    """Read a YAML experiment file and apply ``section.key`` overrides.

    Raises:
        SpeechseqError: missing file, bad YAML, unknown section or key, or a bad value.
    """
    raw, where = _read_sections(path, list(_SECTIONS))
    sections = {name: dict(raw.get(name) or {}) for name in _SECTIONS}
    spec_off = "spec_augment" in raw and raw["spec_augment"] is None
    augment_on = "augment" in raw and raw["augment"] is not None
    for key, value in (overrides or {}).items():
        if "." not in key:
            raise SpeechseqError(f"override {key!r}: use section.key=value")
        section, name = key.split(".", 1)
        if section not in _SECTIONS:
            raise SpeechseqError(f"override {key!r}: unknown section {section!r}")
        sections[section][name] = value
    built = {
        name: _build(cls, sections[name], f"{where} [{name}]") for name, cls in _SECTIONS.items()
    }
    if spec_off and not sections["spec_augment"]:
        built["spec_augment"] = None
    if not augment_on and not sections["augment"]:
        built["augment"] = None
    return AsrExperimentConfig(**built)


# --- Text-to-speech experiments (``speechseq train tts``) -------------------------------------

from speechseq.models.duration_tts import DurationSynthesizerConfig  # noqa: E402
from speechseq.models.tts import SynthesizerConfig  # noqa: E402 (the TTS part is appended)


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
        trim_db: trim leading/trailing audio this many dB below the loudest frame (null = off).
        trim_margin: seconds of the trimmed edges kept.
        cache: keep every utterance's features in memory after the first epoch (~92 MB per hour
            of audio; useful with ``num_workers`` 0, the default).
        train_durations, dev_durations: per-character frame counts of each utterance
            (``speechseq.durations.align_corpus``); the duration model (``model.kind:
            duration``) needs them, the attention model ignores them.
    """

    train_manifest: str = ""
    dev_manifest: str | None = None
    max_batch_seconds: float = 100.0
    max_batch_size: int | None = None
    num_workers: int = 0
    max_duration: float | None = None
    trim_db: float | None = 40.0
    trim_margin: float = 0.05
    cache: bool = True
    train_durations: str | None = None
    dev_durations: str | None = None


@dataclass(frozen=True)
class TtsLossConfig:
    """Terms of the text-to-speech loss (``speechseq.training_tts.compute_tts_loss``).

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


def _read_sections(path: str | Path | None, names: list[str]) -> tuple[dict, str]:
    """A YAML experiment file as ``{section: {key: value}}`` and its name for messages."""
    if path is None:
        return {}, "config"
    path = Path(path)
    if not path.is_file():
        raise SpeechseqError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise SpeechseqError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise SpeechseqError(f"{path}: expected sections {sorted(names)}")
    unknown = set(raw) - set(names)
    if unknown:
        raise SpeechseqError(f"{path}: unknown section(s) {sorted(unknown)}")
    for name, value in raw.items():
        if value is not None and not isinstance(value, dict):
            raise SpeechseqError(f"{path}: section {name!r} must hold key: value pairs")
    return raw, str(path)


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
    raw, where = _read_sections(path, list(classes))
    sections = {name: dict(raw.get(name) or {}) for name in classes}
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if not name:
            raise SpeechseqError(f"override {key!r}: use section.key=value")
        if section not in classes:
            raise SpeechseqError(f"override {key!r}: unknown section {section!r}")
        sections[section][name] = value
    kind = sections["model"].pop("kind", "attention")  # attention (Tacotron) or duration
    if kind == "duration":
        classes["model"] = DurationSynthesizerConfig
    elif kind not in ("attention", "tacotron"):
        raise SpeechseqError(f"{where} [model]: kind must be attention or duration, not {kind!r}")
    rate = sections["features"].get("sample_rate", 16000)
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise SpeechseqError(f"{where} [features]: sample_rate must be a positive int")
    defaults = {
        "features": tts_feature_config(rate).to_dict(),
        "train": TTS_TRAIN_DEFAULTS,
    }
    built = {
        name: _build(cls, {**defaults.get(name, {}), **sections[name]}, f"{where} [{name}]")
        for name, cls in classes.items()
    }
    return TtsExperimentConfig(**built)


__all__ += [
    "TtsDataConfig",
    "TtsExperimentConfig",
    "TtsLossConfig",
    "TtsValidationConfig",
    "load_tts_config",
    "tts_feature_config",
]
