"""Shared fixtures: a few real utterances spoken by espeak-ng (installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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
