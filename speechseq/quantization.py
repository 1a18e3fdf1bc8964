"""int8 weights for fast CPU inference: the GRU, LSTM and linear layers of a model.

A checkpoint's int8 weights are plain ``torch.int8`` tensors, one float32 scale per output row
(symmetric: ``weight ≈ int8 * scale``), so it still loads with ``weights_only=True`` and does
not depend on how a given torch runs int8 maths:

    state["model"]["rnn.weight_ih_l0"]   int8 (3H, D)
    state["int8"] = {"scheme": "symmetric, per output row",
                     "scales": {"rnn.weight_ih_l0": float32 (3H,), ...}}

At load, :func:`dequantize_state` turns them back into float32 weights (``int8 * scale``, the
same numbers whichever runtime follows), and :func:`to_int8_runtime` swaps the layers for
torch's dynamically quantized ones (int8 weights, activations quantized on the fly; fbgemm
kernels), built from the stored integers without quantizing again. On the shipped recognizer
that runs the acoustic model 2.5× faster than float32 on a 2-core CPU.

Why this split: torch 2.14 deprecates both ``torch.ao.quantization`` and the quantized dtypes
(``torch.qint8``) those kernels take, pointing to plain int8 tensors with scales kept by the
model code, which is what the file holds. torchao, the named successor, quantizes linear layers
only (no GRU or LSTM), and ONNX Runtime's int8 leaves its GRU in float32 (measured slower than
its float32 model here). When a torch no longer has the dynamic kernels, the model runs on the
dequantized float32 weights: the same transcripts, at float32 speed.

Example:
    >>> state["model"], state["int8"] = quantize_state(model)        # export
    >>> model.load_state_dict(dequantize_state(state)); to_int8_runtime(model, state)
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

__all__ = [
    "INT8_LAYERS",
    "dequantize_state",
    "int8_runtime_available",
    "quantize_state",
    "to_int8_runtime",
]

log = logging.getLogger("speechseq")

SCHEME = "symmetric, per output row"
# the layers whose weight matrices become int8 (convolutions and embeddings stay float)
INT8_LAYERS = (nn.GRU, nn.LSTM, nn.Linear, nn.LSTMCell, nn.GRUCell)


def _weight_names(module: nn.Module) -> list[str]:
    """The weight matrices of an INT8_LAYERS module (biases stay float)."""
    return [name for name, _ in module.named_parameters(recurse=False) if name.startswith("weight")]


def quantize_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict]:
    """The model's state with the weight matrices of its GRU, LSTM and linear layers in int8.

    Returns:
        the state dict (int8 weights, everything else as it was) and the ``int8`` entry of a
        checkpoint: ``{"scheme": ..., "scales": {name: (rows,) float32}}``.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    scales: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules():
        if not isinstance(module, INT8_LAYERS):
            continue
        for name in _weight_names(module):
            key = f"{prefix}.{name}" if prefix else name
            weight = state[key].float()  # (rows, columns)
            scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127  # (rows,)
            state[key] = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
            scales[key] = scale
    return state, {"scheme": SCHEME, "scales": scales}


def dequantize_state(state: dict) -> dict[str, torch.Tensor]:
    """A checkpoint's model weights in float32 (``int8 * scale``; float ones as they are)."""
    scales = state.get("int8", {}).get("scales", {})
    return {
        k: v.float() * scales[k][:, None] if k in scales else v for k, v in state["model"].items()
    }


def int8_runtime_available() -> bool:
    """Whether this torch has the dynamic int8 kernels (fbgemm) that make int8 weights fast."""
    try:
        import torch.ao.nn.quantized.dynamic  # noqa: F401
    except ImportError:
        return False
    return "fbgemm" in torch.backends.quantized.supported_engines


def _qweight(ints: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros(len(scale), dtype=torch.long)
    make = torch._make_per_channel_quantized_tensor  # pyright: ignore[reportPrivateImportUsage]
    return make(ints, scale.double(), zero, 0)


def _int8_module(module: nn.Module, weights: dict[str, torch.Tensor]) -> nn.Module:
    """The dynamically quantized twin of one float module, with ``weights`` (name → qint8)."""
    from torch.ao.nn.quantized import dynamic as nnqd

    biases = {
        n: p.detach() for n, p in module.named_parameters(recurse=False) if n.startswith("bias")
    }
    if isinstance(module, nn.Linear):
        q = nnqd.Linear(module.in_features, module.out_features, dtype=torch.qint8)
        q.set_weight_bias(weights["weight"], biases.get("bias"))
        return q
    if isinstance(module, (nn.GRU, nn.LSTM)):
        cls = nnqd.GRU if isinstance(module, nn.GRU) else nnqd.LSTM
        args = (module.input_size, module.hidden_size, module.num_layers, module.bias)
        q = cls(*args, module.batch_first, 0.0, module.bidirectional, dtype=torch.qint8)
        q.set_weight_bias({**weights, **biases})
        return q
    cls = nnqd.LSTMCell if isinstance(module, nn.LSTMCell) else nnqd.GRUCell
    q = cls(module.input_size, module.hidden_size, bool(module.bias), dtype=torch.qint8)
    q.set_weight_bias({"weight": weights, "bias": biases})
    return q


def to_int8_runtime(model: nn.Module, state: dict) -> nn.Module:
    """Swap the model's int8-stored layers for torch's dynamically quantized ones, in place,
    built from ``state`` (an int8 checkpoint: its ``model`` integers and ``int8`` scales), so
    nothing is quantized a second time. ``model`` holds the dequantized weights
    (:func:`dequantize_state`) for the layers that stay float. Without the int8 kernels (see
    :func:`int8_runtime_available`) it logs that and leaves the float32 layers: same results,
    float32 speed.

    Returns:
        ``model``.
    """
    if not int8_runtime_available():
        log.warning("this torch has no dynamic int8 kernels: running int8 weights in float32")
        return model
    scales = state["int8"]["scales"]
    swaps = []
    for prefix, module in model.named_modules():
        names = [n for n in _weight_names(module) if f"{prefix}.{n}" in scales]
        if isinstance(module, INT8_LAYERS) and names:
            swaps.append((prefix, module, names))
    with warnings.catch_warnings():
        # torch 2.14 warns that quantized dtypes are deprecated (see the module docstring)
        warnings.simplefilter("ignore", UserWarning)
        for prefix, module, names in swaps:
            keys = {n: f"{prefix}.{n}" for n in names}
            qweights = {n: _qweight(state["model"][k], scales[k]) for n, k in keys.items()}
            parent_name, _, child = prefix.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, _int8_module(module, qweights))
    return model
