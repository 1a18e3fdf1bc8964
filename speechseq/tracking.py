"""What a training run writes as it goes, for a person to watch: ``metrics.jsonl`` and,
optionally, TensorBoard's event files with the same scalars plus images and audio.

Example:
    >>> log = MetricsLog(Path("exp/asr/metrics.jsonl"), tensorboard=True)
    >>> log.write({"step": 100, "epoch": 1, "loss": 1.25})
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from speechseq import distributed
from speechseq.errors import SpeechseqError

__all__ = ["MetricsLog", "require_tensorboard"]


def require_tensorboard() -> None:
    """Check that TensorBoard's writer can be used (before a run makes its folder).

    Raises:
        SpeechseqError: the tensorboard package is not installed.
    """
    try:
        import tensorboard  # noqa: F401  (torch's SummaryWriter needs it)
    except ImportError:
        raise SpeechseqError(
            "train.tensorboard needs the tensorboard package: pip install 'speechseq[tensorboard]'"
        ) from None


class MetricsLog:
    """Append-only JSONL a user can plot (``pandas.read_json(path, lines=True)``); rank 0 alone
    writes it. With ``tensorboard``, the same scalars (and any images and audio given) also go
    to a TensorBoard writer in ``path``'s folder, ``tensorboard/``.

    Raises:
        SpeechseqError: ``tensorboard`` asked for, and the package is not installed.
    """

    def __init__(self, path: Path, tensorboard: bool = False) -> None:
        self.path = path
        self._board = None
        if tensorboard and distributed.is_main():
            require_tensorboard()
            from torch.utils.tensorboard import SummaryWriter

            self._board = SummaryWriter(str(path.parent / "tensorboard"))

    def write(self, record: dict) -> None:
        if not distributed.is_main():
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._board is not None:
            step = record.get("step", 0)
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)):
                    self._board.add_scalar(key, value, step)
            self._board.flush()

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An (H, W, 3) uint8 image, for TensorBoard only."""
        if self._board is not None:
            self._board.add_image(tag, image, step, dataformats="HWC")
            self._board.flush()

    def audio(self, tag: str, waveform: torch.Tensor, sample_rate: int, step: int) -> None:
        """(T,) samples, for TensorBoard only."""
        if self._board is not None:
            self._board.add_audio(tag, waveform.clamp(-1, 1), step, sample_rate=sample_rate)
            self._board.flush()
