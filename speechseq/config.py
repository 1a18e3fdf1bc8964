"""Experiment configs: one YAML per experiment, in sections, loaded into frozen dataclasses and
overridable from the command line (``train.epochs=3`` or ``--train.epochs 3``).

This module holds the loading machinery and the section both tasks share (:class:`TrainingConfig`);
each task's own sections and loader live in :mod:`speechseq.asr.config` and
:mod:`speechseq.tts.config`. No object construction from YAML: the wiring stays in Python you can
grep.

Paths in a YAML file (manifests, ``out_dir``, checkpoints) are relative to the YAML file's folder,
wherever the command runs; paths given as overrides on the command line are relative to the
working directory, as any command-line path is. Both are made absolute on loading, so the
``config.yaml`` a run saves loads again from anywhere.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml

from speechseq.errors import SpeechseqError

__all__ = [
    "TrainingConfig",
    "build_section",
    "parse_overrides",
    "read_experiment",
]


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
        tensorboard: also write the metrics (and a voice's alignment images and audio samples)
            for TensorBoard to ``out_dir/tensorboard`` (needs ``pip install
            'speechseq[tensorboard]'``).
        init_from: fine-tune: start from this checkpoint's weights, features, model and
            tokenizer (``default``: the shipped recognizer's, or voice's for a voice), with a
            fresh optimizer and schedule (optional; a resumed run ignores it). For a
            recognizer ``data.tokenizer`` can swap the output units; the config's ``features``
            and ``model`` settings are not used (a recognizer's run names those that differ
            from the checkpoint's).
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
    tensorboard: bool = False
    init_from: str | None = None


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


def build_section(cls: type, values: dict, where: str) -> Any:
    """An instance of the section dataclass ``cls`` from ``values``, each checked against its
    field's type.

    Raises:
        SpeechseqError: an unknown key or a bad value, named with ``where``.
    """
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
        raise SpeechseqError(f"{path}: not valid YAML ({_yaml_problem(err)})") from None
    if not isinstance(raw, dict):
        raise SpeechseqError(f"{path}: expected sections {sorted(names)}")
    unknown = set(raw) - set(names)
    if unknown:
        raise SpeechseqError(f"{path}: unknown section(s) {sorted(unknown)}")
    for name, value in raw.items():
        if value is not None and not isinstance(value, dict):
            raise SpeechseqError(f"{path}: section {name!r} must hold key: value pairs")
    return raw, str(path)


def read_experiment(
    path: str | Path | None,
    names: list[str],
    overrides: dict[str, Any] | None,
    paths: dict[str, tuple[str, ...]] | None = None,
) -> tuple[dict, dict[str, dict], str]:
    """Read a YAML experiment file's sections and apply ``section.key`` overrides.

    Args:
        paths: the keys of each section that hold file paths: the file's are taken relative
            to its folder, the overrides' relative to the working directory.

    Returns:
        the file's raw sections (``{}`` without a file), each of ``names`` as a dict of the
        values set (file, then overrides), and the file's name for messages.

    Raises:
        SpeechseqError: missing file, bad YAML, unknown section, or a malformed override.
    """
    raw, where = _read_sections(path, names)
    sections = {name: dict(raw.get(name) or {}) for name in names}
    base = Path(path).parent if path is not None else Path()
    for section, keys in (paths or {}).items():
        for key in set(keys) & set(sections.get(section, {})):
            sections[section][key] = _absolute(sections[section][key], base)
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if not name:
            raise SpeechseqError(f"override {key!r}: use section.key=value")
        if section not in sections:
            raise SpeechseqError(f"override {key!r}: unknown section {section!r}")
        if name in (paths or {}).get(section, ()):
            value = _absolute(value, Path())
        sections[section][name] = value
    return raw, sections, where


# values of path keys that name no file
_NOT_PATHS = ("default", "char")


def _absolute(value: Any, base: Path) -> Any:
    """A path value (or a list of them) made absolute against ``base``; others as they are."""
    if isinstance(value, (list, tuple)):
        return [_absolute(v, base) for v in value]
    if not isinstance(value, str) or not value or value in _NOT_PATHS or value.startswith("bpe:"):
        return value
    return os.path.abspath(base / value)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's many-line message as one line: what is wrong, and where."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(err, "context", None)
    return f"{context + ': ' if context else ''}{problem}{where}"
