"""When a piece of audio holds no speech to transcribe: every 10 ms frame below -60 dB.

Both transcription paths skip such pieces (:mod:`speechseq.asr.segmentation` for the torch one,
:mod:`speechseq.asr.lite`); torch-free, so the second can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["SILENCE_DB", "is_silence"]

SILENCE_DB = -60.0  # frame RMS in dB full scale below which a 10 ms frame holds no speech
_LEVEL_FLOOR_DB = -100.0  # digital silence, kept finite


def is_silence(samples: np.ndarray | torch.Tensor, sample_rate: int) -> bool:
    """True when every 10 ms frame of (T,) ``samples`` (NumPy, or a CPU tensor) is below
    :data:`SILENCE_DB`: a piece of audio with no speech to transcribe, whatever its length."""
    frame = max(1, round(0.01 * sample_rate))
    if len(samples) == 0:
        return True
    x = np.asarray(samples, dtype=np.float32)  # a float32 CPU tensor: no copy
    whole = len(x) // frame * frame
    # squares in float32, their means in float64 (a tenth of the time of squaring in float64;
    # this runs on every piece of a folder job)
    power = np.square(x[:whole]).reshape(-1, frame).mean(axis=1, dtype=np.float64)  # (N,)
    if whole < len(x):  # the last, partial frame, as if padded with zeros
        power = np.append(power, np.square(x[whole:], dtype=np.float64).sum() / frame)
    loudest = max(float(power.max()), 10 ** (_LEVEL_FLOOR_DB / 10))
    return bool(10 * np.log10(loudest) < SILENCE_DB)
