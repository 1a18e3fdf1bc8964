"""Tests for speechseq.audio: reading, mixing, resampling, saving and rejecting bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechseq.audio import audio_duration, load_audio, resample, save_audio, to_mono
from speechseq.errors import SpeechseqError

PCM16_STEP = 1 / 32768  # one 16-bit quantisation step: the most a PCM_16 round trip may move


def _sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(waveform: torch.Tensor, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform.numpy()))
    return float(np.fft.rfftfreq(waveform.numel(), 1 / rate)[spectrum.argmax()])


# --- reading good files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "subtype", "tolerance"),
    [
        (".wav", "FLOAT", 0.0),  # float WAV stores the samples exactly
        (".wav", "PCM_16", PCM16_STEP),
        (".flac", "PCM_16", PCM16_STEP),
        (".ogg", "VORBIS", 0.05),  # lossy codec: close, not equal
    ],
)
def test_load_audio_reads_mono_file(tmp_path, suffix, subtype, tolerance):
    x = _sine(440, 16000, 0.5)
    path = tmp_path / f"tone{suffix}"
    sf.write(path, x, 16000, subtype=subtype)

    y = load_audio(path)

    assert y.shape == (8000,)
    assert y.dtype == torch.float32
    assert y.is_contiguous()
    assert np.abs(y.numpy() - x).max() <= tolerance + 1e-7


@pytest.mark.parametrize(("suffix", "subtype"), [(".wav", "FLOAT"), (".flac", "PCM_24")])
def test_load_audio_mixes_stereo_to_mono_by_averaging(tmp_path, suffix, subtype):
    left = _sine(440, 16000, 0.25, amplitude=0.6)
    right = _sine(1000, 16000, 0.25, amplitude=0.2)
    path = tmp_path / f"stereo{suffix}"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype=subtype)

    y = load_audio(path)

    assert y.shape == (4000,)
    np.testing.assert_allclose(y.numpy(), (left + right) / 2, atol=1e-5)


def test_load_audio_mixes_stereo_ogg_to_mono(tmp_path):
    x = _sine(440, 16000, 0.5)
    path = tmp_path / "stereo.ogg"
    sf.write(path, np.stack([x, 0.25 * x], axis=1), 16000)

    y = load_audio(path)

    assert y.shape == (8000,)
    assert np.abs(y.numpy() - 0.625 * x).max() < 0.05


@pytest.mark.parametrize("orig_rate", [8000, 22050, 44100])
def test_load_audio_resamples_to_16k_keeping_duration_and_pitch(tmp_path, orig_rate):
    path = tmp_path / f"tone_{orig_rate}.wav"
    sf.write(path, _sine(440, orig_rate, 1.0), orig_rate, subtype="FLOAT")

    y = load_audio(path, sample_rate=16000)

    assert y.shape == (16000,)  # 1 s at 16 kHz
    assert _peak_hz(y, 16000) == pytest.approx(440, abs=1.0)


def test_load_audio_resamples_half_second_from_44k1(tmp_path):
    path = tmp_path / "half.flac"
    sf.write(path, _sine(300, 44100, 0.5), 44100)

    assert load_audio(path, sample_rate=16000).shape == (8000,)


def test_load_audio_without_rate_keeps_file_rate(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, _sine(440, 8000, 0.5), 8000)

    assert load_audio(path).shape == (4000,)
    assert load_audio(str(path), sample_rate=8000).shape == (4000,)


def test_to_mono_and_resample_helpers():
    stereo = torch.tensor([[1.0, 3.0], [-1.0, 0.0]])  # (T=2, C=2)
    assert torch.equal(to_mono(stereo), torch.tensor([2.0, -0.5]))
    mono = torch.tensor([0.1, 0.2])
    assert to_mono(mono) is mono
    assert resample(mono, 16000, 16000) is mono
    assert resample(torch.zeros(2, 8000), 8000, 16000).shape == (2, 16000)


def test_audio_duration_reads_header(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, _sine(440, 22050, 1.5), 22050)

    assert audio_duration(path) == pytest.approx(1.5)


def test_audio_duration_of_missing_or_bad_file_raises(tmp_path):
    with pytest.raises(SpeechseqError, match="no such file"):
        audio_duration(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n")
    with pytest.raises(SpeechseqError, match="not readable"):
        audio_duration(text)


# --- saving -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_save_audio_round_trip(tmp_path, suffix):
    x = torch.from_numpy(_sine(440, 16000, 0.5, amplitude=0.9))
    path = tmp_path / "nested" / "dir" / f"out{suffix}"  # parent folders are created

    save_audio(path, x, 16000)

    assert sf.info(path).samplerate == 16000
    assert sf.info(path).subtype == "PCM_16"
    y = load_audio(path)
    assert y.shape == x.shape
    assert (y - x).abs().max() <= PCM16_STEP


def test_save_audio_clamps_and_accepts_stereo(tmp_path):
    x = torch.tensor([[2.0, -2.0], [0.5, 0.25]] * 100)  # (T=200, C=2), out of range in row 0
    path = tmp_path / "stereo.wav"

    save_audio(path, x, 8000)

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 8000
    assert data.shape == (200, 2)
    assert data.max() <= 1.0 and data.min() >= -1.0
    assert data[0, 0] == pytest.approx(1.0, abs=PCM16_STEP)
    assert data[0, 1] == pytest.approx(-1.0, abs=PCM16_STEP)


def test_save_audio_without_suffix_writes_wav(tmp_path):
    path = tmp_path / "nosuffix"

    save_audio(path, torch.full((160,), 0.5), 16000)

    assert sf.info(path).format == "WAV"


def test_save_audio_accepts_tensor_that_needs_grad(tmp_path):
    x = torch.full((160,), 0.25, requires_grad=True)
    save_audio(tmp_path / "g.wav", x, 16000)
    assert load_audio(tmp_path / "g.wav").shape == (160,)


# --- bad input: one clear SpeechseqError naming the file ----------------------------------------


def _assert_error(path: Path, *words: str, **kwargs) -> SpeechseqError:
    with pytest.raises(SpeechseqError) as info:
        load_audio(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert any(word in message for word in words), message
    return info.value


def test_missing_file(tmp_path):
    _assert_error(tmp_path / "missing.wav", "no such file")


def test_folder(tmp_path):
    folder = tmp_path / "looks_like.wav"
    folder.mkdir()
    _assert_error(folder, "folder")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    _assert_error(path, "empty")


def test_text_file_renamed_to_wav(tmp_path):
    path = tmp_path / "transcript.wav"
    path.write_text("hello world, this is not audio\n" * 20)
    _assert_error(path, "not readable")


def _write_truncated_wav(tmp_path: Path, keep_bytes: int) -> tuple[Path, int]:
    whole = tmp_path / "whole.wav"
    sf.write(whole, _sine(440, 16000, 1.0), 16000, subtype="PCM_16")
    data = whole.read_bytes()
    assert data[36:40] == b"data"  # the canonical 44-byte header soundfile writes
    claimed = struct.unpack("<I", data[40:44])[0]
    path = tmp_path / f"cut_{keep_bytes}.wav"
    path.write_bytes(data[:keep_bytes])
    return path, claimed


def test_truncated_wav_with_header_but_no_samples(tmp_path):
    # The header still claims 32000 bytes of samples; libsndfile trusts the file size instead and
    # reads zero frames without complaint, so load_audio must catch the empty result itself.
    path, claimed = _write_truncated_wav(tmp_path, keep_bytes=44)
    assert claimed == 32000
    assert sf.read(path)[0].shape[0] == 0
    _assert_error(path, "no audio samples", "truncated")


@pytest.mark.parametrize("keep_bytes", [12, 20, 30])
def test_truncated_wav_cut_inside_header(tmp_path, keep_bytes):
    # libsndfile raises its own error here; it must come out as a SpeechseqError.
    path, _ = _write_truncated_wav(tmp_path, keep_bytes=keep_bytes)
    with pytest.raises(sf.LibsndfileError):
        sf.read(path)
    _assert_error(path, "not readable")


def test_silent_file(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    _assert_error(path, "silent")


def test_silent_file_is_allowed_when_not_checked(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000)

    y = load_audio(path, check_silence=False)

    assert y.shape == (1600,)
    assert not y.any()


def test_quiet_but_not_silent_file_loads(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, _sine(440, 16000, 0.1, amplitude=1e-3), 16000, subtype="FLOAT")
    assert load_audio(path).abs().max() > 5e-4


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_file_with_nan_or_inf_samples(tmp_path, bad):
    x = _sine(440, 16000, 0.1)
    x[100] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    _assert_error(path, "NaN")


def test_nan_file_is_rejected_even_without_silence_check(tmp_path):
    x = np.full(1600, np.nan, dtype=np.float32)
    path = tmp_path / "all_nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    _assert_error(path, "NaN", check_silence=False)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_save_audio_writes_the_suffix_format(tmp_path, suffix):
    t = torch.arange(16000) / 16000
    wave = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    path = tmp_path / f"tone{suffix}"
    save_audio(path, wave, 16000)
    back = load_audio(path)
    assert abs(back.numel() - 16000) < 200
