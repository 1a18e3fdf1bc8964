"""Standard input and output: audio in with ``transcribe -``, any transcript format out without
``--output-dir``, WAV out with ``synthesize -o -`` and lines in with ``--text-file -``."""

import io
import json
from pathlib import Path

import pysrt
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechseq.cli import app

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "data" / "samples" / "flite-rms.wav"
GREEDY = ["--decoder", "greedy", "--threads", "2"]

pytestmark = pytest.mark.pretrained


def _greedy_text(name: str) -> str:
    golden = (ROOT / "tests" / "golden" / "transcribe-greedy.txt").read_text().splitlines()
    (text,) = [line.split("\t")[1] for line in golden if line.split("\t")[0].endswith(name)]
    return text


def test_transcribe_reads_audio_from_standard_input_and_prints_srt():
    # the file alone, as from stdin: the int8 model's activation scales are shared within a
    # batch, so the file batched with the other samples may differ by a near-tie
    alone = CliRunner().invoke(app, ["transcribe", str(SAMPLE), *GREEDY])
    assert alone.exit_code == 0, alone.output
    text = alone.stdout.rstrip("\n").split("\t")[1]
    assert text and text[:6] == _greedy_text("flite-rms.wav")[:6]
    audio = SAMPLE.read_bytes()
    result = CliRunner().invoke(app, ["transcribe", "-", "-f", "srt", *GREEDY], input=audio)
    assert result.exit_code == 0, result.output
    (cue,) = pysrt.from_string(result.stdout)
    assert cue.text == text and cue.start < cue.end
    plain = CliRunner().invoke(app, ["transcribe", "-", *GREEDY], input=audio)
    assert plain.stdout == f"-\t{text}\n"


def test_standard_input_that_is_not_audio_is_one_line():
    result = CliRunner().invoke(app, ["transcribe", "-", *GREEDY], input=b"not audio\n")
    assert result.exit_code == 1 and "error: -: not readable as audio" in result.stderr
    empty = CliRunner().invoke(app, ["transcribe", "-", *GREEDY], input=b"")
    assert empty.exit_code == 2 and "no audio came in" in empty.stderr


def test_a_format_without_output_dir_is_printed_and_several_are_refused():
    samples = str(ROOT / "data" / "samples")
    result = CliRunner().invoke(app, ["transcribe", samples, "-f", "json", *GREEDY])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # JSON lines, one per file
    assert len(rows) == 5 and all(row["segments"] for row in rows)
    both = CliRunner().invoke(app, ["transcribe", samples, "-f", "json", "-f", "srt"])
    assert both.exit_code == 2 and "--output-dir" in both.stderr


def test_synthesize_writes_wav_to_standard_output_and_reads_lines_from_input(tmp_path):
    result = CliRunner().invoke(app, ["synthesize", "Hello there.", "-o", "-"])
    assert result.exit_code == 0, result.output
    samples, rate = sf.read(io.BytesIO(result.stdout_bytes))
    assert rate == 16000 and len(samples) > 0.3 * rate and "wrote -" in result.stderr
    out = tmp_path / "lines"
    lines = "Hello there.\n\nHow are you?\n"
    result = CliRunner().invoke(
        app, ["synthesize", "--text-file", "-", "--output-dir", str(out)], input=lines
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["0001.wav", "0003.wav"]
