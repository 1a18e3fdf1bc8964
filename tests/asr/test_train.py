import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from speechseq.asr.config import load_asr_config
from speechseq.asr.decoding import DecoderConfig
from speechseq.asr.train import train_asr
from speechseq.asr.transcriber import Transcriber
from speechseq.checkpoint import load_checkpoint, load_recognizer
from speechseq.data import read_manifest
from speechseq.errors import SpeechseqError
from speechseq.pretrained import default_recognizer_path
from speechseq.quantization import dequantize_state
from speechseq.text import PieceTokenizer, new_tokenizer, train_piece_tokenizer


def _config(tmp_path, manifest, out_dir, **train):
    raw = {
        "data": {
            "train_manifest": str(manifest),
            "dev_manifest": str(manifest),
            "max_batch_seconds": 3.5,
        },
        "model": {"hidden_size": 64, "num_layers": 2, "conv_channels": 8},
        "augment": {"speed_prob": 0.5, "noise_prob": 0.5, "reverb_prob": 0.3},
        "train": {
            "out_dir": str(out_dir),
            "epochs": 100,
            "max_steps": 40,
            "lr": 3e-3,
            "warmup_steps": 5,
            "checkpoint_every": 2,
            "log_every": 2,
            "num_threads": 1,
            **train,
        },
    }
    path = tmp_path / f"{out_dir.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_train_writes_checkpoints_and_metrics(tmp_path, speech_manifest, restore_threads):
    out_dir = tmp_path / "run"
    cfg = load_asr_config(_config(tmp_path, speech_manifest, out_dir, max_steps=9, log_every=1))
    best = train_asr(cfg, progress=False)
    assert best == out_dir / "best.pt"
    model, features, tokenizer, state = load_recognizer(best)
    assert model.config.hidden_size == 64 and len(tokenizer) == 29
    assert "train_state" not in state  # released checkpoints carry no optimizer
    last = load_checkpoint(out_dir / "last.pt")
    assert last["train_state"]["step"] == 9
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 10))
    # the validation at the step cap (mid-epoch) is labelled with its step's epoch, as the
    # training row of that step is
    assert records[-1]["step"] == records[-2]["step"] == 9 and "dev_wer" in records[-1]
    assert records[-1]["epoch"] == records[-2]["epoch"]
    assert yaml.safe_load((out_dir / "config.yaml").read_text())["train"]["max_steps"] == 9
    # a second run into the same folder must not silently overwrite it
    with pytest.raises(SpeechseqError, match="--resume"):
        train_asr(cfg, progress=False)


def test_a_run_on_word_pieces_keeps_its_tokenizer(tmp_path, speech_manifest, restore_threads):
    """``data.tokenizer: bpe:N`` learns pieces from the train transcripts; checkpoints carry
    them, resuming keeps them whatever the config says, and a transcriber decodes with them."""
    out_dir = tmp_path / "pieces"
    config_path = _config(tmp_path, speech_manifest, out_dir, max_steps=4)
    train_asr(load_asr_config(config_path, {"data.tokenizer": "bpe:30"}), progress=False)
    model, _, tokenizer, _ = load_recognizer(out_dir / "last.pt")
    texts = [u.text for u in read_manifest(speech_manifest)]
    assert isinstance(tokenizer, PieceTokenizer) and len(tokenizer) == 31
    assert tokenizer.model == train_piece_tokenizer(texts, 30).model
    assert model.config.vocab_size == 31

    carried = load_checkpoint(out_dir / "last.pt")["train_state"]["compute_seconds"]
    resumed = {"data.tokenizer": "char", "train.max_steps": 6}
    train_asr(load_asr_config(config_path, resumed), resume=True, progress=False)
    _, _, after, state = load_recognizer(out_dir / "last.pt")
    assert state["train_state"]["step"] == 6 and after.vocab == tokenizer.vocab
    # the resumed stretch's compute counts on from the first's; its elapsed starts again
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in records if "dev_wer" in r]  # at each epoch's end and at each stop
    first, second = [r for r in dev if r["step"] <= 4][-1], dev[-1]
    assert (first["step"], second["step"]) == (4, 6)
    assert [r["compute"] for r in dev] == sorted(r["compute"] for r in dev)
    assert 0 < first["compute"] <= carried + 0.05
    assert second["compute"] - second["elapsed"] == pytest.approx(carried, abs=0.1)
    assert state["train_state"]["compute_seconds"] >= second["compute"] - 0.05

    transcriber = Transcriber.from_pretrained(
        out_dir / "last.pt", decoding=DecoderConfig(kind="beam", beam_size=4)
    )
    (result,) = transcriber.transcribe([read_manifest(speech_manifest)[0].audio])
    assert result.error is None and isinstance(result.text, str)


def test_new_tokenizer_specs(tmp_path):
    texts = ["red green blue", "one two three"] * 5
    assert len(new_tokenizer("char", texts)) == 29
    pieces = new_tokenizer("bpe:20", texts)
    assert isinstance(pieces, PieceTokenizer)
    model_file = tmp_path / "units.model"
    model_file.write_bytes(pieces.model)
    assert new_tokenizer(str(model_file), []).vocab == pieces.vocab
    for spec, message in [
        ("bpe:x", "whole N"),
        ("bpe:1", "whole N"),
        ("words", "char, bpe:N"),
        (str(tmp_path / "missing.model"), "no such SentencePiece"),
    ]:
        with pytest.raises(SpeechseqError, match=message):
            new_tokenizer(spec, texts)


# Runs ``speechseq ARGS…`` with a hook that SIGKILLs the process right after optimizer step
# KILL_STEP, wherever that falls between checkpoints: a kill at a chosen step, not a race.
_KILL_AT_STEP = """
import os, signal, sys
from speechseq import training
from speechseq.cli import main

stepped = training.EpochLoop.stepped

def stepped_then_killed(self, **postfix):
    stepped(self, **postfix)
    if self.step == int(os.environ["KILL_STEP"]):
        os.kill(os.getpid(), signal.SIGKILL)

training.EpochLoop.stepped = stepped_then_killed
sys.argv = ["speechseq", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_killed_run_resumes_as_if_never_stopped(tmp_path, speech_manifest, restore_threads):
    """SIGKILL `speechseq train asr` at step 5 (between the checkpoints of steps 4 and 6),
    resume it, and land on the same weights as an uninterrupted run."""
    killed_dir = tmp_path / "killed"
    config_path = _config(tmp_path, speech_manifest, killed_dir)
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT_STEP, "train", "asr", str(config_path), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "KILL_STEP": "5"},
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL
    last = killed_dir / "last.pt"
    assert load_checkpoint(last)["train_state"]["step"] == 4  # step 5 was lost with the kill
    train_asr(load_asr_config(config_path), resume=True, progress=False)
    assert load_checkpoint(last)["train_state"]["step"] == 40

    reference_dir = tmp_path / "reference"
    train_asr(load_asr_config(_config(tmp_path, speech_manifest, reference_dir)), progress=False)

    resumed = load_checkpoint(last)["model"]
    reference = load_checkpoint(reference_dir / "last.pt")["model"]
    for name, tensor in reference.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_an_epoch_shorter_than_the_first_still_ends(
    tmp_path, speech_manifest, restore_threads, uneven_epochs
):
    out_dir = tmp_path / "run"
    cfg = load_asr_config(_config(tmp_path, speech_manifest, out_dir, epochs=3, max_steps=None))
    train_asr(cfg, progress=False)
    state = load_checkpoint(out_dir / "last.pt")["train_state"]
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    per_epoch = state["step"] // 3 + 1  # the first epoch's count (epochs 2 and 3: one fewer)
    assert state["epoch"] == 3 and state["step"] == 3 * per_epoch - 2
    assert [r["epoch"] for r in records if "dev_wer" in r] == [1, 2, 3]


def test_a_run_of_whole_epochs_ends_with_its_last_epoch_counted(
    tmp_path, speech_manifest, restore_threads
):
    # The step cap (epochs x the first epoch's batches) falls on the last batch of the last
    # epoch: that epoch is finished, not stopped early.
    out_dir = tmp_path / "run"
    cfg = load_asr_config(_config(tmp_path, speech_manifest, out_dir, epochs=2, max_steps=None))
    train_asr(cfg, progress=False)
    state = load_checkpoint(out_dir / "last.pt")["train_state"]
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert (state["epoch"], state["batch_in_epoch"]) == (2, 0)
    assert [r["epoch"] for r in records if "dev_wer" in r] == [1, 2]


def test_fine_tuning_starts_from_a_checkpoint_and_joins_manifests(
    tmp_path, speech_manifest, restore_threads, capsys
):
    base_dir = tmp_path / "base"
    cfg = load_asr_config(_config(tmp_path, speech_manifest, base_dir, epochs=1, max_steps=None))
    train_asr(cfg, progress=False)
    base = load_checkpoint(base_dir / "last.pt")
    base_steps = base["train_state"]["step"]

    # lr 0: the weights stay those of init_from, whatever the YAML's model section says; two
    # copies of the manifest make an epoch about twice as long.
    tuned_dir = tmp_path / "tuned"
    path = _config(
        tmp_path,
        speech_manifest,
        tuned_dir,
        epochs=1,
        max_steps=None,
        lr=0.0,
        init_from=str(base_dir / "last.pt"),
    )
    raw = yaml.safe_load(path.read_text())
    raw["data"]["train_manifest"] = [str(speech_manifest), str(speech_manifest)]
    raw["model"]["hidden_size"] = 32
    path.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    train_asr(load_asr_config(path), progress=False)
    tuned = load_checkpoint(tuned_dir / "last.pt")
    assert tuned["model_config"]["hidden_size"] == 64
    # and the run said so, naming only the setting that differs
    said = capsys.readouterr().err
    assert "not the config's: model.hidden_size 32 (checkpoint: 64)\n" in said
    assert tuned["train_state"]["step"] >= 1.5 * base_steps
    for name, tensor in base["model"].items():
        if "running" not in name and "num_batches" not in name:  # BatchNorm statistics move
            torch.testing.assert_close(tuned["model"][name], tensor, msg=name)
    # and the optimizer started afresh: its step count is the fine-tuning run's own
    assert tuned["train_state"]["scheduler"]["last_epoch"] == tuned["train_state"]["step"]


def test_fine_tuning_into_word_pieces_keeps_the_encoder(
    tmp_path, speech_manifest, restore_threads, capsys
):
    """``data.tokenizer`` set when fine-tuning a character model: the encoder's weights carry
    over, the output layer is new and sized for the pieces, and the checkpoint holds them.
    Naming the checkpoint's own units keeps its output layer."""
    base_dir = tmp_path / "base"
    train_asr(
        load_asr_config(_config(tmp_path, speech_manifest, base_dir, max_steps=2)), progress=False
    )
    base = load_checkpoint(base_dir / "last.pt")

    def fine_tune(name: str, units: str) -> Path:
        out_dir = tmp_path / name
        init = str(base_dir / "last.pt")
        path = _config(tmp_path, speech_manifest, out_dir, max_steps=1, lr=0.0, init_from=init)
        train_asr(load_asr_config(path, {"data.tokenizer": units}), progress=False)
        return out_dir / "last.pt"

    model, _, tokenizer, tuned = load_recognizer(fine_tune("tuned", "bpe:30"))
    # the config's model section is the checkpoint's, and new units are not an override
    assert "not the config's" not in capsys.readouterr().err
    assert isinstance(tokenizer, PieceTokenizer) and model.config.vocab_size == 31
    assert tuned["model"]["output.weight"].shape == (31, 128)
    for name, tensor in base["model"].items():
        if not name.startswith("output.") and "running" not in name and "num_batches" not in name:
            torch.testing.assert_close(tuned["model"][name], tensor, msg=name)

    kept = load_checkpoint(fine_tune("kept", "char"))
    torch.testing.assert_close(kept["model"]["output.weight"], base["model"]["output.weight"])


def test_fine_tuning_with_no_model_section_names_no_setting(
    tmp_path, speech_manifest, restore_threads, capsys
):
    """A fine-tuning config that leaves ``model`` out asks for nothing: its defaults (256 units,
    3 layers) differ from the checkpoint's (64, 2), but they are not named as ignored."""
    base_dir = tmp_path / "base"
    train_asr(
        load_asr_config(_config(tmp_path, speech_manifest, base_dir, max_steps=1)), progress=False
    )
    init = str(base_dir / "last.pt")
    path = _config(tmp_path, speech_manifest, tmp_path / "tuned", max_steps=1, init_from=init)
    raw = yaml.safe_load(path.read_text())
    del raw["model"]
    path.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    train_asr(load_asr_config(path), progress=False)
    said = capsys.readouterr().err
    assert "fine-tuning" in said and "not the config's" not in said


def test_fine_tuning_from_a_missing_checkpoint_says_so(tmp_path, speech_manifest):
    path = _config(tmp_path, speech_manifest, tmp_path / "run", init_from=str(tmp_path / "no.pt"))
    with pytest.raises(SpeechseqError, match="no.pt"):
        train_asr(load_asr_config(path), progress=False)


@pytest.mark.pretrained
def test_fine_tuning_the_shipped_recognizer(tmp_path, speech_manifest, restore_threads):
    path = _config(
        tmp_path, speech_manifest, tmp_path / "run", max_steps=1, lr=0.0, init_from="default"
    )
    train_asr(load_asr_config(path), progress=False)
    tuned = load_checkpoint(tmp_path / "run" / "last.pt")
    shipped = load_checkpoint(default_recognizer_path())
    # the shipped file predates configs' ``kind``: it loads as a recognizer, and is saved so
    assert tuned["model_config"] == {**shipped["model_config"], "kind": "recognizer"}
    # a file from the version whose convs had biases (e.g. asr-char.pt) has them folded into the
    # norms on loading; the shipped model was trained without them
    folded = {"frontend.conv.0.bias", "frontend.conv.3.bias"} & set(shipped["model"])
    assert set(shipped["model"]) - set(tuned["model"]) == folded
    # the release stores int8 (or float16) weights; training starts from their float32 values
    for name, tensor in dequantize_state(shipped).items():
        if "running" not in name and "num_batches" not in name and name not in folded:
            torch.testing.assert_close(tuned["model"][name], tensor.float(), msg=name)
