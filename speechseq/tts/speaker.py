"""Speaker: text → speech with a trained synthesizer and a vocoder.

Text of any length is split into sentences (long ones further at commas, then between words),
each is normalised like training transcripts (:func:`~speechseq.text.normalize_text`), the
sentences are generated in batches, vocoded, and joined with a short pause;
:meth:`Speaker.speak_to_file` writes each batch to the file as it is made.

Example:
    >>> from speechseq.tts.speaker import Speaker
    >>> speaker = Speaker.from_pretrained()            # the shipped voice
    >>> waveform, sample_rate = speaker.synthesize("Hello world. This is speechseq.")
    >>> save_audio("hello.wav", waveform, sample_rate)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechseq.audio import AudioWriter
from speechseq.checkpoint import load_synthesizer, precision
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig
from speechseq.models import Synthesizer
from speechseq.pretrained import voice_path
from speechseq.text import Tokenizer, expand_abbreviations, normalize_text
from speechseq.tts.vocoder import GriffinLimVocoder, Vocoder, choose_vocoder

__all__ = ["Speaker", "Synthesis", "split_sentences"]

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def _chunk_words(text: str, max_chars: int) -> list[str]:
    chunks, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > max_chars:
            chunks.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return chunks + ([current] if current else [])


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """Normalised sentences of ``text``, none longer than ``max_chars`` characters.

    Sentences end at ``.``, ``!``, ``?`` or a line break; one that is still too long once
    normalised is cut at commas, semicolons and colons, then between words. Pieces with nothing
    speakable are dropped.

    Example:
        >>> split_sentences("Hello, world! It's 5 o'clock.")
        ['hello world', "it's five o'clock"]
    """
    out: list[str] = []
    for sentence in _SENTENCE_END.split(expand_abbreviations(text)):  # "Dr." ends no sentence
        normalised = normalize_text(sentence)
        if len(normalised) <= max_chars:
            out += [normalised] if normalised else []
            continue
        for clause in _CLAUSE_END.split(sentence):
            out += _chunk_words(normalize_text(clause), max_chars)
    return out


@dataclass
class Synthesis:
    """What :meth:`Speaker.speak` made of one text.

    Attributes:
        waveform: (T,) samples of all sentences, joined with pauses (empty when
            :meth:`Speaker.speak_to_file` wrote them to a file).
        sample_rate: samples per second.
        sentences: the normalised sentences spoken, in order.
        stopped: per sentence, True if the model ended it, False if it ran to the length cap
            (a failure: the output is likely garbled at the end).
        seconds: wall-clock time the synthesis took.
        samples: how many samples were made (default: the waveform's).
    """

    waveform: torch.Tensor
    sample_rate: int
    sentences: list[str] = field(default_factory=list)
    stopped: list[bool] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = -1

    def __post_init__(self) -> None:
        if self.samples < 0:
            self.samples = self.waveform.numel()

    @property
    def duration(self) -> float:
        """Seconds of audio made."""
        return self.samples / self.sample_rate


class Speaker:
    """Text → waveform with a trained :class:`~speechseq.models.tts.Synthesizer`.

    Args:
        model: the synthesizer.
        feature_config: the features it was trained on (the vocoder inverts them).
        tokenizer: its tokenizer.
        vocoder: mel → waveform (default: Griffin-Lim, 32 iterations).
        device: where to run the model.
        seed: seeds the prenet dropout kept at inference, so the same text always gives the same
            audio; None gives a different rendition each call.
        pause_seconds: silence between sentences.
        max_sentence_chars: longer sentences are cut (see :func:`split_sentences`).
        max_batch: sentences generated together.

    Example:
        >>> speaker = Speaker.from_pretrained("exp/tts/best.pt")
        >>> waveform, rate = speaker.synthesize("Some text.")
    """

    def __init__(
        self,
        model: Synthesizer,
        feature_config: FeatureConfig,
        tokenizer: Tokenizer,
        vocoder: Vocoder | None = None,
        device: str = "cpu",
        seed: int | None = 0,
        pause_seconds: float = 0.3,
        max_sentence_chars: int = 300,
        max_batch: int = 16,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.feature_config = feature_config
        self.tokenizer = tokenizer
        self.vocoder = vocoder or GriffinLimVocoder(feature_config)
        self.seed = seed
        self.pause_seconds = pause_seconds
        self.max_sentence_chars = max_sentence_chars
        self.max_batch = max_batch

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        device: str = "auto",
        seed: int | None = 0,
        vocoder: str | Path | None = None,
    ) -> Speaker:
        """Build from a text-to-speech checkpoint (default: the shipped voice).

        Args:
            vocoder: None: the voice's own (the neural vocoder its checkpoint carries, else
                Griffin-Lim); ``"griffin-lim"``; or a vocoder checkpoint file.
        """
        path = voice_path(path)
        on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
        model, feature_config, tokenizer, state = load_synthesizer(path, int8_kernels=on_cpu)
        parameters = sum(v.numel() for v in state["model"].values())
        log.info("voice %s: %.1f M parameters (%s)", path, parameters / 1e6, precision(state))
        chosen = choose_vocoder(vocoder, state, feature_config)
        log.info("vocoder: %s", type(chosen).__name__)
        return cls(model, feature_config, tokenizer, chosen, device=device, seed=seed)

    @property
    def sample_rate(self) -> int:
        return self.vocoder.sample_rate

    def sentences(self, text: str) -> list[str]:
        """The normalised sentences :meth:`speak` would say.

        Raises:
            SpeechseqError: nothing in ``text`` can be spoken (empty, or only symbols).
        """
        sentences = split_sentences(text, self.max_sentence_chars)
        sentences = [s for s in sentences if self.tokenizer.encode(s)]
        if not sentences:
            shown = text.strip()
            shown = f"{shown[:40]!r}" + ("…" if len(shown) > 40 else "") if shown else "empty"
            raise SpeechseqError(f"nothing to say: the text ({shown}) has no letters or digits")
        return sentences

    def stream(self, text: str) -> Iterator[tuple[torch.Tensor, bool]]:
        """Synthesize ``text`` of any length, a batch of sentences at a time.

        Yields:
            per sentence, in order: its (T,) samples (each after the first led by the pause
            between sentences) and whether the model ended it (False: it ran to the length cap).
            Only one batch (``max_batch`` sentences) is held at a time.

        Raises:
            SpeechseqError: nothing in ``text`` can be spoken.
        """
        return self._generate(self.sentences(text))

    @torch.no_grad()
    def _generate(self, sentences: list[str]) -> Iterator[tuple[torch.Tensor, bool]]:
        """:meth:`stream` of sentences already split and normalised."""
        pause = torch.zeros(round(self.pause_seconds * self.sample_rate))
        for start in range(0, len(sentences), self.max_batch):
            group = sentences[start : start + self.max_batch]
            ids = [torch.tensor(self.tokenizer.encode(s)) for s in group]
            lengths = torch.tensor([len(i) for i in ids])
            tokens = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)  # (B, L)
            mels, mel_lengths, _, ended = self.model.infer(
                tokens.to(self.device), lengths, seed=self.seed
            )  # (B, T, n_mels), (B,)
            for i, n in enumerate(mel_lengths.tolist()):
                samples = self.vocoder(mels[i, :n].cpu())  # (T,)
                yield (samples if start + i == 0 else torch.cat([pause, samples])), bool(ended[i])

    def speak(self, text: str) -> Synthesis:
        """Synthesize ``text`` of any length, with details (see :class:`Synthesis`).

        Raises:
            SpeechseqError: nothing in ``text`` can be spoken.
        """
        started = time.perf_counter()
        sentences = self.sentences(text)
        pieces, stopped = [], []
        for samples, ended in self._generate(sentences):
            pieces.append(samples)
            stopped.append(ended)
        return Synthesis(
            waveform=torch.cat(pieces),
            sample_rate=self.sample_rate,
            sentences=sentences,
            stopped=stopped,
            seconds=time.perf_counter() - started,
        )

    def speak_to_file(
        self, text: str, path: str | Path, on_sentence: Callable[[], object] | None = None
    ) -> Synthesis:
        """Synthesize ``text`` of any length into the audio file ``path`` (format from its
        suffix), each batch of sentences written as it is made, so memory stays flat however
        long the text. Write to a temporary name (:func:`speechseq.files.atomic_path`) if a
        killed run must not leave a partial file.

        Args:
            on_sentence: called after each sentence is written (for progress).

        Returns:
            the details, with an empty ``waveform`` (the samples are in the file).

        Raises:
            SpeechseqError: nothing in ``text`` can be spoken, or the format cannot be written.
        """
        started = time.perf_counter()
        sentences = self.sentences(text)
        stopped = []
        with AudioWriter(path, self.sample_rate) as writer:
            for samples, ended in self._generate(sentences):
                writer.write(samples)
                stopped.append(ended)
                if on_sentence is not None:
                    on_sentence()
        return Synthesis(
            waveform=torch.zeros(0),
            sample_rate=self.sample_rate,
            sentences=sentences,
            stopped=stopped,
            seconds=time.perf_counter() - started,
            samples=writer.samples,
        )

    def synthesize(self, text: str) -> tuple[torch.Tensor, int]:
        """Synthesize ``text`` of any length.

        Returns:
            (T,) samples in [-1, 1] and the sample rate.

        Raises:
            SpeechseqError: nothing in ``text`` can be spoken.
        """
        result = self.speak(text)
        return result.waveform, result.sample_rate
