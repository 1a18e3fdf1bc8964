"""Vocoders: mel frames → waveform, behind one :class:`Vocoder` interface.

- :class:`GriffinLimVocoder`: no training; iterative phase recovery (phasey, metallic).
- :class:`NeuralVocoder`: a trained :class:`~speechseq.models.vocoder.IstftVocoder` that predicts
  the STFT's magnitude and phase (:mod:`speechseq.tts.vocoder.train` trains one).

:func:`choose_vocoder` picks one for a voice: the voice checkpoint's own (a neural vocoder it
carries) unless told ``griffin-lim`` or a vocoder file.
"""

from speechseq.tts.vocoder.base import Vocoder, log_mel_of, mel_to_power
from speechseq.tts.vocoder.griffin_lim import GriffinLimVocoder
from speechseq.tts.vocoder.neural import GRIFFIN_LIM, NeuralVocoder, choose_vocoder

__all__ = [
    "GRIFFIN_LIM",
    "GriffinLimVocoder",
    "NeuralVocoder",
    "Vocoder",
    "choose_vocoder",
    "log_mel_of",
    "mel_to_power",
]
