"""A recognizer's acoustic model as ONNX, and ONNX files as recognizers.

The ONNX file maps features to CTC log-probs, as :class:`~speechseq.models.Recognizer` does:

    inputs:  features (B, T, n_mels) float32, lengths (B,) int64
    outputs: log_probs (B, T', vocab) float32, out_lengths (B,) int64

Its metadata (``metadata_props``) holds what the rest of the pipeline needs, as JSON:
``speechseq_format``, ``model_config``, ``feature_config`` and ``tokenizer`` (the same dicts a
checkpoint holds), so an ONNX file alone transcribes: ``speechseq transcribe --model
model.onnx`` (features and decoding in speechseq, the network in ONNX Runtime). The network
computes in float32: ONNX Runtime's int8 quantizer leaves GRUs in float32, and its int8 model
ran slower than the float32 one here. An int8 checkpoint's weight matrices are stored as their
int8 integers and per-row scales, turned back into float32 (a Cast and a Mul that ONNX Runtime
folds when it loads the file), so the file is as small as the checkpoint and its weights are
exactly the checkpoint's.

Exporting needs the ``onnx`` package (``pip install 'speechseq[onnx]'``); running needs only
``onnxruntime``, which speechseq depends on: a short job's network runs in it without torch
(:mod:`speechseq.asr.lite`).

Example:
    >>> export_onnx("asr.pt", "asr.onnx")
    >>> model, features, tokenizer, _ = load_onnx_recognizer("asr.onnx")
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path

import numpy as np
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
        _store_int8(proto)
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))
    return Path(out)


def _int8_rows(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``weight`` as int8 integers times a float32 scale per slice along ``axis`` (the scale
    makes each slice's largest magnitude 127), if that holds it exactly (to float32
    rounding); None otherwise. True of an int8 checkpoint's weights, dequantized."""
    peak = np.abs(weight).max(axis=axis, keepdims=True)
    scale = (peak / 127).astype(np.float32)
    integers = np.round(weight / np.where(scale == 0, 1, scale))
    if np.abs(integers.astype(np.float32) * scale - weight).max() > 1e-6 * max(peak.max(), 1e-12):
        return None
    return integers.astype(np.int8), scale


def _store_int8(proto) -> None:
    """Store each float32 weight matrix of ``proto`` that is exactly int8 integers times a scale
    per row (or per column: the exporter transposes linear layers) as those integers and
    scales, with a Cast and a Mul giving the float32 matrix back under its own name."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    kept, nodes = [], []
    for init in graph.initializer:
        weight = numpy_helper.to_array(init)
        found = None
        if weight.dtype == np.float32 and weight.ndim >= 2 and weight.size >= 4096:
            found = _int8_rows(weight, weight.ndim - 1) or _int8_rows(weight, 0)
        if found is None:
            kept.append(init)
            continue
        integers, scale = found
        name = init.name
        kept += [
            numpy_helper.from_array(integers, f"{name}.int8"),
            numpy_helper.from_array(scale, f"{name}.scale"),
        ]
        nodes += [
            helper.make_node("Cast", [f"{name}.int8"], [f"{name}.float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{name}.float", f"{name}.scale"], [name]),
        ]
    old = list(graph.node)
    del graph.initializer[:], graph.node[:]
    graph.initializer.extend(kept)
    graph.node.extend(nodes + old)  # topological order: the weights before their users


class OnnxRecognizer(nn.Module):
    """An ONNX acoustic model in ONNX Runtime, called like a :class:`Recognizer` (CPU).

    Args:
        session: the file's ONNX Runtime session (:func:`speechseq.asr.lite.read_onnx_recognizer`).
        config: its recognizer config (frame rate, vocabulary).
    """

    def __init__(self, session, config: RecognizerConfig):
        super().__init__()
        self.session = session
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
    path: str | Path, threads: int | None = None
) -> tuple[OnnxRecognizer, FeatureConfig, Tokenizer, dict]:
    """Rebuild a recognizer from an ONNX file of :func:`export_onnx` alone.

    Args:
        path: the ONNX file.
        threads: ONNX Runtime's intra-op threads; default: torch's thread count.

    Returns:
        model, feature config, tokenizer and the metadata as a checkpoint-like dict.

    Raises:
        SpeechseqError: missing, not ONNX, or without speechseq's metadata.
    """
    from speechseq.asr.lite import read_onnx_recognizer

    session, state = read_onnx_recognizer(path, threads or torch.get_num_threads())
    model = OnnxRecognizer(session, RecognizerConfig.from_dict(state["model_config"]))
    return (
        model,
        FeatureConfig.from_dict(state["feature_config"]),
        tokenizer_from_dict(state["tokenizer"]),
        {**state, "model": {}},
    )
