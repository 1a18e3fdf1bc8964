"""A recognizer's network as ONNX (``speechseq.asr.onnx``), run in ONNX Runtime."""

from __future__ import annotations

import pytest
import torch

from speechseq.asr.onnx import OnnxRecognizer, export_onnx, load_onnx_recognizer
from speechseq.checkpoint import asr_state, save_checkpoint
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.text import CharTokenizer

# float32 in both; the ONNX GRU and the padded batch reorder sums, so allow rounding-level error
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Recognizer, object]:
    torch.manual_seed(0)
    tokenizer = CharTokenizer()
    model = Recognizer(RecognizerConfig(vocab_size=len(tokenizer), hidden_size=48, num_layers=2))
    model.train()
    with torch.no_grad():  # BatchNorm statistics away from 0 / 1
        model(torch.randn(4, 120, 80) * 3 + 1, torch.full((4,), 120))
    model.eval()
    folder = tmp_path_factory.mktemp("onnx")
    src = save_checkpoint(asr_state(model, FeatureConfig(), tokenizer), folder / "best.pt")
    return model, export_onnx(src, folder / "best.onnx")


@pytest.mark.parametrize("lengths", [[500], [333, 120, 47]], ids=["one", "padded batch"])
def test_onnx_runtime_matches_torch(exported, lengths):
    model, path = exported
    onnx_model, features_config, tokenizer, meta = load_onnx_recognizer(path)
    assert isinstance(onnx_model, OnnxRecognizer)
    assert onnx_model.config == model.config and features_config == FeatureConfig()
    assert len(tokenizer) == len(CharTokenizer()) and meta["speechseq_format"] == "speechseq-asr"
    torch.manual_seed(3)
    lengths = torch.tensor(lengths)
    features = torch.randn(len(lengths), int(lengths.max()), 80) * 3 + 1  # (B, T, n_mels)
    with torch.no_grad():
        want, want_lengths = model(features, lengths)
    got, got_lengths = onnx_model(features, lengths)
    assert torch.equal(got_lengths, want_lengths)
    for b, n in enumerate(want_lengths.tolist()):  # padding frames are garbage in both
        assert (got[b, :n] - want[b, :n]).abs().max() < TOLERANCE


def test_a_file_that_is_not_speechseq_onnx_is_one_clear_error(exported, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(SpeechseqError, match="not an ONNX model"):
        load_onnx_recognizer(bad)
    import onnx

    _, path = exported
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(SpeechseqError, match="without speechseq's metadata"):
        load_onnx_recognizer(bare)
    with pytest.raises(SpeechseqError, match="no such model file"):
        load_onnx_recognizer(tmp_path / "missing.onnx")
