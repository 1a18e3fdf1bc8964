"""A recognizer's acoustic model as ONNX, and ONNX files as recognizers.

The ONNX file maps features to CTC log-probs, as :class:`~speechseq.models.Recognizer` does:

    inputs:  features (B, T, n_mels) float32, lengths (B,) int64
    outputs: log_probs (B, T', vocab) float32, out_lengths (B,) int64

Its metadata (``metadata_props``) holds what the rest of the pipeline needs, as JSON:
``speechseq_format``, ``model_config``, ``feature_config`` and ``tokenizer`` (the same dicts a
checkpoint holds), so an ONNX file alone transcribes: ``speechseq transcribe --model
model.onnx`` (features and decoding in speechseq, the network in ONNX Runtime). Weights are
float32: ONNX Runtime's int8 quantizer leaves GRUs in float32, and its int8 model ran slower
than the float32 one here.

Exporting needs the ``onnx`` package and running needs ``onnxruntime``: ``pip install
'speechseq[onnx]'``.

Example:
    >>> export_onnx("asr.pt", "asr.onnx")
    >>> model, features, tokenizer, _ = load_onnx_recognizer("asr.onnx")
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.files import atomic_path, quiet_native_stderr
from speechseq.models import RecognizerConfig
from speechseq.text import Tokenizer, tokenizer_from_dict

__all__ = ["OPSET", "OnnxRecognizer", "export_onnx", "load_onnx_recognizer", "require"]

OPSET = 17
_INSTALL = "pip install 'speechseq[onnx]'"


def require(module: str, what: str):
    """``module`` imported, or a SpeechseqError saying which extra to install for ``what``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SpeechseqError(f"{what} needs the {module} package: {_INSTALL}") from None


def export_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """Write a recognizer checkpoint's acoustic model (float32) as ONNX, its configs and
    tokenizer in the metadata.

    Returns:
        ``out``.

    Raises:
        SpeechseqError: not a recognizer checkpoint, or the ``onnx`` package is missing.
    """
    from speechseq.checkpoint import ASR_FORMAT, load_recognizer

    onnx = require("onnx", "ONNX export")
    model, _, _, state = load_recognizer(checkpoint, int8_kernels=False)
    features = torch.randn(2, 300, model.config.n_mels)  # (B, T, n_mels)
    lengths = torch.tensor([300, 200])
    meta = {
        "speechseq_format": ASR_FORMAT,
        "model_config": json.dumps(state["model_config"]),
        "feature_config": json.dumps(state["feature_config"]),
        "tokenizer": json.dumps(state["tokenizer"]),
    }
    with atomic_path(out) as tmp, warnings.catch_warnings(), quiet_native_stderr():
        # the TorchScript exporter (dynamo=False) warns about GRUs over packed sequences and
        # its own deprecation; torch.export cannot trace pack_padded_sequence yet
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (features, lengths),
            str(tmp),
            input_names=["features", "lengths"],
            output_names=["log_probs", "out_lengths"],
            dynamic_axes={
                "features": {0: "batch", 1: "frames"},
                "lengths": {0: "batch"},
                "log_probs": {0: "batch", 1: "out_frames"},
                "out_lengths": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))
    return Path(out)


class OnnxRecognizer(nn.Module):
    """An ONNX acoustic model in ONNX Runtime, called like a :class:`Recognizer` (CPU).

    Args:
        path: the ONNX file (from :func:`export_onnx`).
        config: its recognizer config (frame rate, vocabulary).
        threads: ONNX Runtime's intra-op threads; default: torch's thread count.
    """

    def __init__(self, path: str | Path, config: RecognizerConfig, threads: int | None = None):
        super().__init__()
        ort = require("onnxruntime", "an ONNX model")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.config = config

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`Recognizer.forward`: (B, T, n_mels), (B,) → (B, T', V) log-probs, (B,)."""
        log_probs, out_lengths = self.session.run(
            None,
            {
                "features": features.detach().cpu().float().numpy(),
                "lengths": lengths.detach().cpu().long().numpy(),
            },
        )
        return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)


def load_onnx_recognizer(
    path: str | Path,
) -> tuple[OnnxRecognizer, FeatureConfig, Tokenizer, dict]:
    """Rebuild a recognizer from an ONNX file of :func:`export_onnx` alone.

    Returns:
        model, feature config, tokenizer and the metadata as a checkpoint-like dict.

    Raises:
        SpeechseqError: missing, not ONNX, or without speechseq's metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechseqError(f"{path}: no such model file")
    ort = require("onnxruntime", "an ONNX model")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for a file it cannot read
        raise SpeechseqError(f"{path}: not an ONNX model ({str(err).splitlines()[0]})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if "model_config" not in meta:
        raise SpeechseqError(f"{path}: an ONNX model without speechseq's metadata")
    state = {k: json.loads(v) if k != "speechseq_format" else v for k, v in meta.items()}
    config = RecognizerConfig.from_dict(state["model_config"])
    model = OnnxRecognizer(path, config)
    return (
        model,
        FeatureConfig.from_dict(state["feature_config"]),
        tokenizer_from_dict(state["tokenizer"]),
        {**state, "model": {}},
    )
