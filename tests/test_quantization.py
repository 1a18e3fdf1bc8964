"""int8 release copies (``speechseq.quantization``): plain int8 tensors in the file, torch's int8
kernels at run time, float32 when a torch has none."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.ao.nn.quantized import dynamic as nnqd

from speechseq import quantization
from speechseq.checkpoint import (
    asr_state,
    export_checkpoint,
    load_checkpoint,
    load_recognizer,
    load_synthesizer,
    save_checkpoint,
    tts_state,
)
from speechseq.features import FeatureConfig
from speechseq.models import DurationSynthesizer, DurationSynthesizerConfig
from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.text import CharTokenizer


def _recognizer_checkpoint(path: Path) -> tuple[Recognizer, Path]:
    torch.manual_seed(0)
    tokenizer = CharTokenizer()
    model = Recognizer(RecognizerConfig(vocab_size=len(tokenizer), hidden_size=64, num_layers=2))
    model.train()
    with torch.no_grad():  # BatchNorm statistics away from 0 / 1
        for _ in range(3):
            model(torch.randn(4, 120, 80) * 3 + 1, torch.full((4,), 120))
    model.eval()
    return model, save_checkpoint(asr_state(model, FeatureConfig(), tokenizer), path)


def _features() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(3, 240, 80) * 3 + 1, torch.tensor([240, 200, 90])  # (B, T, n_mels), (B,)


def test_int8_file_holds_plain_int8_tensors_a_scale_per_row(tmp_path):
    model, src = _recognizer_checkpoint(tmp_path / "best.pt")
    dst = export_checkpoint(src, tmp_path / "int8.pt", precision="int8")
    state = load_checkpoint(dst)  # weights_only=True
    scales = state["int8"]["scales"]
    assert set(scales) == {
        *(
            f"rnn.weight_{kind}_l{layer}{d}"
            for kind in ("ih", "hh")
            for layer in (0, 1)
            for d in ("", "_reverse")
        ),
        "output.weight",
    }
    original = model.state_dict()
    for name, scale in scales.items():
        ints = state["model"][name]
        assert ints.dtype == torch.int8 and scale.shape == (ints.shape[0],)
        assert ints.abs().amax(dim=1).eq(127).all()  # each row's largest weight is ±127
        error = (ints.float() * scale[:, None] - original[name]).abs()
        assert (error <= scale[:, None] / 2 + 1e-7).all()  # rounded to the nearest step
    assert state["model"]["frontend.conv.0.weight"].dtype == torch.float32  # convolutions stay
    assert dst.stat().st_size < 0.4 * src.stat().st_size


def test_int8_model_runs_the_stored_integers_on_int8_kernels(tmp_path):
    model, src = _recognizer_checkpoint(tmp_path / "best.pt")
    dst = export_checkpoint(src, tmp_path / "int8.pt", precision="int8")
    loaded, *_, state = load_recognizer(dst)
    assert isinstance(loaded.rnn, nnqd.GRU) and isinstance(loaded.output, nnqd.Linear)
    # the kernels hold exactly the file's integers: nothing was quantized a second time
    stored = loaded.output.weight().int_repr()  # pyright: ignore[reportCallIssue]
    assert torch.equal(stored, state["model"]["output.weight"])
    features, lengths = _features()
    with torch.no_grad():
        want, want_lengths = model(features, lengths)
        got, got_lengths = loaded(features, lengths)
    assert torch.equal(got_lengths, want_lengths)
    valid = torch.arange(want.shape[1])[None] < want_lengths[:, None]  # (B, T')
    assert (got.exp() - want.exp())[valid].abs().max() < 0.05
    # an untrained model's posteriors are near-uniform, so near-ties flip; the shipped models'
    # transcripts are compared in tests/cli/test_export.py
    assert (got.argmax(-1) == want.argmax(-1))[valid].float().mean() > 0.9


def test_without_int8_kernels_the_weights_run_in_float32(tmp_path, monkeypatch, caplog):
    model, src = _recognizer_checkpoint(tmp_path / "best.pt")
    dst = export_checkpoint(src, tmp_path / "int8.pt", precision="int8")
    monkeypatch.setattr(quantization, "int8_runtime_available", lambda: False)
    logging.getLogger("speechseq").addHandler(caplog.handler)  # the CLI's tests stop propagation
    try:
        loaded, *_, state = load_recognizer(dst)
    finally:
        logging.getLogger("speechseq").removeHandler(caplog.handler)
    assert isinstance(loaded.rnn, torch.nn.GRU)
    assert "no dynamic int8 kernels" in caplog.text
    scales = state["int8"]["scales"]
    want = state["model"]["output.weight"].float() * scales["output.weight"][:, None]
    assert torch.equal(loaded.output.weight, want)
    gpu_ready, *_ = load_recognizer(dst, int8_kernels=False)  # as for a GPU: float32 layers
    assert isinstance(gpu_ready.rnn, torch.nn.GRU)


def test_re_exporting_an_int8_copy_keeps_its_integers(tmp_path):
    _, src = _recognizer_checkpoint(tmp_path / "best.pt")
    once = export_checkpoint(src, tmp_path / "once.pt", precision="int8")
    twice = export_checkpoint(once, tmp_path / "twice.pt", precision="int8")
    a, b = load_checkpoint(once), load_checkpoint(twice)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["int8"]["scales"])


def test_int8_voice_speaks_like_its_float32_original(tmp_path):
    torch.manual_seed(0)
    tokenizer = CharTokenizer()
    config = DurationSynthesizerConfig(
        vocab_size=len(tokenizer),
        encoder_channels=64,
        duration_channels=32,
        decoder_dim=64,
        postnet_channels=32,
    )
    model = DurationSynthesizer(config).eval()
    src = save_checkpoint(tts_state(model, FeatureConfig(), tokenizer), tmp_path / "voice.pt")
    dst = export_checkpoint(src, tmp_path / "voice-int8.pt", precision="int8")
    loaded, *_ = load_synthesizer(dst)
    assert isinstance(loaded.decoder, nnqd.LSTM)
    tokens = torch.tensor([tokenizer.encode("the cat sat on the mat")])
    lengths = torch.tensor([tokens.shape[1]])
    with torch.no_grad():
        torch.manual_seed(2)
        want = model.infer(tokens, lengths)[0]
        torch.manual_seed(2)
        got = loaded.infer(tokens, lengths)[0]
    assert got.shape == want.shape
    assert (got - want).abs().mean() < 0.05 * want.abs().mean()


@pytest.mark.parametrize("precision", ["float16", "int8"])
def test_fine_tuning_starts_from_a_release_copy(tmp_path, precision):
    from speechseq.quantization import dequantize_state

    model, src = _recognizer_checkpoint(tmp_path / "best.pt")
    copy = load_checkpoint(export_checkpoint(src, tmp_path / "r.pt", precision=precision))
    weights = dequantize_state(copy)
    assert all(v.dtype != torch.int8 for v in weights.values())
    fresh = Recognizer(model.config)
    fresh.load_state_dict(weights)  # what fine-tuning (train.init_from) loads
