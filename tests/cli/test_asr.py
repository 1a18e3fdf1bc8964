import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from speechseq.cli import app
from speechseq.data import read_manifest

runner = CliRunner()


def _expected(speech_dir):
    return {p.with_suffix(".wav").name: p.read_text().strip() for p in speech_dir.glob("*.txt")}


def test_help_explains_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("transcribe", "evaluate", "train", "data"):
        assert command in result.output


def test_data_manifest_command(speech_dir, tmp_path):
    out = tmp_path / "m.jsonl"
    result = runner.invoke(app, ["data", "manifest", str(speech_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    utts = read_manifest(out)
    assert {u.text for u in utts} == set(_expected(speech_dir).values())
    assert all(0.5 < u.duration < 5 for u in utts)
    again = runner.invoke(app, ["data", "manifest", str(speech_dir), "-o", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_transcribe_prints_the_transcripts(model_path, speech_dir):
    result = runner.invoke(app, ["transcribe", str(speech_dir), "--model", str(model_path)])
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split("\t") for line in result.stdout.strip().splitlines())
    got = {path.rsplit("/", 1)[-1]: text for path, text in lines.items()}
    assert got == _expected(speech_dir)


def test_transcribe_folder_with_bad_files(model_path, speech_dir, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(speech_dir, folder)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is a text file, not audio\n")
    result = runner.invoke(app, ["transcribe", str(folder), "--model", str(model_path)])
    assert result.exit_code == 1
    got = dict(line.split("\t") for line in result.stdout.strip().splitlines())
    assert {p.rsplit("/", 1)[-1] for p in got} == set(_expected(speech_dir))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("empty.wav" in e and "empty" in e for e in errors)
    assert any("notes.wav" in e and "not readable as audio" in e for e in errors)
    assert "Traceback" not in result.output


def test_transcribe_output_dir_formats_and_skips_existing(model_path, speech_dir, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["transcribe", str(speech_dir), "-m", str(model_path), "-o", str(out), "-f", "json"]
    )
    assert result.exit_code == 0, result.stderr
    expected = _expected(speech_dir)
    for name, text in expected.items():
        record = json.loads((out / name).with_suffix(".json").read_text())
        assert record["text"] == text and record["duration"] > 0.5
    # re-running skips what exists instead of overwriting it
    (out / "utt0.json").write_text('{"text": "kept"}')
    again = runner.invoke(
        app, ["transcribe", str(speech_dir), "-m", str(model_path), "-o", str(out), "-f", "json"]
    )
    assert again.exit_code == 0 and "4 skipped" in again.stderr
    assert json.loads((out / "utt0.json").read_text())["text"] == "kept"
    forced = runner.invoke(
        app,
        [
            "transcribe",
            str(speech_dir / "utt0.wav"),
            "-m",
            str(model_path),
            "-o",
            str(out),
            "--overwrite",
        ],
    )
    assert forced.exit_code == 0
    assert (out / "utt0.txt").read_text().strip() == expected["utt0.wav"]


def test_transcribe_glob_and_missing_inputs(model_path, speech_dir):
    result = runner.invoke(
        app,
        [
            "transcribe",
            str(speech_dir / "utt[01].wav"),
            str(speech_dir / "nope.wav"),
            "-m",
            str(model_path),
        ],
    )
    assert result.exit_code == 1
    assert len(result.stdout.strip().splitlines()) == 2
    assert "nope.wav: no such file" in result.stderr


def test_evaluate_prints_scores_and_writes_results(model_path, speech_manifest, tmp_path):
    out = tmp_path / "results.jsonl"
    result = runner.invoke(app, ["evaluate", str(model_path), str(speech_manifest), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "WER         0.00 %" in result.stdout
    assert "CER         0.00 %" in result.stdout
    assert "RTF" in result.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["hypothesis"] == r["reference"] for r in rows)


def test_train_command_with_overrides(speech_manifest, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"train_manifest": str(speech_manifest)},
                "model": {"hidden_size": 16, "num_layers": 1},
            }
        )
    )
    out = tmp_path / "exp"
    result = runner.invoke(
        app,
        [
            "train",
            "asr",
            str(config),
            f"train.out_dir={out}",
            "--train.max_steps",
            "3",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "best.pt").exists() and (out / "last.pt").exists()
    again = runner.invoke(app, ["train", "asr", str(config), f"train.out_dir={out}"])
    assert again.exit_code == 2 and "--resume" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["transcribe", "x.wav", "--model", "missing.pt"], "missing.pt: no such model file"),
        (["evaluate", "missing.pt", "m.jsonl"], "m.jsonl: no such manifest"),
        (["train", "asr", "missing.yaml"], "missing.yaml: no such config file"),
        (["data", "manifest", "no_such_folder"], "no_such_folder: no such folder"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr


def test_not_a_checkpoint_is_a_clear_error(tmp_path, speech_dir):
    fake = tmp_path / "fake.pt"
    fake.write_text("hello")
    result = runner.invoke(app, ["transcribe", str(speech_dir), "--model", str(fake)])
    assert result.exit_code == 2
    assert "fake.pt: not a PyTorch checkpoint file" in result.stderr


def test_data_prepare_folder_skips_bad_files_with_a_warning(speech_dir, tmp_path):
    folder = tmp_path / "corpus"
    shutil.copytree(speech_dir, folder)
    (folder / "broken.wav").write_text("not audio")
    (folder / "broken.txt").write_text("some words")
    (folder / "symbols.wav").write_bytes((speech_dir / "utt0.wav").read_bytes())
    (folder / "symbols.txt").write_text("?!")
    out = tmp_path / "manifests"
    result = runner.invoke(app, ["data", "prepare", "folder", str(folder), str(out)])
    assert result.exit_code == 0, result.output
    assert "4 utterances" in result.stdout
    assert len(read_manifest(out / "folder.jsonl")) == 4
    assert "broken.wav" in result.stderr and "Traceback" not in result.output


def test_data_prepare_splits_a_folder_by_the_sizes_given(speech_dir, tmp_path):
    out = tmp_path / "manifests"
    args = ["data", "prepare", "folder", str(speech_dir), str(out)]
    result = runner.invoke(app, [*args, "--dev-size", "1", "--test-size", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    parts = {p: read_manifest(out / f"folder_{p}.jsonl") for p in ("train", "dev", "test")}
    assert [len(parts[p]) for p in ("train", "dev", "test")] == [2, 1, 1]
    audio = [u.audio for utts in parts.values() for u in utts]
    assert sorted(audio) == sorted(u.audio for u in read_manifest(out / "folder.jsonl"))
    too_many = runner.invoke(app, [*args, "--test-size", "9", "--overwrite"])
    assert too_many.exit_code == 2 and "too few" in too_many.stderr
    own = ["data", "prepare", "librispeech", str(tmp_path), str(out), "--dev-size", "5"]
    refused = runner.invoke(app, own)
    assert refused.exit_code == 2 and "its own splits" in refused.stderr


def test_data_prepare_bad_root_is_one_line(tmp_path):
    result = runner.invoke(app, ["data", "prepare", "librispeech", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_lm_build_command(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Yes, no; stop.\nred green blue\n")
    out = tmp_path / "lm.arpa"
    result = runner.invoke(app, ["lm", "build", str(corpus), "-o", str(out), "--order", "2"])
    assert result.exit_code == 0, result.stderr
    assert "2 sentences" in result.stderr and "ngram 2=" in out.read_text()
    again = runner.invoke(app, ["lm", "build", str(corpus), "-o", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_beam_with_lm_transcribes_and_evaluates(model_path, speech_dir, speech_manifest, tmp_path):
    lm = tmp_path / "lm.arpa"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(t + "\n" for t in _expected(speech_dir).values()))
    assert runner.invoke(app, ["lm", "build", str(corpus), "-o", str(lm)]).exit_code == 0
    beam = ["--decoder", "beam", "--lm", str(lm), "--beam-size", "10", "--lm-weight", "0.5"]

    result = runner.invoke(app, ["transcribe", str(speech_dir), "-m", str(model_path), *beam])
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split("\t") for line in result.stdout.strip().splitlines())
    assert {Path(p).name: t for p, t in lines.items()} == _expected(speech_dir)

    result = runner.invoke(app, ["evaluate", str(model_path), str(speech_manifest), *beam])
    assert result.exit_code == 0, result.stderr
    assert "WER         0.00 %" in result.stdout

    # --decoder auto (the default) with an LM is beam search; greedy cannot use an LM
    lm_only = ["--lm", str(lm), "--lm-weight", "0.5"]
    result = runner.invoke(app, ["evaluate", str(model_path), str(speech_manifest), *lm_only])
    assert result.exit_code == 0, result.stderr
    assert "WER         0.00 %" in result.stdout
    result = runner.invoke(
        app,
        ["evaluate", str(model_path), str(speech_manifest), "--decoder", "greedy", *lm_only],
    )
    assert result.exit_code == 2 and "--decoder beam" in result.stderr
    # the beam's tokens per frame: all of them (a number over the vocabulary's size), or none
    evaluate = ["evaluate", str(model_path), str(speech_manifest), *beam]
    result = runner.invoke(app, [*evaluate, "--beam-tokens", "1000"])
    assert result.exit_code == 0, result.stderr
    assert "WER         0.00 %" in result.stdout
    result = runner.invoke(app, [*evaluate, "--beam-tokens", "0"])
    assert result.exit_code == 2 and "--beam-tokens" in result.stderr
