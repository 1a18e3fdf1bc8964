"""How close a vocoder's audio is to the audio its mels came from: copy synthesis, PESQ, STOI and
mel-cepstral distortion, for ``benchmarks/tts.py --stages``.

Copy synthesis turns a recording into the voice's log-mel features (its own
``FeatureConfig``) and back into audio with a vocoder: what the vocoder alone loses, with no
acoustic model in the way. PESQ (wideband, ITU-T P.862.2; the ``pesq`` package) and STOI (the
``pystoi`` package) compare the result with the recording, sample for sample: both are in the
``bench`` extra. Mel-cepstral distortion here is the DCT of the two log-mel spectrograms
(coefficients 1-13, c0 left out), ``10 / ln 10 * sqrt(2 * sum of squared differences)`` per
frame, averaged over the frames within 40 dB of the recording's loudest, with both spectrograms
floored 40 dB below the recording's loudest bin (silence and empty bands, at the log floor, would
swamp it with the log of noise): an approximation of MCD on mel-generalised cepstra, lower is
closer, and like them it ignores phase (Griffin-Lim's weak point), which PESQ does not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
import torchaudio

from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.tts.vocoder import Vocoder

PESQ_RATE = 16000  # wideband PESQ is defined at 16 kHz
MCD_COEFFICIENTS = 13
SPEECH_DB = 40.0  # MCD counts the frames within this of the reference's loudest


def copy_synthesis(
    waveforms: Sequence[torch.Tensor], vocoder: Vocoder, config: FeatureConfig
) -> tuple[list[torch.Tensor], list[float]]:
    """Each (T,) recording (at ``config.sample_rate``) to features and back through
    ``vocoder``; returns the waveforms and the vocoder's seconds for each."""
    extractor = FeatureExtractor(config)
    out, seconds = [], []
    with torch.no_grad():
        for waveform in waveforms:
            features = extractor(waveform)  # (frames, n_mels)
            started = time.perf_counter()
            out.append(vocoder(features[None])[0])  # (T',)
            seconds.append(time.perf_counter() - started)
    return out, seconds


def _aligned(reference: torch.Tensor, degraded: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    n = min(reference.numel(), degraded.numel())
    return reference[:n].double().numpy(), degraded[:n].double().numpy()


def pesq_wb(reference: torch.Tensor, degraded: torch.Tensor) -> float:
    """Wideband PESQ (MOS-LQO, 1.0-4.6) of two (T,) waveforms at 16 kHz."""
    from pesq import pesq  # pyright: ignore[reportMissingImports]  # the bench extra

    return float(pesq(PESQ_RATE, *_aligned(reference, degraded), "wb"))


def stoi(reference: torch.Tensor, degraded: torch.Tensor, rate: int) -> float:
    """Short-time objective intelligibility (0-1) of two (T,) waveforms."""
    from pystoi import stoi as _stoi  # pyright: ignore[reportMissingImports]  # the bench extra

    return float(_stoi(*_aligned(reference, degraded), rate, extended=False))


def mel_cepstral_distortion(
    reference: torch.Tensor, degraded: torch.Tensor, config: FeatureConfig
) -> float:
    """Mean MCD in dB over the frames of two (T,) waveforms (module docstring: how)."""
    extractor = FeatureExtractor(replace(config, normalize="none", mean=(), std=()))
    a, b = extractor(reference), extractor(degraded)  # (frames, n_mels) natural-log mels each
    frames = min(a.shape[0], b.shape[0])
    a, b = a[:frames], b[:frames]
    energy = a.exp().sum(dim=1)  # (frames,) the reference's mel energy
    speech = energy > energy.max() * 10 ** (-SPEECH_DB / 10)  # near-silent frames left out
    # bins far below the loudest carry no envelope, only the log of noise: floor both there
    floor = float(a.max()) - SPEECH_DB / 10 * math.log(10)
    a, b = a.clamp(min=floor), b.clamp(min=floor)
    dct = torchaudio.functional.create_dct(MCD_COEFFICIENTS + 1, config.n_mels, "ortho")
    diff = (a[speech] - b[speech]) @ dct  # (speech frames, 14)
    per_frame = math.sqrt(2) * diff[:, 1:].pow(2).sum(dim=1).sqrt()  # c0 left out
    return float(10 / math.log(10) * per_frame.mean())
