"""Two local processes under torchrun (``python -m torch.distributed.run``, gloo on CPU): DDP
training lands where one process does on the same global batches, and a 2-rank transcription
job writes exactly what one process writes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from speechseq.asr.config import load_asr_config
from speechseq.asr.shards import parse_shard, shard_report
from speechseq.asr.train import train_asr
from speechseq.checkpoint import asr_state, load_checkpoint, save_checkpoint
from speechseq.cli import app
from speechseq.config import parse_overrides
from speechseq.data import DurationBatchSampler
from speechseq.distributed import shard
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.text import CharTokenizer

runner = CliRunner()


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(port), "-m", "speechseq", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_shard_splits_deterministically_and_completely():
    items = list(range(7))
    parts = [shard(items, k, 3) for k in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert shard(items[:1], 1, 2) == []
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(SpeechseqError, match="--shard"):
            parse_shard(bad)
    assert shard_report(Path("o/report.jsonl"), 3, 8) == Path("o/report.shard3.jsonl")
    assert shard_report(Path("o/r-{shard}.jsonl"), 3, 8) == Path("o/r-3.jsonl")
    assert shard_report(Path("o/report.jsonl"), 0, 1) == Path("o/report.jsonl")


def test_sampler_shares_make_up_the_global_batches():
    durations = [1.0 + 0.1 * (i % 7) for i in range(23)]
    single = DurationBatchSampler(durations, 6.0, seed=3)
    ranks = [DurationBatchSampler(durations, 6.0, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    for sampler in (single, *ranks):
        sampler.set_epoch(2, start_batch=1)
    shares = zip(*(list(r) for r in ranks), strict=True)
    assert [sorted(a + b) for a, b in shares] == [sorted(b) for b in single]


def _train_config(tmp_path: Path, speech_manifest: Path) -> Path:
    # 7 utterances in batches of 4 and 3, so the ranks' shares are 2+2 and 2+1; nothing random
    # (no dropout, SpecAugment or waveform augmentation), so the runs can be compared.
    lines = speech_manifest.read_text().splitlines()
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("\n".join(lines + lines[:3]) + "\n")
    raw = {
        "data": {
            "train_manifest": str(manifest),
            "dev_manifest": str(speech_manifest),
            "max_batch_seconds": 60,
            "max_batch_size": 4,
        },
        "model": {"hidden_size": 32, "num_layers": 2, "conv_channels": 8, "dropout": 0.0},
        "spec_augment": None,
        "train": {
            "epochs": 3,
            "lr": 3e-3,
            "warmup_steps": 2,
            "checkpoint_every": 0,
            "log_every": 1,
            "num_threads": 1,
            "device": "cpu",
        },
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _records(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def _train_both(config: Path, one: Path, two: Path, *overrides: str, resume: bool = False):
    """Train in this process into ``one`` and with 2 ranks into ``two``; returns torchrun's run."""
    values = {"train.out_dir": str(one), **parse_overrides(list(overrides))}
    threads = torch.get_num_threads()
    try:
        train_asr(load_asr_config(config, values), resume=resume, progress=False)
    finally:
        torch.set_num_threads(threads)
    args = ["train", "asr", str(config), f"train.out_dir={two}", *overrides]
    run = _torchrun(*args, *(["--resume"] if resume else []))
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("best checkpoint:") == 1  # rank 0 alone reports (and writes)
    return run


def _assert_same_training(one: Path, two: Path, steps: int) -> None:
    a, b = load_checkpoint(two / "last.pt"), load_checkpoint(one / "last.pt")
    assert a["train_state"]["step"] == b["train_state"]["step"] == steps
    assert len(a["train_state"]["rank_rngs"]) == 2
    model = Recognizer(RecognizerConfig(**b["model_config"]))
    for name, _ in model.named_parameters():
        # measured: relative error norm <= 5.3e-6 per tensor; largest element difference 1.3e-5
        assert (a["model"][name] - b["model"][name]).norm() <= 1e-5 * b["model"][name].norm()
    # the same losses and gradient norms, step by step, logged once (by rank 0)
    logged_two, logged_one = _records(two), _records(one)
    assert [r["step"] for r in logged_two] == [r["step"] for r in logged_one]
    for x, y in zip(logged_two, logged_one, strict=True):
        for key in ("loss", "grad_norm", "dev_loss"):
            if key in y:
                # logged rounded (grad_norm to 4 decimals, losses to 5): a value may straddle
                # the rounding, so one unit of the last logged place is allowed
                last_place = 1.5e-4 if key == "grad_norm" else 1.5e-5  # 1 unit + float slack
                # dev loss goes through batch norm's running means, summed in float64 over the
                # ranks: measured 3.8e-5 relative on an AMD EPYC (1.04e-3 with conv biases)
                rel = 1e-4 if key == "dev_loss" else 1e-5
                assert x[key] == pytest.approx(y[key], rel=rel, abs=last_place), key


@pytest.fixture(scope="module")
def trained(tmp_path_factory, speech_manifest) -> tuple[Path, Path, Path]:
    """The config, and the run of one process and of two ranks over the same 6 batches."""
    tmp = tmp_path_factory.mktemp("ddp")
    config, one, two = _train_config(tmp, speech_manifest), tmp / "one", tmp / "two"
    _train_both(config, one, two)
    return config, one, two


@pytest.mark.distributed
def test_ddp_training_matches_one_process(trained):
    _, one, two = trained
    _assert_same_training(one, two, steps=6)


@pytest.mark.distributed
def test_ddp_training_resumes_like_one_process(trained):
    config, one, two = trained
    run = _train_both(config, one, two, "train.epochs=4", resume=True)  # every rank reads last.pt
    assert run.stderr.count("resuming") == 1
    _assert_same_training(one, two, steps=8)


def _random_model(path: Path) -> Path:
    """An untrained recognizer: it spells noise, so every output file has words and times."""
    torch.manual_seed(0)
    tokenizer = CharTokenizer()
    model = Recognizer(RecognizerConfig(vocab_size=len(tokenizer), hidden_size=32, num_layers=1))
    return save_checkpoint(asr_state(model.eval(), FeatureConfig(), tokenizer), path)


def _outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("report")
    }


@pytest.mark.distributed
def test_two_ranks_transcribe_what_one_process_does(tmp_path, speech_dir):
    inputs = tmp_path / "in"
    shutil.copytree(speech_dir, inputs / "a")
    shutil.copytree(speech_dir, inputs / "b" / "c")
    (inputs / "b" / "broken.wav").write_text("not audio")
    model = _random_model(tmp_path / "random.pt")
    # one piece a batch (--batch-seconds 1), so float results cannot depend on batch company
    args = ["transcribe", str(inputs), "-m", str(model), "-f", "all", "--batch-seconds", "1"]
    args += ["--threads", "1", "--workers", "0", "--device", "cpu"]

    one = runner.invoke(app, [*args, "-o", str(tmp_path / "one")])
    assert one.exit_code == 1 and "8 succeeded, 1 failed" in one.stderr
    run = _torchrun(*args, "-o", str(tmp_path / "two"))
    assert run.returncode != 0  # the broken file
    assert "all ranks: 8 succeeded, 1 failed, 0 skipped" in run.stderr
    for k in (0, 1):  # the split SLURM array tasks make, without torchrun
        half = runner.invoke(app, [*args, "-o", str(tmp_path / "three"), "--shard", f"{k}/2"])
        assert f"shard {k}/2: " in half.stderr

    expected = _outputs(tmp_path / "one")
    assert len(expected) == 8 * 5  # 8 readable inputs, 5 formats
    assert _outputs(tmp_path / "two") == expected
    assert _outputs(tmp_path / "three") == expected
    for folder in ("two", "three"):
        reports = sorted((tmp_path / folder).glob("report*.jsonl"))
        assert [p.name for p in reports] == ["report.shard0.jsonl", "report.shard1.jsonl"]
        lines = [json.loads(line) for p in reports for line in p.read_text().splitlines()]
        assert sorted(line["input"] for line in lines) == sorted(
            str(p) for p in inputs.rglob("*.wav")
        )
    assert any(json.loads((tmp_path / "one" / "a" / "utt0.json").read_text())["text"])


@pytest.mark.distributed
def test_a_rank_ends_with_its_commands_exit_code_and_output(tmp_path):
    # Under a launcher the command line leaves through os._exit (no interpreter teardown):
    # what it printed must still arrive, and its exit code must be the command's.
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "speechseq", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)

    ok = run("train", "asr", "--help")
    assert ok.returncode == 0 and "Train a BiGRU-CTC recognizer" in ok.stdout
    missing = tmp_path / "missing.yaml"
    bad = run("train", "asr", str(missing))
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"error: {missing}: no such config file"
