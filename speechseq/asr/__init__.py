"""Speech-to-text: experiment config, training, decoding (greedy, beam, the choice between
them), word LMs, alignment and word times, segmentation, the :class:`Transcriber`, folder jobs
and transcript writers.

Example:
    >>> from speechseq.asr.transcriber import Transcriber
"""
