"""``speechseq synthesize`` and ``speechseq train tts`` through the command line."""

import json
from pathlib import Path

import pytest
import soundfile as sf
import yaml
from conftest import TINY_TTS_MODEL, TTS_SENTENCES
from typer.testing import CliRunner

from speechseq.cli import app
from speechseq.data import read_manifest

runner = CliRunner()


def _error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_synthesize_writes_a_wav_of_plausible_length(tts_model_path, tts_manifest, tmp_path):
    out = tmp_path / "out.wav"
    text = TTS_SENTENCES[1].capitalize() + "."
    result = runner.invoke(
        app, ["synthesize", text, "-o", str(out), "--model", str(tts_model_path)]
    )
    assert result.exit_code == 0, result.stderr
    info = sf.info(out)
    assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
    spoken = read_manifest(tts_manifest)[1].duration  # espeak-ng's, with its silences
    assert 0.5 * spoken < info.duration < 1.3 * spoken
    assert "wrote" in result.stderr and not list(tmp_path.glob(".*"))  # no temporary left


def test_synthesize_never_overwrites_without_the_flag(tts_model_path, tmp_path):
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    args = ["synthesize", "yes no stop", "-o", str(out), "-m", str(tts_model_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--overwrite" in _error_line(result)
    assert out.read_bytes() == b"keep me"
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.stderr
    assert sf.info(out).duration > 0.3


def test_synthesize_text_file_writes_a_file_per_line(tts_model_path, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text(f"{TTS_SENTENCES[0]}\n\n{TTS_SENTENCES[2]}\n")
    out_dir = tmp_path / "out"
    args = ["synthesize", "--text-file", str(lines), "--output-dir", str(out_dir)]
    args += ["-m", str(tts_model_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["0001.wav", "0003.wav"]  # line numbers
    first = (out_dir / "0001.wav").read_bytes()
    (out_dir / "0003.wav").write_bytes(b"old")
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "2 skipped" in again.stderr
    assert (out_dir / "0003.wav").read_bytes() == b"old"
    redo = runner.invoke(app, [*args, "--overwrite"])
    assert redo.exit_code == 0
    assert (out_dir / "0001.wav").read_bytes() == first  # deterministic
    assert sf.info(out_dir / "0003.wav").duration > 0.3


def test_synthesize_bad_text_is_one_line_and_exit_2(tts_model_path, tmp_path):
    model = ["-m", str(tts_model_path)]
    for text in ("", "   ", "### -- !!"):
        result = runner.invoke(app, ["synthesize", text, "-o", str(tmp_path / "x.wav"), *model])
        assert result.exit_code == 2 and "nothing to say" in _error_line(result)
    lines = tmp_path / "lines.txt"
    lines.write_text("yes no stop\n***\n")
    out_dir = tmp_path / "out"
    args = ["synthesize", "--text-file", str(lines), "--output-dir", str(out_dir), *model]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "lines.txt:2" in _error_line(result)
    assert not out_dir.exists()  # checked before anything was spoken
    lines.write_text("\n\n")
    assert "holds no text" in _error_line(runner.invoke(app, args))
    missing = runner.invoke(
        app,
        ["synthesize", "hello", "-o", str(tmp_path / "y.wav")] + ["-m", str(tmp_path / "none.pt")],
    )
    assert missing.exit_code == 2 and "none.pt" in _error_line(missing)
    neither = runner.invoke(app, ["synthesize", *model])
    assert neither.exit_code == 2 and "--text-file" in _error_line(neither)
    no_output = runner.invoke(app, ["synthesize", "hello", *model])
    assert no_output.exit_code == 2 and "-o" in _error_line(no_output)
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "y.wav").exists()


def test_synthesize_without_a_shipped_voice_names_model(tmp_path, monkeypatch):
    monkeypatch.setattr("speechseq.pretrained.PRETRAINED_DIR", tmp_path)
    result = runner.invoke(app, ["synthesize", "hello", "-o", str(tmp_path / "a.wav")])
    assert result.exit_code == 2 and "--model" in _error_line(result)


def test_train_tts_command(tts_manifest, tmp_path):
    out_dir = tmp_path / "exp"
    config = tmp_path / "tts.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"train_manifest": str(tts_manifest), "max_batch_seconds": 10},
                "model": TINY_TTS_MODEL,
                "train": {"out_dir": str(out_dir), "max_steps": 2, "log_every": 1},
            }
        )
    )
    args = ["train", "tts", str(config), "train.epochs=1", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert (out_dir / "best.pt").is_file() and "best checkpoint" in result.stderr
    records = [json.loads(x) for x in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1]  # one epoch of one batch
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--resume" in _error_line(again)
    resumed = runner.invoke(app, [*args, "--resume", "train.epochs=2"])
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming" in resumed.stderr


@pytest.mark.pretrained
def test_tts_durations_measures_each_character_of_a_manifest(tmp_path):
    from speechseq.tts.durations import read_durations

    root = Path(__file__).parents[2]
    manifest = tmp_path / "samples.jsonl"
    made = runner.invoke(
        app, ["data", "manifest", str(root / "data" / "samples"), "-o", str(manifest)]
    )
    assert made.exit_code == 0, made.output
    config = root / "recipes" / "synthetic" / "tts" / "hparams" / "duration.yaml"
    out = tmp_path / "samples.durations.jsonl"
    args = ["tts", "durations", str(manifest), str(out), "--config", str(config)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    durations = read_durations(out)  # checks each line sums to its frames
    texts = {u.audio: u.text for u in read_manifest(manifest)}
    assert {a: len(d) for a, d in durations.items()} == {a: len(t) for a, t in texts.items()}
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_synthesize_with_each_vocoder(tts_model_path, vocoder_path, tmp_path):
    """--vocoder FILE speaks through the neural vocoder, --vocoder griffin-lim through
    Griffin-Lim: two different waveforms of the same length; a voice that carries a vocoder
    (speechseq export --vocoder) uses it without being told."""
    model = ["--model", str(tts_model_path)]
    outs = {}
    for name, choice in [("neural", str(vocoder_path)), ("gl", "griffin-lim")]:
        outs[name] = tmp_path / f"{name}.wav"
        args = ["synthesize", "Yes no stop.", "-o", str(outs[name]), *model, "--vocoder", choice]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
    neural, _ = sf.read(outs["neural"])
    gl, _ = sf.read(outs["gl"])
    assert len(neural) == len(gl) and abs(neural - gl).max() > 0.05

    voice = tmp_path / "voice.pt"
    exported = runner.invoke(
        app, ["export", str(tts_model_path), "-o", str(voice), "--vocoder", str(vocoder_path)]
    )
    assert exported.exit_code == 0, exported.stderr
    default = tmp_path / "default.wav"
    result = runner.invoke(
        app, ["synthesize", "Yes no stop.", "-o", str(default), "-m", str(voice)]
    )
    assert result.exit_code == 0, result.stderr
    described = runner.invoke(app, ["info", str(voice)])
    assert described.exit_code == 0 and "vocoder     istft" in described.stdout
    alone = runner.invoke(app, ["info", str(vocoder_path)])
    assert "speechseq-vocoder: istft" in alone.stdout and "none (audio out)" in alone.stdout
    # float16 copies of both networks: the same audio as the neural run, but for rounding
    assert abs(sf.read(default)[0] - neural).max() < 0.05


def test_synthesize_with_a_bad_vocoder_is_one_line(tts_model_path, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    for vocoder, message in [(bad, "not a PyTorch checkpoint"), (tmp_path / "no.pt", "no such")]:
        args = ["synthesize", "hello", "-o", str(tmp_path / "x.wav"), "--vocoder", str(vocoder)]
        result = runner.invoke(app, [*args, "--model", str(tts_model_path)])
        assert result.exit_code == 2 and message in _error_line(result)
    recognizer_as_vocoder = runner.invoke(
        app,
        ["synthesize", "hello", "-o", str(tmp_path / "x.wav"), "--model", str(tts_model_path),
         "--vocoder", str(tts_model_path)],
    )  # fmt: skip
    assert recognizer_as_vocoder.exit_code == 2
    assert "expected speechseq-vocoder" in _error_line(recognizer_as_vocoder)
    assert not (tmp_path / "x.wav").exists()


def test_train_vocoder_command(tts_manifest, tmp_path):
    out_dir = tmp_path / "exp"
    config = tmp_path / "vocoder.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"train_manifest": str(tts_manifest), "segment_frames": 16},
                "model": {"dim": 32, "intermediate_dim": 64, "layers": 2},
                "train": {"out_dir": str(out_dir), "max_steps": 2, "log_every": 1},
            }
        )
    )
    args = ["train", "vocoder", str(config), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert (out_dir / "best.pt").is_file() and "best checkpoint" in result.stderr
    assert [
        json.loads(x)["step"] for x in (out_dir / "metrics.jsonl").read_text().splitlines()
    ] == [1, 2]
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--resume" in _error_line(again)
    resumed = runner.invoke(app, [*args, "--resume", "train.max_steps=3"])
    assert resumed.exit_code == 0, resumed.stderr
    rows = (out_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in rows] == [1, 2, 3]
