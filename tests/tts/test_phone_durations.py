"""Tests for the TTS recipe's durations from its teacher's phone timings
(recipes/synthetic/tts/local/phone_durations.py)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from speechseq.data import TtsDataset, Utterance
from speechseq.features import FeatureExtractor
from speechseq.text import CharTokenizer
from speechseq.tts.config import tts_feature_config

SCRIPT = Path(__file__).parents[2] / "recipes/synthetic/tts/local/phone_durations.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("phone_durations", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_letters_take_the_phones_they_can_speak(script):
    # "spite": s p ay t, the final e silent, though CTC spread the frames evenly
    durations, cost = script.align_letters(
        "spite", ["s", "p", "ay", "t"], [0, 4, 8, 22, 25], [5, 5, 5, 5, 5]
    )
    assert durations == [4, 4, 14, 3, 0] and cost < 0.5
    # a space takes nothing between words, a pause where there is one
    durations, _ = script.align_letters(
        "a cat", ["ax", "k", "ae", "t"], [0, 3, 7, 15, 20], [3, 4, 4, 5, 4]
    )
    assert durations == [3, 0, 4, 8, 5]
    durations, _ = script.align_letters(
        "a cat", ["ax", "pau", "k", "ae", "t"], [0, 3, 9, 12, 18, 22], [3, 6, 3, 6, 4]
    )
    assert durations == [3, 6, 3, 6, 4]
    # x speaks two phones
    durations, _ = script.align_letters("ox", ["aa", "k", "s"], [0, 8, 11, 16], [6, 10])
    assert durations == [8, 8]


def test_letters_that_cannot_be_read_so_cost_more(script):
    _, fits = script.align_letters("mist", ["m", "ih", "s", "t"], [0, 3, 8, 12, 15], [4] * 3 + [3])
    _, misfits = script.align_letters(
        "mist", ["b", "aa", "n", "k"], [0, 3, 8, 12, 15], [4] * 3 + [3]
    )
    assert fits < 0.2 < script.MISMATCH / 2 < misfits


def test_refine_moves_boundaries_onto_flites_phones(script, tmp_path):
    text = "but in spite of it all"
    wav = tmp_path / "a.wav"
    flite = ["flite", "-voice", "slt", "--setf", "duration_stretch=1.000", "-t", text, "-o"]
    subprocess.run([*flite, str(wav)], check=True)
    dataset = TtsDataset(
        [Utterance(str(wav), text, sf.info(wav).duration)],
        FeatureExtractor(tts_feature_config(16000, normalize="none")),
        CharTokenizer(),
    )
    item = dataset[0]
    assert item is not None
    frames = item["mel"].shape[0]
    even = [frames // len(text)] * len(text)
    even[-1] += frames - sum(even)
    record = {"audio": "a.wav", "text": text, "frames": frames, "durations": even}
    refined, cost, problem = script.refine((record, wav, "slt", 1.0))
    assert problem == "" and refined is not None and cost < 0.3
    durations = refined["durations"]
    assert sum(durations) == frames and min(durations) >= 1
    assert all(d == 1 for ch, d in zip(text, durations, strict=True) if ch == " ")
    # the i of "spite" is its long vowel: flite's ay, whose frames the alignment gives it
    timed = script.phone_ends(text, "slt")
    ay = [name for name, _ in timed].index("ay")
    seconds = timed[ay][1] - timed[ay - 1][1]
    assert abs(durations[text.index("spite") + 2] - seconds / 0.0125) <= 2
