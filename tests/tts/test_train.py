import json
import shutil

import pytest
import torch
import yaml
from conftest import TINY_TTS_MODEL

from speechseq.checkpoint import load_checkpoint, load_synthesizer
from speechseq.errors import SpeechseqError
from speechseq.tts.config import load_tts_config
from speechseq.tts.train import train_tts


def _overrides(manifest, out_dir, **more):
    values = {f"model.{k}": v for k, v in TINY_TTS_MODEL.items()}
    values |= {
        "data.train_manifest": str(manifest),
        "data.dev_manifest": str(manifest),
        "data.max_batch_seconds": 3,  # two batches an epoch
        "validation.sentences": 2,
        "train.out_dir": str(out_dir),
        "train.epochs": 100,
        "train.max_steps": 6,
        "train.warmup_steps": 2,
        "train.checkpoint_every": 2,
        "train.log_every": 2,
        "train.validate_every": 1,
    }
    return values | more


def test_train_writes_checkpoints_metrics_plots_and_listens(tmp_path, tts_manifest, model_path):
    out_dir = tmp_path / "run"
    config = load_tts_config(
        None,
        _overrides(
            tts_manifest,
            out_dir,
            **{"validation.recognizer": str(model_path), "train.max_steps": 4},
        ),
    )
    best = train_tts(config, progress=False)
    assert best == out_dir / "best.pt"
    model, features, tokenizer, state = load_synthesizer(best)
    assert "train_state" not in state and model.config.decoder_rnn_dim == 96
    assert features.hop_length == 200 and len(features.mean) == 80 and len(tokenizer) == 29
    assert load_checkpoint(out_dir / "last.pt", "speechseq-tts")["train_state"]["step"] == 4
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [2, 4]
    dev = [r for r in records if "dev_loss" in r]
    assert [r["step"] for r in dev] == [2, 4]
    assert all(0 <= r["synth_cer"] and 0 <= r["dev_diagonal"] <= 1 for r in dev)
    assert isinstance(dev[0]["synth_heard"], str)
    assert (out_dir / "alignments" / "step-000004.png").read_bytes()[:4] == b"\x89PNG"
    assert (out_dir / "alignments" / "step-000004-free.png").is_file()
    assert len(list((out_dir / "samples" / "step-000004").glob("*.wav"))) == 2
    assert yaml.safe_load((out_dir / "config.yaml").read_text())["train"]["max_steps"] == 4
    with pytest.raises(SpeechseqError, match="--resume"):
        train_tts(config, progress=False)
    bad = load_tts_config(
        None,
        _overrides(
            tts_manifest, tmp_path / "bad", **{"validation.recognizer": str(tmp_path / "no.pt")}
        ),
    )
    with pytest.raises(SpeechseqError, match="no.pt"):
        train_tts(bad, progress=False)
    judged_by = load_checkpoint(out_dir / "last.pt", None)["train_state"]["best_metric"]
    assert judged_by.startswith("synth_cer (recognizer ")  # another recognizer: another yardstick
    # resumed without the recognizer, best.pt is judged by dev loss: a loss is never compared
    # with the CER that chose the old best.pt, so the next validation replaces it
    train_tts(load_tts_config(None, _overrides(tts_manifest, out_dir)), resume=True, progress=False)
    assert load_checkpoint(out_dir / "best.pt", None)["meta"]["step"] == 6


def test_resumed_run_matches_an_uninterrupted_one(tmp_path, tts_manifest, monkeypatch):
    """Copy last.pt as it was at step 2 (mid-epoch), resume from the copy, and land on the
    same weights as the run that went on: validation, plots and synthesis between the two
    must not disturb the random state."""
    import speechseq.training as training  # its Checkpointer writes last.pt

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    save = training.save_checkpoint

    def save_and_keep_step_3(state, path):
        save(state, path)
        if path.name == "last.pt" and state["train_state"]["step"] == 3:
            resumed.mkdir(exist_ok=True)
            shutil.copy(path, resumed / "last.pt")

    monkeypatch.setattr(training, "save_checkpoint", save_and_keep_step_3)
    train_tts(
        load_tts_config(None, _overrides(tts_manifest, reference, **{"train.checkpoint_every": 1})),
        progress=False,
    )
    monkeypatch.setattr(training, "save_checkpoint", save)
    copied = load_checkpoint(resumed / "last.pt", None)["train_state"]
    assert copied["batch_in_epoch"] == 1
    begun = copied["compute_seconds"]
    config = load_tts_config(None, _overrides(tts_manifest, resumed))
    train_tts(config, resume=True, progress=False)
    got = load_checkpoint(resumed / "last.pt", None)
    want = load_checkpoint(reference / "last.pt", None)
    assert got["train_state"]["step"] == want["train_state"]["step"] == 6
    # the resumed stretch counts its compute on from the copy's; last.pt keeps the total
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert begun > 0 and rows
    assert all(r["compute"] >= begun + r["elapsed"] - 0.1 for r in rows)
    assert got["train_state"]["compute_seconds"] >= rows[-1]["compute"] - 0.05
    for name, tensor in want["model"].items():
        torch.testing.assert_close(got["model"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_duration_model_trains_listens_and_speaks(tmp_path, tts_manifest, model_path):
    """model.kind duration: durations measured with the recognizer, trained through train_tts
    (resume included), loaded back as a DurationSynthesizer and spoken with by a Speaker."""
    from speechseq.models.duration_tts import DurationSynthesizer
    from speechseq.tts.config import tts_feature_config
    from speechseq.tts.durations import align_corpus
    from speechseq.tts.speaker import Speaker

    durations = tmp_path / "durations.jsonl"
    summary = align_corpus(tts_manifest, durations, model_path, tts_feature_config(16000))
    assert summary["written"] >= 2
    tiny = {
        "model.kind": "duration",
        "model.embedding_dim": 32,
        "model.encoder_channels": 64,
        "model.encoder_conv_layers": 2,
        "model.duration_channels": 32,
        "model.decoder_dim": 48,
        "model.decoder_layers": 1,
        "model.postnet_channels": 32,
        "model.postnet_layers": 3,
    }
    values = {k: v for k, v in _overrides(tts_manifest, tmp_path / "run").items()}
    values = {k: v for k, v in values.items() if not k.startswith("model.")} | tiny
    values |= {
        "data.train_durations": str(durations),
        "data.dev_durations": str(durations),
        "validation.recognizer": str(model_path),
        "train.max_steps": 4,
    }
    best = train_tts(load_tts_config(None, values), progress=False)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    dev = [r for r in records if "dev_loss" in r]
    assert dev and all("dev_duration" in r and 0 <= r["synth_cer"] for r in dev)
    assert all(r["synth_stopped"] == 1.0 for r in dev)  # the length comes from the durations
    values["train.max_steps"] = 6
    train_tts(load_tts_config(None, values), resume=True, progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt", None)["train_state"]["step"] == 6
    model, *_ = load_synthesizer(best)
    assert isinstance(model, DurationSynthesizer)
    result = Speaker.from_pretrained(best).speak("Hello there. How are you?")
    assert len(result.sentences) == 2 and all(result.stopped) and result.waveform.numel() > 0
    # fine-tuning (train.init_from) starts from the voice's weights and shape, whatever the
    # config's model section says; lr 0 keeps them
    tuned = values | {
        "train.init_from": str(best),
        "train.out_dir": str(tmp_path / "tuned"),
        "train.lr": 0.0,
        "train.max_steps": 1,
        "model.decoder_dim": 16,
    }
    tuned_best = train_tts(load_tts_config(None, tuned), progress=False)
    start, after = load_checkpoint(best, None)["model"], load_checkpoint(tuned_best, None)["model"]
    assert start.keys() == after.keys()
    # (a training step moves batch norm's running statistics, not weights)
    weights = [k for k in start if not k.endswith(("running_mean", "running_var", "_tracked"))]
    assert all(torch.equal(start[k].float(), after[k].float()) for k in weights)
    missing = dict(values)
    missing.pop("data.train_durations")
    with pytest.raises(SpeechseqError, match="train_durations"):
        train_tts(load_tts_config(None, missing | {"train.out_dir": str(tmp_path / "x")}))


def test_a_tts_epoch_shorter_than_the_first_still_ends(tmp_path, tts_manifest, uneven_epochs):
    out_dir = tmp_path / "run"
    overrides = _overrides(tts_manifest, out_dir, **{"train.epochs": 3, "train.max_steps": None})
    overrides |= {"data.max_batch_seconds": 2}
    train_tts(load_tts_config(None, overrides), progress=False)
    state = load_checkpoint(out_dir / "last.pt", "speechseq-tts")["train_state"]
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert state["epoch"] == 3
    assert [r["epoch"] for r in records if "dev_loss" in r] == [1, 2, 3]
