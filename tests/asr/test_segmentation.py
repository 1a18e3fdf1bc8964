"""Tests for speechseq.asr.segmentation (cutting at pauses) and speechseq.audio.stream_audio (block
reading), which feeds it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from speechseq.asr.segmentation import find_pause, frame_rms_db, is_silence, split_at_pauses
from speechseq.audio import load_audio, stream_audio
from speechseq.errors import SpeechseqError

RATE = 16000


def _bursts(layout: list[tuple[str, float]], seed: int = 0) -> torch.Tensor:
    """Noise "speech" and quiet "pauses": [("s", 2.0), ("p", 0.5), …] in seconds."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for kind, seconds in layout:
        level = 0.3 if kind == "s" else 1e-4
        parts.append(level * torch.randn(int(seconds * RATE), generator=g))
    return torch.cat(parts)


@pytest.mark.parametrize(("rate", "channels"), [(22050, 1), (48000, 2), (8000, 1), (16000, 1)])
def test_stream_audio_blocks_join_to_load_audio(tmp_path, rate, channels):
    rng = np.random.default_rng(0)
    path = tmp_path / "a.wav"
    sf.write(path, 0.1 * rng.standard_normal((int(rate * 3.3), channels)), rate, subtype="FLOAT")
    whole = load_audio(path, RATE)
    blocks = list(stream_audio(path, RATE, block_seconds=0.5))
    assert len(blocks) == 7 and all(len(b) <= 0.51 * RATE for b in blocks)
    torch.testing.assert_close(torch.cat(blocks), whole, atol=1e-6, rtol=0)


def test_stream_audio_raises_for_bad_files(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000), RATE)
    with pytest.raises(SpeechseqError, match="silent"):
        list(stream_audio(silent, RATE))
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(SpeechseqError, match="not readable as audio"):
        list(stream_audio(tmp_path / "text.wav", RATE))
    with pytest.raises(SpeechseqError, match="no such file"):
        list(stream_audio(tmp_path / "missing.wav", RATE))


def test_frame_levels_and_silence():
    x = torch.cat([torch.zeros(160), torch.full((160,), 0.5)])
    levels = frame_rms_db(x, 160)
    assert levels[0] == pytest.approx(-100.0) and levels[1] == pytest.approx(-6.02, abs=0.01)
    assert is_silence(1e-4 * torch.ones(RATE), RATE)
    assert not is_silence(_bursts([("p", 1.0), ("s", 0.05)]), RATE)


def test_find_pause_picks_the_middle_of_the_longest_pause():
    x = _bursts([("s", 2), ("p", 0.3), ("s", 2), ("p", 0.8), ("s", 2), ("p", 0.4), ("s", 1)])
    cut = find_pause(x, RATE, int(1.0 * RATE), int(7.0 * RATE))
    assert 4.3 * RATE < cut < 5.1 * RATE  # inside the 0.8 s pause
    assert abs(cut - 4.7 * RATE) < 0.1 * RATE  # near its middle


def test_split_at_pauses_covers_the_stream_in_bounded_pieces():
    layout = [("s", 3.0), ("p", 0.5)] * 12  # 42 s, a pause every 3.5 s
    x = _bursts(layout)
    blocks = torch.split(x, RATE)  # 1 s blocks, as stream_audio would give
    pieces = list(split_at_pauses(blocks, RATE, max_seconds=10.0))
    starts = [start for start, _ in pieces]
    assert starts[0] == 0
    assert all(s + len(p) == n for (s, p), n in zip(pieces, [*starts[1:], len(x)], strict=False))
    assert torch.equal(torch.cat([p for _, p in pieces]), x)
    assert all(len(p) <= 10.0 * RATE for _, p in pieces)
    for cut in starts[1:]:
        assert cut % int(3.5 * RATE) > 3.0 * RATE  # within a pause
    short = list(split_at_pauses([x[: 5 * RATE]], RATE, max_seconds=10.0))
    assert len(short) == 1 and short[0][0] == 0


def test_long_recording_is_cut_in_its_pauses(long_speech):
    path, spoken = long_speech
    pieces = list(split_at_pauses(stream_audio(path, RATE), RATE, max_seconds=30.0))
    assert len(pieces) >= 5
    assert all(len(p) <= 30.0 * RATE for _, p in pieces)
    assert sum(len(p) for _, p in pieces) == len(load_audio(path, RATE))
    for start, _ in pieces[1:]:
        cut = start / RATE
        assert not any(begin < cut < end for _, begin, end in spoken), cut
