"""Tests for speechseq.config: YAML experiment files and command-line overrides."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
import yaml

from speechseq.asr.config import AsrExperimentConfig, load_asr_config
from speechseq.config import parse_overrides
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, SpecAugmentConfig
from speechseq.models.asr import RecognizerConfig
from speechseq.tts.config import load_tts_config

YAML = """\
data:
  train_manifest: data/train.jsonl
  dev_manifest: data/dev.jsonl
  max_batch_seconds: 120
features:
  n_mels: 64
  normalize: none
model:
  n_mels: 64
  hidden_size: 96
  num_layers: 2
spec_augment:
  freq_masks: 1
  time_width: 0.1
train:
  out_dir: exp/tiny
  epochs: 5
  lr: 0.002
  amp: true
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path) -> Path:
    return _write(tmp_path, YAML)


def test_load_reads_every_section(config_file):
    config = load_asr_config(config_file)

    assert isinstance(config, AsrExperimentConfig)
    # paths in the file are relative to its folder
    assert config.data.train_manifest == str(config_file.parent / "data/train.jsonl")
    assert config.data.dev_manifest == str(config_file.parent / "data/dev.jsonl")
    assert config.data.max_batch_seconds == 120
    assert config.features == FeatureConfig(n_mels=64, normalize="none")
    assert config.model == RecognizerConfig(n_mels=64, hidden_size=96, num_layers=2)
    assert config.spec_augment == SpecAugmentConfig(freq_masks=1, time_width=0.1)
    assert config.train.out_dir == str(config_file.parent / "exp/tiny")
    assert config.train.epochs == 5
    assert config.train.lr == pytest.approx(0.002)
    assert config.train.amp is True
    assert config.train.seed == 0  # unspecified keys keep their defaults


def test_load_without_file_gives_defaults():
    config = load_asr_config(None)

    assert config == AsrExperimentConfig()
    assert config.spec_augment == SpecAugmentConfig()


@pytest.mark.parametrize("text", ["", "# only a comment\n", "train:\n"])
def test_empty_file_or_section_gives_defaults(tmp_path, text):
    assert load_asr_config(_write(tmp_path, text)) == AsrExperimentConfig()


def test_config_is_frozen_and_to_dict_round_trips_through_yaml(config_file):
    config = load_asr_config(config_file)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train = None  # type: ignore[misc]

    dumped = config_file.parent / "dumped.yaml"
    dumped.write_text(yaml.safe_dump(config.to_dict()))

    assert load_asr_config(dumped) == config


# --- overrides ----------------------------------------------------------------------------------


def test_parse_overrides_both_spellings():
    overrides = parse_overrides(["train.epochs=3", "--model.hidden_size", "128"])
    assert overrides == {"train.epochs": 3, "model.hidden_size": 128}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--train.lr=0.01"], {"train.lr": 0.01}),
        (["train.amp=true"], {"train.amp": True}),
        (["data.dev_manifest=null"], {"data.dev_manifest": None}),
        (["train.out_dir=exp/run 1"], {"train.out_dir": "exp/run 1"}),
        (["train.out_dir=a=b"], {"train.out_dir": "a=b"}),  # split on the first "=" only
        (["--model.hidden-size", "64"], {"model.hidden_size": 64}),  # dashes become underscores
        (["features.mean=[1, 2]"], {"features.mean": [1, 2]}),
        ([], {}),
    ],
)
def test_parse_overrides_values_are_yaml_scalars(args, expected):
    assert parse_overrides(args) == expected


@pytest.mark.parametrize("args", [["train.epochs"], ["--train.epochs"], ["epochs", "3"]])
def test_parse_overrides_rejects_unreadable(args):
    with pytest.raises(SpeechseqError, match="section.key=value"):
        parse_overrides(args)


def test_overrides_win_over_the_file(config_file):
    overrides = parse_overrides(["train.epochs=3", "--model.hidden_size", "128"])

    config = load_asr_config(config_file, overrides)

    assert config.train.epochs == 3
    assert config.model.hidden_size == 128
    assert config.model.num_layers == 2  # the rest of the file still applies
    assert config.train.lr == pytest.approx(0.002)


def test_overrides_without_file():
    config = load_asr_config(None, {"data.train_manifest": "x.jsonl", "features.n_mels": 40})
    assert config.data.train_manifest == str(Path.cwd() / "x.jsonl")
    assert config.features.n_mels == 40


def test_paths_in_the_file_follow_the_file_and_overrides_the_working_directory(
    tmp_path, monkeypatch
):
    """A recipe's YAML works from any folder; a path typed on the command line means what it
    means in the shell."""
    (tmp_path / "recipe" / "hparams").mkdir(parents=True)
    path = tmp_path / "recipe" / "hparams" / "train.yaml"
    path.write_text(
        "data:\n  train_manifest: [../data/a.jsonl, /abs/b.jsonl]\n  tokenizer: bpe:64\n"
        "train:\n  out_dir: ../exp/run\n  init_from: default\n"
    )
    monkeypatch.chdir(tmp_path)
    config = load_asr_config("recipe/hparams/train.yaml", {"data.dev_manifest": "dev.jsonl"})
    assert config.data.train_manifest == (str(tmp_path / "recipe/data/a.jsonl"), "/abs/b.jsonl")
    assert config.train.out_dir == str(tmp_path / "recipe/exp/run")
    assert config.data.dev_manifest == str(tmp_path / "dev.jsonl")
    assert (config.data.tokenizer, config.train.init_from) == ("bpe:64", "default")
    tts = load_tts_config(None, {"train.out_dir": "x"})
    assert tts.train.out_dir == str(tmp_path / "x")


# --- spec_augment: null -------------------------------------------------------------------------


def test_spec_augment_null_turns_it_off(tmp_path):
    config = load_asr_config(_write(tmp_path, "spec_augment: null\ntrain:\n  epochs: 2\n"))

    assert config.spec_augment is None
    assert config.train.epochs == 2


def test_spec_augment_absent_keeps_defaults(tmp_path):
    config = load_asr_config(_write(tmp_path, "train:\n  epochs: 2\n"))
    assert config.spec_augment == SpecAugmentConfig()


def test_spec_augment_null_then_override_turns_it_back_on(tmp_path):
    path = _write(tmp_path, "spec_augment: null\n")

    config = load_asr_config(path, {"spec_augment.freq_masks": 1})

    assert config.spec_augment == SpecAugmentConfig(freq_masks=1)


# --- errors -------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpeechseqError, match="no such config file") as info:
        load_asr_config(path)
    assert str(path) in str(info.value)


def test_unknown_section(tmp_path):
    path = _write(tmp_path, "trian:\n  epochs: 3\n")
    with pytest.raises(SpeechseqError, match=r"unknown section.*trian") as info:
        load_asr_config(path)
    assert str(path) in str(info.value)


def test_unknown_key(tmp_path):
    path = _write(tmp_path, "train:\n  epoch: 3\n")
    with pytest.raises(SpeechseqError, match=r"\[train\]: unknown key.*epoch") as info:
        load_asr_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "epochs" in message  # the known keys are listed


def test_unknown_override_section():
    with pytest.raises(SpeechseqError, match="unknown section 'trian'"):
        load_asr_config(None, parse_overrides(["trian.epochs=3"]))


def test_unknown_override_key(config_file):
    with pytest.raises(SpeechseqError, match=r"\[model\]: unknown key.*hidden"):
        load_asr_config(config_file, parse_overrides(["--model.hidden", "128"]))


def test_override_without_section():
    with pytest.raises(SpeechseqError, match="section.key=value"):
        load_asr_config(None, {"epochs": 3})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("train: {epochs: 3\n", "not valid YAML .*at line 2, column 1"),
        ("- a\n- b\n", "expected sections"),
        ("just a string\n", "expected sections"),
        ("features:\n  normalize: batch\n", "normalize must be"),
        ("model:\n  subsampling: 3\n", "subsampling must be 2, 4 or 6"),
    ],
)
def test_bad_file_content(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(SpeechseqError, match=words) as info:
        load_asr_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)  # one line


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epochs=three"], "epochs must be int"),
        (["train.out_dir=123"], "out_dir must be str"),
        (["train.lr=fast"], "lr must be float"),
        (["train.amp=3"], "amp must be bool"),
    ],
)
def test_values_of_the_wrong_type_are_refused(overrides, message):
    with pytest.raises(SpeechseqError, match=message):
        load_asr_config(None, parse_overrides(overrides))


def test_ints_are_accepted_where_floats_are_expected():
    assert load_asr_config(None, {"train.lr": 1}).train.lr == 1.0


def test_unreadable_override_value_is_a_speechseq_error():
    with pytest.raises(SpeechseqError, match="cannot read value"):
        parse_overrides(["train.out_dir=[1"])


@pytest.mark.parametrize("body", ["train: 5\n", "train: [1, 2]\n"])
def test_section_that_is_not_a_mapping_is_refused(tmp_path, body):
    path = tmp_path / "c.yaml"
    path.write_text(body)
    with pytest.raises(SpeechseqError, match="key: value"):
        load_asr_config(path)
