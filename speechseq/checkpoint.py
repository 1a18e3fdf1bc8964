"""Checkpoints that rebuild the whole pipeline on their own and load with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (no pickled classes):

    {"format": "speechseq-asr", "version": 1,
     "model_config": {...}, "feature_config": {...}, "tokenizer": {...},
     "model": state_dict,
     "provenance": {"speechseq": "0.1.0", "torch": "2.14.1", "python": "3.11.7",
                    "git": "<commit>" or None, "created": "<ISO time>"},
     "train_state": {...},          # optimizer, scheduler, step, RNG…; absent in released models
     "int8": {...}}                 # only in int8 release copies (speechseq.quantization)

:func:`export_checkpoint` writes release copies (float32, float16 or int8; ``speechseq export``).

:func:`describe_checkpoint` says what a checkpoint is (``speechseq info``).
"""

from __future__ import annotations

import functools
import pickle
import platform
import subprocess
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

import torch

from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.files import atomic_path
from speechseq.models import (
    TTS_KINDS,
    VOCODER_KINDS,
    DurationSynthesizer,
    IstftVocoder,
    Recognizer,
    Synthesizer,
    build_model,
    config_from_dict,
)
from speechseq.quantization import dequantize_state, quantize_state, to_int8_runtime
from speechseq.text import Tokenizer, tokenizer_from_dict

__all__ = [
    "ASR_FORMAT",
    "TTS_FORMAT",
    "VOCODER_FORMAT",
    "PRECISIONS",
    "export_checkpoint",
    "load_checkpoint",
    "load_recognizer",
    "load_synthesizer",
    "load_vocoder",
    "asr_state",
    "describe_checkpoint",
    "model_state",
    "precision",
    "provenance",
    "tts_state",
    "vocoder_state",
    "save_checkpoint",
]

ASR_FORMAT = "speechseq-asr"
TTS_FORMAT = "speechseq-tts"
VOCODER_FORMAT = "speechseq-vocoder"
VERSION = 1
_REQUIRED = ("model_config", "feature_config", "tokenizer", "model")
_REQUIRED_BY_FORMAT = {VOCODER_FORMAT: ("model_config", "feature_config", "model")}  # no text
# the kind of a checkpoint saved before model configs had one
_DEFAULT_KIND = {ASR_FORMAT: "recognizer", TTS_FORMAT: "attention"}


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write atomically (see :func:`~speechseq.files.atomic_path`), so a kill mid-write never
    leaves a truncated checkpoint behind."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, expected_format: str | None = ASR_FORMAT) -> dict:
    """Read a checkpoint without running pickled code.

    Raises:
        SpeechseqError: missing, unreadable, or not a speechseq checkpoint of that kind.
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechseqError(f"{path}: no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not zipfile.is_zipfile(path):  # torch.save writes a zip; this is something else
            raise SpeechseqError(f"{path}: not a PyTorch checkpoint file") from None
        # torch's refusal of pickled code is 8 lines that suggest allowing it; a speechseq
        # checkpoint never needs that
        raise SpeechseqError(
            f"{path}: holds pickled Python objects, which speechseq does not load "
            "(its checkpoints are plain tensors and values)"
        ) from None
    except PermissionError:
        raise SpeechseqError(f"{path}: permission denied") from None
    except Exception:  # torch raises many types for a file that is not a torch.save zip
        raise SpeechseqError(f"{path}: not a PyTorch checkpoint file") from None
    if not isinstance(state, dict) or "format" not in state:
        raise SpeechseqError(f"{path}: not a speechseq checkpoint")
    missing = [k for k in _REQUIRED_BY_FORMAT.get(state["format"], _REQUIRED) if k not in state]
    if missing:
        raise SpeechseqError(
            f"{path}: an incomplete speechseq checkpoint (no {', '.join(missing)})"
        )
    if expected_format is not None and state["format"] != expected_format:
        raise SpeechseqError(f"{path}: a {state['format']} checkpoint, expected {expected_format}")
    return state


def model_state(
    fmt: str, model: torch.nn.Module, feature_config: FeatureConfig, tokenizer: Tokenizer
) -> dict:
    """The model part of a checkpoint of format ``fmt`` (``ASR_FORMAT`` or ``TTS_FORMAT``):
    everything inference needs, including the feature settings a vocoder inverts."""
    # a model of one of the MODELS kinds (Module's __getattr__ would type .config as a tensor)
    built = cast("Recognizer | Synthesizer | DurationSynthesizer", model)
    return {
        "format": fmt,
        "version": VERSION,
        "model_config": built.config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "provenance": provenance(),
    }


@functools.cache
def _git_commit() -> str | None:
    """The commit of the speechseq source tree, if it is a git checkout (else None)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def provenance() -> dict:
    """What made a checkpoint: the speechseq, torch and Python versions, the git commit of
    speechseq's source if known, and the time (UTC)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("speechseq")
    except PackageNotFoundError:
        ours = "unknown"
    return {
        "speechseq": ours,
        "torch": str(torch.__version__),  # a TorchVersion, which would pickle as a class
        "python": platform.python_version(),
        "git": _git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def describe_checkpoint(path: str | Path) -> dict:
    """What a checkpoint is: its format, model kind and config, features, units, parameter
    count, training progress (if it has its training state), provenance and release notes.

    Raises:
        SpeechseqError: not a speechseq checkpoint.
    """
    state = load_checkpoint(path, expected_format=None)  # checks the required keys
    weights = state["model"]
    int8_scales = state.get("int8", {}).get("scales", {})
    tokenizer = state.get("tokenizer")
    train = state.get("train_state") or {}
    return {
        "path": str(path),
        "format": state["format"],
        "kind": state["model_config"].get("kind", _DEFAULT_KIND.get(state["format"], "?")),
        "parameters": sum(
            v.numel() for k, v in weights.items() if v.is_floating_point() or k in int8_scales
        ),
        "dtype": ("torch.int8 (GRU, LSTM, linear) + " if int8_scales else "")
        + str(next((v.dtype for v in weights.values() if v.is_floating_point()), "?")),
        "units": (
            f"{tokenizer.get('type', '?')}, {_vocabulary_size(tokenizer)} outputs"
            if tokenizer is not None
            else "none (audio out)"
        ),
        "model_config": state["model_config"],
        "feature_config": state["feature_config"],
        "training": {k: train[k] for k in ("step", "epoch") if k in train} or None,
        "provenance": state.get("provenance"),
        "meta": state.get("meta"),
        "vocoder": _describe_vocoder(state["vocoder"]) if "vocoder" in state else None,
    }


def _describe_vocoder(part: dict) -> dict:
    """What a voice's own vocoder is (``speechseq export --vocoder``)."""
    return {
        "kind": part["model_config"].get("kind", "?"),
        "parameters": sum(v.numel() for v in part["model"].values() if v.is_floating_point()),
        "meta": part.get("meta"),
    }


def precision(state: dict) -> str:
    """How a checkpoint's weights are stored: "int8", "float16" or "float32"."""
    if "int8" in state:
        return "int8"
    floats = (v.dtype for v in state["model"].values() if v.is_floating_point())
    return "float16" if next(floats, None) == torch.float16 else "float32"


def _vocabulary_size(tokenizer: dict) -> int | str:
    try:
        return len(tokenizer_from_dict(tokenizer))  # the blank included
    except (SpeechseqError, KeyError, TypeError, ValueError):
        return "?"


def _load_model(path: str | Path, fmt: str, kinds: tuple[str, ...], int8_kernels: bool) -> tuple:
    state = load_checkpoint(path, fmt)
    model = _model_from_state(state, path, kinds)
    if "int8" in state and int8_kernels:
        to_int8_runtime(model, state)
    return (
        model,
        FeatureConfig.from_dict(state["feature_config"]),
        tokenizer_from_dict(state["tokenizer"]),
        state,
    )


def _model_from_state(state: dict, path: str | Path, kinds: tuple[str, ...]) -> torch.nn.Module:
    """The model a loaded checkpoint describes, in eval mode, with its weights in float32
    (``path`` names it in errors)."""
    try:
        config = config_from_dict(state["model_config"], _DEFAULT_KIND.get(state["format"], ""))
    except (KeyError, TypeError, ValueError) as err:
        raise SpeechseqError(f"{path}: a model config this version cannot build ({err})") from None
    if config.kind not in kinds:
        raise SpeechseqError(f"{path}: a {config.kind} model, expected {' or '.join(kinds)}")
    model = build_model(config)
    try:
        model.load_state_dict(dequantize_state(state))
    except RuntimeError as err:  # torch lists every mismatched tensor, a line each
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        shown = lines[0].rstrip(".") if lines else str(err)
        more = f"; {len(lines) - 1} more" if len(lines) > 1 else ""
        raise SpeechseqError(f"{path}: its weights do not fit its model ({shown}{more})") from None
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise SpeechseqError(f"{path}: its weights are not a model's state ({err})") from None
    return model.eval()


def load_recognizer(
    path: str | Path, int8_kernels: bool = True
) -> tuple[Recognizer, FeatureConfig, Tokenizer, dict]:
    """Rebuild a recognizer from a checkpoint alone (an ONNX file:
    :func:`speechseq.asr.onnx.load_onnx_recognizer`).

    Args:
        int8_kernels: run an int8 checkpoint's layers on torch's int8 kernels (CPU only;
            :func:`speechseq.quantization.to_int8_runtime`); False: on its weights in float32,
            e.g. to move the model to a GPU.

    Returns:
        model (in eval mode), feature config, tokenizer and the raw checkpoint dict.
    """
    return _load_model(path, ASR_FORMAT, ("recognizer",), int8_kernels)


def load_synthesizer(
    path: str | Path, int8_kernels: bool = True
) -> tuple[Synthesizer, FeatureConfig, Tokenizer, dict]:
    """Rebuild a text-to-speech model (of either kind) from a checkpoint alone.

    Args:
        int8_kernels: as for :func:`load_recognizer`.

    Returns:
        model (in eval mode), feature config, tokenizer and the raw checkpoint dict.
    """
    return _load_model(path, TTS_FORMAT, TTS_KINDS, int8_kernels)


PRECISIONS = ("float32", "float16", "int8")


def export_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    precision: str = "float32",
    vocoder: str | Path | None = None,
    **meta: object,
) -> Path:
    """Write a release copy of a recognizer or voice checkpoint: weights, configs and tokenizer
    only (no optimizer or training state), plus ``meta`` entries (e.g. ``teacher="flite slt"``)
    for the model card.

    Args:
        precision: how the weights are stored. "float16": half the file; they load back into
            the float32 model, so inference is unchanged but for the rounding of the weights.
            "int8": the GRU, LSTM and linear layers' weight matrices as int8 with a scale per
            row (:mod:`speechseq.quantization`), a quarter of their float32 size; on a CPU they
            then run on int8 kernels. Measure the error rates of the copy before shipping it.
        vocoder: a neural vocoder checkpoint for a voice to carry (float16 weights, no training
            state); the voice then speaks with it by default
            (:func:`speechseq.tts.vocoder.choose_vocoder`).

    Returns:
        ``dst``.

    Raises:
        SpeechseqError: an unknown precision, or ``src`` is not a speechseq checkpoint.
    """
    if precision not in PRECISIONS:
        raise SpeechseqError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    state = load_checkpoint(src, expected_format=None)
    if state["format"] == VOCODER_FORMAT and precision == "int8":
        raise SpeechseqError(f"{src}: a vocoder is exported in float16 or float32, not int8")
    if vocoder is not None:
        state["vocoder"] = _vocoder_part(vocoder, state, src)
    state.pop("train_state", None)
    state["model"] = dequantize_state(state)
    state.pop("int8", None)
    if precision in ("float16", "float32"):
        dtype = torch.float16 if precision == "float16" else torch.float32
        state["model"] = {
            k: v.to(dtype) if v.is_floating_point() else v for k, v in state["model"].items()
        }
    else:
        model = _model_from_state(state, src, TTS_KINDS + ("recognizer",))
        state["model"], state["int8"] = quantize_state(model)
    state["meta"] = {**state.get("meta", {}), **meta, "precision": precision}
    return save_checkpoint(state, dst)


def _vocoder_part(vocoder: str | Path, voice: dict, src: str | Path) -> dict:
    """A vocoder checkpoint as a voice carries it: float16 weights, configs and notes."""
    if voice["format"] != TTS_FORMAT:
        raise SpeechseqError(f"{src}: only a voice carries a vocoder")
    part = load_checkpoint(vocoder, VOCODER_FORMAT)
    load_vocoder(part)  # it builds
    theirs = FeatureConfig.from_dict(part["feature_config"])
    if theirs.mel_settings() != FeatureConfig.from_dict(voice["feature_config"]).mel_settings():
        raise SpeechseqError(f"{vocoder}: trained on other mel settings than {src}")
    weights = {k: v.half() if v.is_floating_point() else v for k, v in part["model"].items()}
    kept = ("format", "version", "model_config", "feature_config", "provenance", "meta")
    return {**{k: part[k] for k in kept if k in part}, "model": weights}


def asr_state(model: Recognizer, feature_config: FeatureConfig, tokenizer: Tokenizer) -> dict:
    """The model part of a recognizer checkpoint (everything inference needs)."""
    return model_state(ASR_FORMAT, model, feature_config, tokenizer)


def tts_state(model: torch.nn.Module, feature_config: FeatureConfig, tokenizer: Tokenizer) -> dict:
    """The model part of a text-to-speech checkpoint (everything synthesis needs)."""
    return model_state(TTS_FORMAT, model, feature_config, tokenizer)


def vocoder_state(model: IstftVocoder, feature_config: FeatureConfig) -> dict:
    """The model part of a vocoder checkpoint: its config, the mel settings (and statistics) it
    reads, its weights. No tokenizer: a vocoder never sees text."""
    return {
        "format": VOCODER_FORMAT,
        "version": VERSION,
        "model_config": model.config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "provenance": provenance(),
    }


def load_vocoder(source: str | Path | dict) -> tuple[IstftVocoder, FeatureConfig, dict]:
    """Rebuild a neural vocoder from its checkpoint, or from the ``vocoder`` part a voice
    checkpoint carries (``speechseq export VOICE --vocoder FILE``).

    Returns:
        model (in eval mode, float32), the feature config it reads, the raw state.
    """
    if isinstance(source, dict):
        state, where = source, "the voice's vocoder"
    else:
        state, where = load_checkpoint(source, VOCODER_FORMAT), source
    model = cast("IstftVocoder", _model_from_state(state, where, VOCODER_KINDS))
    return model, FeatureConfig.from_dict(state["feature_config"]), state
