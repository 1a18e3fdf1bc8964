import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_VOCODER

from speechseq.checkpoint import load_checkpoint, tts_state
from speechseq.data import read_manifest
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor
from speechseq.models import DurationSynthesizer, DurationSynthesizerConfig
from speechseq.text import CharTokenizer
from speechseq.tts.config import tts_feature_config
from speechseq.tts.vocoder import NeuralVocoder
from speechseq.tts.vocoder.data import VocoderCorpus, load_corpus
from speechseq.tts.vocoder.losses import VocoderLoss
from speechseq.tts.vocoder.train import VocoderDataConfig, load_vocoder_config, train_vocoder


def _rows(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_tiny_vocoder_learns_its_recordings(vocoder_path):
    """Copy synthesis of the training recordings: spectral convergence (at the vocoder's STFT)
    from over 0.55 after 100 steps to under 0.5 after 400 (0.41 measured on 1 thread; 0.50
    after 300 on 2), log-mel L1 under 0.65."""
    out_dir = vocoder_path.parent
    dev = [r for r in _rows(out_dir) if "dev_sc" in r]
    assert [r["step"] for r in dev] == [100, 200, 300, 400]
    assert dev[0]["dev_sc"] > 0.55 and dev[-1]["dev_sc"] < 0.5 and dev[-1]["dev_mel"] < 0.65
    assert all("loss" in r and "phase_gd" in r for r in _rows(out_dir) if "dev_sc" not in r)
    assert sorted(p.name for p in (out_dir / "samples").iterdir()) == [
        "step-000100",
        "step-000200",
        "step-000300",
        "step-000400",
    ]
    assert (out_dir / "spectrograms" / "step-000400.png").read_bytes()[:4] == b"\x89PNG"
    state = torch.load(vocoder_path, weights_only=True)
    assert state["format"] == "speechseq-vocoder" and "train_state" not in state
    assert "optimizer" in torch.load(out_dir / "last.pt", weights_only=True)["train_state"]
    vocoder = NeuralVocoder.from_file(vocoder_path)
    assert vocoder(torch.zeros(11, 80)).shape == (10 * 200,)


def _overrides(manifest: Path, out_dir: Path, **more) -> dict:
    return TINY_VOCODER | {
        "data.train_manifest": str(manifest),
        "data.dev_manifest": str(manifest),
        "train.out_dir": str(out_dir),
        "train.max_steps": 12,
        "train.checkpoint_every": 4,
        "validation.every_steps": 6,
        "train.log_every": 2,
        **more,
    }


def test_a_killed_run_resumes_where_it_checkpointed(tmp_path, tts_manifest, monkeypatch):
    """Killed after step 9 (checkpoint at 8), resumed: the same weights as a run never killed."""
    reference = tmp_path / "reference"
    train_vocoder(load_vocoder_config(None, _overrides(tts_manifest, reference)), progress=False)

    calls = {"n": 0}
    forward = VocoderLoss.forward

    def dies_at_step_10(self, *args):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return forward(self, *args)

    killed = tmp_path / "killed"
    config = load_vocoder_config(None, _overrides(tts_manifest, killed))
    monkeypatch.setattr(VocoderLoss, "forward", dies_at_step_10)
    with pytest.raises(KeyboardInterrupt):
        train_vocoder(config, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(killed / "last.pt", None)["train_state"]["step"] == 8
    with pytest.raises(SpeechseqError, match="--resume"):
        train_vocoder(config, progress=False)
    train_vocoder(config, resume=True, progress=False)

    got = load_checkpoint(killed / "last.pt", None)
    want = load_checkpoint(reference / "last.pt", None)
    assert got["train_state"]["step"] == want["train_state"]["step"] == 12
    for name, tensor in want["model"].items():
        torch.testing.assert_close(got["model"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    steps = [r["step"] for r in _rows(killed) if "loss" in r]
    assert steps == sorted(set(steps))  # the rows past step 8 were logged once


def test_predicted_mels_are_the_voices_for_each_recording(tmp_path, tts_manifest):
    """data.predicted_mels: the vocoder reads the voice's teacher-forced mels of a recording,
    frame for frame the recording's own mels' length, and learns to make the recording."""
    torch.manual_seed(0)
    features = tts_feature_config(16000).with_stats(torch.zeros(80), torch.ones(80))
    tokenizer = CharTokenizer()
    config = DurationSynthesizerConfig(
        vocab_size=len(tokenizer), embedding_dim=16, encoder_channels=16, encoder_conv_layers=1,
        duration_channels=16, decoder_dim=16, decoder_layers=1, postnet_channels=16,
        postnet_layers=2, dropout=0.0,
    )  # fmt: skip
    voice = DurationSynthesizer(config).eval()
    voice_path = tmp_path / "voice.pt"
    torch.save(tts_state(voice, features, tokenizer), voice_path)
    utterances = read_manifest(tts_manifest)
    extractor = FeatureExtractor(features)
    data = VocoderDataConfig(train_manifest=str(tts_manifest), voice=str(voice_path))
    own = load_corpus(str(tts_manifest), features, data, None, progress=False)
    durations = tmp_path / "durations.jsonl"
    with durations.open("w") as f:
        for utt, mel in zip(utterances, own.features, strict=True):
            chars = len(tokenizer.encode(utt.text))
            frames = [mel.shape[0] // chars] * chars
            frames[-1] += mel.shape[0] - sum(frames)
            record = {"audio": utt.audio, "frames": mel.shape[0], "durations": frames}
            f.write(json.dumps(record) + "\n")
    data = VocoderDataConfig(
        train_manifest=str(tts_manifest), voice=str(voice_path), predicted_mels=True
    )
    theirs = load_corpus(str(tts_manifest), features, data, str(durations), progress=False)
    assert len(theirs) == len(own) == len(utterances)
    for mine, predicted, wave, other in zip(
        own.features, theirs.features, theirs.waveforms, own.waveforms, strict=True
    ):
        assert predicted.shape == mine.shape and not torch.allclose(predicted, mine)
        torch.testing.assert_close(wave, other)  # the same recording, trimmed the same way
        torch.testing.assert_close(mine, extractor(wave))
    mixed = dataclasses.replace(data, real_mel_share=0.5)
    both = load_corpus(str(tts_manifest), features, mixed, str(durations), progress=False)
    assert both.real_features is not None and both.real_share == 0.5
    for mine, real in zip(own.features, both.real_features, strict=True):
        torch.testing.assert_close(real, mine)

    overrides = _overrides(tts_manifest, tmp_path / "run", **{"train.max_steps": 4})
    overrides |= {
        "data.voice": str(voice_path),
        "data.predicted_mels": True,
        "data.train_durations": str(durations),
        "data.dev_durations": str(durations),
    }
    best = train_vocoder(load_vocoder_config(None, overrides), progress=False)
    saved = load_checkpoint(best, "speechseq-vocoder")
    assert saved["feature_config"] == features.to_dict()  # the voice's features, statistics too


def test_a_share_of_segments_is_cut_from_the_real_mels():
    """data.real_mel_share: each segment comes whole from the real mels with that chance,
    and the samples it is paired with are the same either way."""
    predicted = [torch.zeros(50, 4), torch.zeros(90, 4)]
    real = [torch.ones(50, 4), torch.ones(90, 4)]
    waves = [torch.randn(50 * 10), torch.randn(90 * 10)]
    for share, low, high in ((0.0, 0, 0), (0.3, 0.2, 0.4), (1.0, 1, 1)):
        corpus = VocoderCorpus(predicted, waves, 10, real, share)
        feats, target, _ = corpus.batch(400, 20, 16, torch.Generator().manual_seed(0))
        means = feats.mean(dim=(1, 2))
        assert bool(((means == 0) | (means == 1)).all())  # never a segment of both
        assert low <= float(means.mean()) <= high
        plain = VocoderCorpus(predicted, waves, 10)
        if share == 0.0:  # the same draws as a corpus without real mels
            torch.testing.assert_close(
                target, plain.batch(400, 20, 16, torch.Generator().manual_seed(0))[1]
            )


def test_config_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(SpeechseqError, match="train_manifest is required"):
        load_vocoder_config(None, {})
    with pytest.raises(SpeechseqError, match="predicted_mels needs voice"):
        load_vocoder_config(None, {"data.train_manifest": "x", "data.predicted_mels": True})
    with pytest.raises(SpeechseqError, match="real_mel_share is for predicted_mels"):
        load_vocoder_config(None, {"data.train_manifest": "x", "data.real_mel_share": 0.5})
    with pytest.raises(SpeechseqError, match="between 0 and 1"):
        load_vocoder_config(None, {"data.train_manifest": "x", "data.real_mel_share": 1.5})
    with pytest.raises(SpeechseqError, match="best_by pesq needs pesq"):
        load_vocoder_config(None, {"data.train_manifest": "x", "validation.best_by": "pesq"})
    with pytest.raises(SpeechseqError, match="unknown key"):
        load_vocoder_config(None, {"data.train_manifest": "x", "model.width": 3})
