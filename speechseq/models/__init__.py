"""Models, one per file, each with its frozen config beside it, and the one registry of kinds.

Every config has a ``kind``, saved in every checkpoint and accepted in a YAML ``model``
section; :data:`MODELS` maps it to the model class and its config class.

Example:
    >>> model = build_model(config_from_dict({"kind": "duration", "n_mels": 80}))
"""

from __future__ import annotations

from typing import Any

from torch import nn

from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.models.duration_tts import DurationSynthesizer, DurationSynthesizerConfig
from speechseq.models.tts import Synthesizer, SynthesizerConfig
from speechseq.models.vocoder import IstftVocoder, IstftVocoderConfig

__all__ = [
    "MODELS",
    "TTS_KINDS",
    "VOCODER_KINDS",
    "DurationSynthesizer",
    "DurationSynthesizerConfig",
    "IstftVocoder",
    "IstftVocoderConfig",
    "Recognizer",
    "RecognizerConfig",
    "Synthesizer",
    "SynthesizerConfig",
    "build_model",
    "config_from_dict",
]

# kind → (model class, config class): the one place a kind is looked up
MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "recognizer": (Recognizer, RecognizerConfig),
    "attention": (Synthesizer, SynthesizerConfig),
    "duration": (DurationSynthesizer, DurationSynthesizerConfig),
    "istft": (IstftVocoder, IstftVocoderConfig),
}
TTS_KINDS = ("attention", "duration")
VOCODER_KINDS = ("istft",)


def config_from_dict(saved: dict[str, Any], default_kind: str = "recognizer") -> Any:
    """The config a checkpoint or YAML section describes; ``default_kind`` for one saved before
    configs had a ``kind`` (a recognizer's or an attention synthesizer's).

    Raises:
        KeyError: an unknown kind.
    """
    kind = saved.get("kind", default_kind)
    if kind not in MODELS:
        raise KeyError(f"unknown model kind {kind!r}; known: {', '.join(MODELS)}")
    return MODELS[kind][1].from_dict({**saved, "kind": kind})


def build_model(config: Any) -> nn.Module:
    """A fresh model of ``config``'s kind, built from ``config``."""
    return MODELS[config.kind][0](config)
