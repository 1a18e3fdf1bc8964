"""Shared fixtures: a few real utterances spoken by espeak-ng (installed by .ci/run), a long
recording made of them, and a tiny recognizer that has memorised them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechseq.asr.config import load_asr_config
from speechseq.asr.train import train_asr
from speechseq.data import manifest_from_folder, write_manifest

# Short, distinct sentences over a small vocabulary: enough for a tiny model to memorise fast.
SENTENCES = [
    ("gmw/en+m1", "yes no stop"),
    ("gmw/en-US+f2", "red green blue"),
    ("gmw/en+m3", "left right stop"),
    ("gmw/en-US+f1", "one two three"),
]


def speak(text: str, voice: str, out: Path, speed: int = 160) -> Path:
    """Write ``text`` spoken by espeak-ng to ``out`` (22.05 kHz WAV)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("tests need espeak-ng: apt-get install -y espeak-ng (see .ci/run)")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text],
        check=True,
        capture_output=True,
    )
    return out


# Session fixtures that train a model for half a minute or more: a test that uses one is slow
# (the fast lane, `pytest -m "not slow and not distributed"`, leaves it out).
_TRAINING_FIXTURES = {"tts_model_path", "vocoder_path"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    """A folder of wav files with same-stem .txt transcripts."""
    folder = tmp_path_factory.mktemp("speech")
    for i, (voice, text) in enumerate(SENTENCES):
        speak(text, voice, folder / f"utt{i}.wav")
        (folder / f"utt{i}.txt").write_text(text + "\n")
    return folder


@pytest.fixture(scope="session")
def speech_manifest(speech_dir, tmp_path_factory) -> Path:
    """A JSONL manifest over :func:`speech_dir`."""
    path = tmp_path_factory.mktemp("manifest") / "train.jsonl"
    return write_manifest(manifest_from_folder(speech_dir), path)


@pytest.fixture(scope="session")
def model_path(speech_manifest, tmp_path_factory) -> Path:
    """A recognizer trained through the library until it knows the fixture utterances (~30 s)."""
    out_dir = tmp_path_factory.mktemp("model")
    config = load_asr_config(
        None,
        {
            "data.train_manifest": str(speech_manifest),
            "data.dev_manifest": str(speech_manifest),
            "data.max_batch_seconds": 30,
            "model.hidden_size": 96,
            "model.num_layers": 2,
            "model.conv_channels": 16,
            "model.subsampling": 2,
            "model.dropout": 0.0,
            "spec_augment.freq_masks": 0,
            "spec_augment.time_masks": 0,
            "train.out_dir": str(out_dir),
            "train.epochs": 300,
            "train.lr": 3e-3,
            "train.warmup_steps": 10,
            "train.checkpoint_every": 0,
            "train.final_lr_ratio": 0.3,
        },
    )
    return train_asr(config, progress=False)


@pytest.fixture(scope="session")
def long_speech(speech_dir, tmp_path_factory) -> tuple[Path, list[tuple[int, float, float]]]:
    """A 2.5-minute recording: the fixture utterances in random order, 0.6–1.6 s pauses between
    them, faint noise (-70 dBFS) throughout.

    Returns:
        the file, and for each utterance spoken (SENTENCES index, start s, end s) of its audible
        part (espeak-ng's own leading and trailing silence excluded).
    """
    clips = [sf.read(speech_dir / f"utt{i}.wav", dtype="float32") for i in range(len(SENTENCES))]
    rate = clips[0][1]
    rng = np.random.default_rng(0)
    parts, spoken, position = [], [], 0
    while position < 150 * rate:
        i = int(rng.integers(len(clips)))
        clip = clips[i][0]
        loud = np.flatnonzero(np.abs(clip) > 1e-3)
        spoken.append((i, (position + loud[0]) / rate, (position + loud[-1] + 1) / rate))
        pause = np.zeros(int(rate * rng.uniform(0.6, 1.6)), dtype="float32")
        parts += [clip, pause]
        position += len(clip) + len(pause)
    audio = np.concatenate(parts)
    audio += rng.normal(0.0, 10 ** (-70 / 20), len(audio)).astype("float32")
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, audio, rate)
    return path, spoken


# --- Text-to-speech: one voice, three short sentences, and a tiny synthesizer that knows them --

TTS_VOICE = "gmw/en+m1"
TTS_SENTENCES = ["yes no stop", "red green blue", "left right stop"]
# A synthesizer small enough to memorise TTS_SENTENCES in ~15 s on one core.
TINY_TTS_MODEL = {
    "reduction_factor": 2,
    "embedding_dim": 32,
    "encoder_channels": 64,
    "encoder_conv_layers": 2,
    "prenet_dim": 32,
    "attention_rnn_dim": 64,
    "attention_dim": 32,
    "location_filters": 8,
    "location_kernel_size": 15,
    "decoder_rnn_dim": 96,
    "postnet_channels": 32,
    "postnet_layers": 3,
    "dropout": 0.0,
    "rnn_dropout": 0.0,
}


@pytest.fixture(scope="session")
def tts_manifest(tmp_path_factory) -> Path:
    """A single-voice manifest of TTS_SENTENCES (espeak-ng)."""
    folder = tmp_path_factory.mktemp("tts_speech")
    for i, text in enumerate(TTS_SENTENCES):
        speak(text, TTS_VOICE, folder / f"tts{i}.wav")
        (folder / f"tts{i}.txt").write_text(text + "\n")
    return write_manifest(manifest_from_folder(folder), folder / "train.jsonl")


@pytest.fixture(scope="session")
def tts_train_set(tts_manifest):
    """The TTS_SENTENCES as a TtsDataset with features normalised by their own statistics."""
    from dataclasses import replace

    from speechseq.data import TtsDataset, read_manifest
    from speechseq.features import FeatureExtractor
    from speechseq.text import CharTokenizer
    from speechseq.tts.config import tts_feature_config
    from speechseq.tts.train import tts_feature_stats

    utts = read_manifest(tts_manifest)
    features = tts_feature_config(16000)
    raw = TtsDataset(utts, FeatureExtractor(replace(features, normalize="none")), CharTokenizer())
    features = features.with_stats(*tts_feature_stats(raw))
    return TtsDataset(utts, FeatureExtractor(features), CharTokenizer())


@pytest.fixture(scope="session")
def tts_model_path(tts_manifest, tmp_path_factory) -> Path:
    """A synthesizer trained through the library until it says TTS_SENTENCES (~15 s)."""
    from speechseq.tts.config import load_tts_config
    from speechseq.tts.train import train_tts

    out_dir = tmp_path_factory.mktemp("tts_model")
    overrides = {f"model.{k}": v for k, v in TINY_TTS_MODEL.items()}
    overrides |= {
        "data.train_manifest": str(tts_manifest),
        "data.dev_manifest": str(tts_manifest),
        "data.max_batch_seconds": 10,
        "validation.sentences": 0,
        "validation.plot": False,
        "train.out_dir": str(out_dir),
        "train.epochs": 1000,
        "train.max_steps": 300,
        "train.lr": 3e-3,
        "train.warmup_steps": 10,
        "train.validate_every": 1000,
        "train.checkpoint_every": 0,
    }
    return train_tts(load_tts_config(None, overrides), progress=False)


@pytest.fixture
def uneven_epochs(monkeypatch):
    """Every epoch after the first has one batch fewer than the first (the sampler's duration
    jitter can do that), and the test fails instead of hanging if training then never ends."""
    import signal

    from speechseq.data.dataset import DurationBatchSampler

    batches = DurationBatchSampler.batches

    def fewer(self):
        every = batches(self)
        return every[:-1] if self.shuffle and self.epoch > 0 else every

    def hung(signum, frame):
        raise TimeoutError("training did not end: an epoch never finished")

    monkeypatch.setattr(DurationBatchSampler, "batches", fewer)
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# A neural vocoder small enough to learn TTS_SENTENCES' recordings in ~20 s on one core.
TINY_VOCODER = {
    "data.segment_frames": 32,
    "data.batch_size": 8,
    "model.dim": 64,
    "model.intermediate_dim": 128,
    "model.layers": 3,
    "train.max_steps": 400,
    "train.lr": 3e-3,
    "train.warmup_steps": 20,
    "train.log_every": 50,
    "train.checkpoint_every": 1000,
    "validation.every_steps": 100,
    "validation.samples": 1,
}


@pytest.fixture(scope="session")
def vocoder_path(tts_manifest, tmp_path_factory) -> Path:
    """A tiny neural vocoder trained through the library on the TTS_SENTENCES recordings."""
    from speechseq.tts.vocoder.train import load_vocoder_config, train_vocoder

    out_dir = tmp_path_factory.mktemp("vocoder")
    overrides = TINY_VOCODER | {
        "data.train_manifest": str(tts_manifest),
        "data.dev_manifest": str(tts_manifest),
        "train.out_dir": str(out_dir),
    }
    return train_vocoder(load_vocoder_config(None, overrides), progress=False)
