"""Text-to-speech: experiment config, losses, training, character durations, vocoders, plots,
the :class:`Speaker` and synthesis jobs. It may use :mod:`speechseq.asr` (durations by forced
alignment, the recognizer that listens during validation); :mod:`speechseq.asr` never uses it.

Example:
    >>> from speechseq.tts.speaker import Speaker
"""
