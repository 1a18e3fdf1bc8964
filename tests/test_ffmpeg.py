"""Tests for speechseq.ffmpeg: what libsndfile cannot read (m4a, mp4, webm) is read through
FFmpeg (PyAV's libraries), as files, in folder jobs and from standard input; without a decoder
the error names the file and what to install."""

import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pysrt
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechseq.audio import audio_duration, load_audio
from speechseq.cli import app
from speechseq.errors import SpeechseqError

SAMPLE = Path(__file__).parent.parent / "data" / "samples" / "flite-rms.wav"
# container, codec, rate, layout: what phones, meeting tools and browsers write
ENCODED = {
    "m4a": ("mp4", "aac", 44100, "stereo"),
    "mp4": ("mp4", "aac", 48000, "mono"),
    "webm": ("webm", "libopus", 48000, "mono"),
}


def _encode(path: Path, container: str, codec: str, rate: int, layout: str) -> Path:
    """The sample encoded with FFmpeg's own encoders (through PyAV)."""
    samples, sample_rate = sf.read(SAMPLE, dtype="float32")
    out = av.open(str(path), "w", format=container)
    stream: Any = out.add_stream(codec, rate=rate, layout=layout)  # an audio stream
    mono: Any = np.asarray(samples[None, :], dtype=np.float32)  # (1, T)
    frame = av.AudioFrame.from_ndarray(mono, format="flt", layout="mono")
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(
        format=stream.codec_context.codec.audio_formats[0].name,
        layout=layout,
        rate=rate,
        frame_size=stream.codec_context.frame_size or None,
    )
    for piece in [*resampler.resample(frame), *resampler.resample(None)]:
        for packet in stream.encode(piece):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    return path


@pytest.fixture(scope="module")
def formats(tmp_path_factory) -> Path:
    """The sample as wav, flac, mp3, ogg, m4a, mp4 and webm."""
    folder = tmp_path_factory.mktemp("formats")
    samples, rate = sf.read(SAMPLE, dtype="float32")
    for suffix in ("wav", "flac", "mp3", "ogg"):
        sf.write(folder / f"sample.{suffix}", samples, rate)
    for suffix, how in ENCODED.items():
        _encode(folder / f"sample.{suffix}", *how)
    return folder


def test_ffmpeg_formats_load_like_the_wav(formats):
    wav = load_audio(formats / "sample.wav", 16000)
    for suffix in ENCODED:
        path = formats / f"sample.{suffix}"
        with pytest.raises(sf.LibsndfileError):
            sf.info(str(path))  # libsndfile cannot read it
        decoded = load_audio(path, 16000)
        # codecs pad the start and end by up to a few tens of milliseconds
        assert abs(len(decoded) - len(wav)) < 0.08 * 16000, suffix
        assert audio_duration(path) == pytest.approx(len(wav) / 16000, abs=0.1)
        spectrum = np.abs(np.fft.rfft(decoded.numpy(), 16000))
        reference = np.abs(np.fft.rfft(wav.numpy(), 16000))
        assert np.corrcoef(spectrum, reference)[0, 1] > 0.9, suffix  # the same speech
    piece = load_audio(formats / "sample.m4a", 16000, offset=0.5, duration=0.5)
    assert len(piece) == 8000


@pytest.mark.pretrained
def test_a_folder_of_every_format_transcribes_and_m4a_pipes_to_srt(formats):
    result = CliRunner().invoke(app, ["transcribe", str(formats), "--decoder", "greedy"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("\t") for line in result.stdout.splitlines())
    assert sorted(Path(p).suffix for p in lines) == sorted(
        [".wav", ".flac", ".mp3", ".ogg", ".m4a", ".mp4", ".webm"]
    )
    assert all(text.split() for text in lines.values()), lines
    audio = (formats / "sample.m4a").read_bytes()
    piped = CliRunner().invoke(app, ["transcribe", "-", "-f", "srt"], input=audio)
    assert piped.exit_code == 0, piped.output
    (cue,) = pysrt.from_string(piped.stdout)
    assert cue.text.split() and cue.start < cue.end


def test_without_a_decoder_the_error_says_what_to_install(formats, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed
    monkeypatch.setattr("shutil.which", lambda name: None)  # nor the ffmpeg program
    path = formats / "sample.m4a"
    with pytest.raises(SpeechseqError, match="pip install av") as info:
        load_audio(path)
    assert str(path) in str(info.value)
    result = CliRunner().invoke(app, ["transcribe", str(path), "--decoder", "greedy"])
    assert result.exit_code == 1 and "pip install av" in result.stderr


FAKE_PROBE = """#!{python}
import json, sys, av
container = av.open(sys.argv[-1])
stream = container.streams.audio[0]
print(json.dumps({{"streams": [{{"sample_rate": str(stream.rate), "channels": stream.channels}}],
                  "format": {{"duration": str(container.duration / 1e6)}}}}))
"""
FAKE_FFMPEG = """#!{python}
import sys, av, numpy as np
container = av.open(sys.argv[sys.argv.index("-i") + 1])
stream = container.streams.audio[0]
resampler = av.AudioResampler(format="flt", layout=stream.layout, rate=stream.rate)
for frame in container.decode(stream):
    for out in resampler.resample(frame):
        sys.stdout.buffer.write(np.ascontiguousarray(out.to_ndarray()).tobytes())
"""


def test_without_pyav_the_ffmpeg_program_reads_it(formats, tmp_path, monkeypatch):
    """The program path: ffprobe for the rate and channels, ffmpeg's f32le on a pipe. Here the
    two programs are stand-ins that speak their command lines through PyAV, as this machine has
    no FFmpeg binaries; speechseq's process itself cannot import PyAV."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("ffprobe", FAKE_PROBE), ("ffmpeg", FAKE_FFMPEG)):
        (bin_dir / name).write_text(body.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    with_pyav = load_audio(formats / "sample.webm", 16000)
    monkeypatch.setitem(sys.modules, "av", None)
    through_program = load_audio(formats / "sample.webm", 16000)
    assert len(through_program) == len(with_pyav)
    assert float((through_program - with_pyav).abs().max()) < 1e-4
    assert audio_duration(formats / "sample.webm") == pytest.approx(len(with_pyav) / 16000, abs=0.1)
