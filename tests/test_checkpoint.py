"""Release copies of checkpoints (``speechseq.checkpoint.export_checkpoint``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speechseq.checkpoint import (
    asr_state,
    export_checkpoint,
    load_checkpoint,
    load_recognizer,
    save_checkpoint,
)
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.text import CharTokenizer


def _trained_like_checkpoint(path: Path) -> tuple[Recognizer, Path]:
    """A recognizer with non-trivial BatchNorm statistics and a training state, saved as a
    training run saves ``best.pt``."""
    torch.manual_seed(0)
    tokenizer = CharTokenizer()
    model = Recognizer(RecognizerConfig(vocab_size=len(tokenizer), hidden_size=64, num_layers=2))
    model.train()
    with torch.no_grad():  # move the running statistics away from their initial 0 / 1
        for _ in range(3):
            model(torch.randn(4, 120, 80) * 3 + 1, torch.full((4,), 120))
    model.eval()
    state = asr_state(model, FeatureConfig(), tokenizer)
    state["train_state"] = {"step": 7, "optimizer": {"m": torch.zeros(10)}}
    return model, save_checkpoint(state, path)


def test_export_drops_training_state_and_adds_meta(tmp_path):
    _, src = _trained_like_checkpoint(tmp_path / "best.pt")
    dst = export_checkpoint(src, tmp_path / "release.pt", training_hours=1.5)
    state = load_checkpoint(dst)
    assert "train_state" not in state
    assert state["meta"] == {"training_hours": 1.5, "precision": "float32"}
    assert all(v.dtype != torch.float16 for v in state["model"].values())


def test_export_refuses_an_unknown_precision(tmp_path):
    _, src = _trained_like_checkpoint(tmp_path / "best.pt")
    with pytest.raises(SpeechseqError, match="unknown precision 'int4'"):
        export_checkpoint(src, tmp_path / "release.pt", precision="int4")
    assert not (tmp_path / "release.pt").exists()


def test_half_export_halves_the_file_and_decodes_like_the_original(tmp_path):
    model, src = _trained_like_checkpoint(tmp_path / "best.pt")
    full = export_checkpoint(src, tmp_path / "full.pt")
    half = export_checkpoint(src, tmp_path / "half.pt", precision="float16")

    stored = load_checkpoint(half)["model"]
    floats = [v for v in stored.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert stored["frontend.conv.1.num_batches_tracked"].dtype == torch.int64
    assert half.stat().st_size < 0.6 * full.stat().st_size

    loaded, *_ = load_recognizer(half)
    weights = loaded.state_dict().values()
    assert all(p.dtype == torch.float32 for p in weights if p.is_floating_point())
    torch.manual_seed(1)
    features = torch.randn(2, 200, 80) * 3 + 1
    lengths = torch.tensor([200, 150])
    with torch.no_grad():
        want, _ = model(features, lengths)
        got, _ = loaded(features, lengths)
    assert not torch.equal(got, want)  # the weights were rounded…
    assert torch.allclose(got.exp(), want.exp(), atol=1e-2)  # …yet the posteriors agree
    assert (got.argmax(-1) == want.argmax(-1)).float().mean() > 0.98  # near-ties may flip
