import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_TTS_MODEL

from speechseq.checkpoint import load_checkpoint, load_synthesizer
from speechseq.data import TtsBatch, stop_targets
from speechseq.errors import SpeechseqError
from speechseq.tts.config import TtsLossConfig, load_tts_config
from speechseq.tts.losses import compute_tts_loss, diagonal_score, guided_attention_loss
from speechseq.tts.plotting import alignment_image, write_png
from speechseq.tts.train import train_tts


def _diagonal(steps: int, chars: int) -> torch.Tensor:
    """(S, L) one-hot attention moving evenly from the first character to the last."""
    a = torch.zeros(steps, chars)
    a[torch.arange(steps), (torch.arange(steps) * chars) // steps] = 1.0
    return a


def test_guided_attention_is_per_step_and_ignores_padding():
    diagonal = _diagonal(40, 20)[None]  # (1, S, L)
    across = diagonal.flip(-1)  # last character first
    lengths, steps = torch.tensor([20]), torch.tensor([40])
    assert guided_attention_loss(diagonal, lengths, steps, 0.2) < 0.05
    # one-hot rows: the loss is the mean over steps of the penalty where attention sits
    t = torch.arange(40) / 40
    n = (19 - (torch.arange(40) * 20) // 40) / 20  # where `across` attends at each step
    expected = (1 - torch.exp(-((n - t) ** 2) / (2 * 0.2**2))).mean()
    torch.testing.assert_close(guided_attention_loss(across, lengths, steps, 0.2), expected)
    # summed over characters, not averaged: uniform attention over 20 or 80 characters costs the
    # same per step (an element mean would shrink with the text's length)
    uniform = [
        guided_attention_loss(torch.full((1, 40, c), 1 / c), torch.tensor([c]), steps, 0.2)
        for c in (20, 80)
    ]
    assert uniform[0] == pytest.approx(float(uniform[1]), rel=0.05) and uniform[0] > 0.4
    # padded steps and characters do not count
    padded = torch.zeros(1, 50, 30)
    padded[:, :40, :20] = across
    padded[:, 40:, 20:] = 1 / 10
    torch.testing.assert_close(guided_attention_loss(padded, lengths, steps, 0.2), expected)


def test_diagonal_score():
    lengths, steps = torch.tensor([20]), torch.tensor([40])
    assert diagonal_score(_diagonal(40, 20)[None], lengths, steps) == pytest.approx(1.0)
    uniform = diagonal_score(torch.full((1, 40, 20), 1 / 20), lengths, steps)
    assert 0.3 < uniform < 0.45
    assert diagonal_score(_diagonal(40, 20).flip(-1)[None], lengths, steps) < 0.3


def test_stop_targets():
    assert stop_targets(torch.tensor([8, 5, 9]), 4, 3).tolist() == [
        [0, 1, 1],
        [0, 1, 1],
        [0, 0, 1],
    ]
    assert stop_targets(torch.tensor([3]), 1, 4).tolist() == [[0, 0, 1, 1]]


def _batch(mels: torch.Tensor, lengths: list[int], r: int) -> TtsBatch:
    steps = mels.shape[1] // r
    mel_lengths = torch.tensor(lengths)
    return TtsBatch(
        tokens=torch.ones(len(lengths), 5, dtype=torch.long),
        token_lengths=torch.tensor([5] * len(lengths)),
        mels=mels,
        mel_lengths=mel_lengths,
        stop_targets=stop_targets(mel_lengths, r, steps),
        texts=["x"] * len(lengths),
        audio=["x"] * len(lengths),
        durations=[1.0] * len(lengths),
    )


def test_tts_loss_masks_padding():
    torch.manual_seed(0)
    mels = torch.randn(2, 12, 4)
    batch = _batch(mels, [12, 7], r=2)
    attention = torch.full((2, 6, 5), 0.2)
    stops = (batch.stop_targets * 20 - 10).clone()  # confident and right
    exact = compute_tts_loss((mels, mels, stops, attention), batch, TtsLossConfig(), 2)
    assert exact["mel"] == 0 and exact["postnet"] == 0 and exact["stop"] < 1e-3
    wrong_padding = mels.clone()
    wrong_padding[1, 7:] += 100.0  # frames past the second utterance's end
    stops[1, 4:] = -10.0  # steps past its end
    loss = compute_tts_loss(
        (wrong_padding, wrong_padding, stops, attention), batch, TtsLossConfig(), 2
    )
    assert loss["mel"] == 0 and loss["stop"] < 1e-3
    off = compute_tts_loss(
        (mels + 1, mels + 2, stops, attention), batch, TtsLossConfig(mel_loss="l1+l2"), 2
    )
    assert off["mel"].item() == pytest.approx(2.0) and off["postnet"].item() == pytest.approx(6.0)
    total = off["mel"] + off["postnet"] + off["stop"] + 2.0 * off["attention"]
    torch.testing.assert_close(off["loss"], total)


def test_png_writer_round_trip(tmp_path):
    alignment = _diagonal(30, 10)
    image = alignment_image(alignment)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    path = write_png(tmp_path / "a.png", image)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (height, width) == image.shape[:2]
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    rows = np.frombuffer(zlib.decompress(data[41 : 41 + idat_length]), np.uint8)
    rows = rows.reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()
    np.testing.assert_array_equal(rows[:, 1:].reshape(height, width, 3), image)
    # first character at the bottom-left, last at the top-right: bright corners there
    assert image[-1, 0].sum() > 400 and image[0, -1].sum() > 400 and image[0, 0].sum() < 300


def test_config_defaults_follow_the_sample_rate(tmp_path):
    config = load_tts_config(None, {"features.sample_rate": 22050})
    assert (config.features.hop_length, config.features.win_length) == (276, 1102)
    assert config.features.n_fft == 2048 and config.features.normalize == "global"
    assert config.train.out_dir == "exp/tts" and config.model.reduction_factor > 1
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"reduction_factor": 3}, "loss": {"nope": 1}}))
    with pytest.raises(SpeechseqError, match="nope"):
        load_tts_config(path)
    with pytest.raises(SpeechseqError, match="mel_loss"):
        load_tts_config(None, {"loss.mel_loss": "l3"})


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
