"""The neural vocoder's training data: a voice's recordings held in memory with the mel frames
the vocoder reads for each (their own, or the voice's predictions of them), cut into random
segments.

Example:
    >>> corpus = load_corpus("data/train.jsonl", feature_config, data_config, None)
    >>> features, target, context = corpus.batch(16, 80, 800, torch.Generator())
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from speechseq.checkpoint import load_synthesizer
from speechseq.data import TtsDataset, read_manifest
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.text import CharTokenizer
from speechseq.tts.durations import read_durations

__all__ = ["VocoderCorpus", "VocoderDataConfig", "load_corpus"]


@dataclass(frozen=True)
class VocoderDataConfig:
    """What the vocoder learns from.

    Args:
        train_manifest, dev_manifest: the voice's recordings (JSONL manifests).
        voice: a voice checkpoint: its feature settings (and statistics) are the vocoder's, so
            the two fit; without one, the text-to-speech defaults with statistics of the train
            set.
        predicted_mels: learn from the voice's own mels of each recording (teacher-forced on
            the measured durations; needs ``voice``, a duration model, and the durations files)
            instead of the recording's mels.
        real_mel_share: with ``predicted_mels``, the share of each batch's segments cut from
            the recordings' own mels instead, so that the vocoder keeps rendering real mels
            while it learns the voice's (0 to 1).
        train_durations, dev_durations: frames per character (``speechseq tts durations``).
        trim_db, trim_margin: the recordings are trimmed as the voice's training trimmed them.
        segment_frames: mel frames per training segment.
        batch_size: segments per step.
        max_utterances: use only the first this many train recordings (optional).
    """

    train_manifest: str = ""
    dev_manifest: str = ""
    voice: str | None = None
    predicted_mels: bool = False
    real_mel_share: float = 0.0
    train_durations: str | None = None
    dev_durations: str | None = None
    trim_db: float | None = 40.0
    trim_margin: float = 0.05
    segment_frames: int = 80
    batch_size: int = 16
    max_utterances: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_mel_share <= 1.0:
            raise ValueError(f"real_mel_share must be between 0 and 1, not {self.real_mel_share}")
        if self.real_mel_share and not self.predicted_mels:
            raise ValueError("real_mel_share is for predicted_mels: true")


class VocoderCorpus:
    """Recordings held in memory with the mel frames the vocoder reads for each.

    Args:
        features: per recording, (T, n_mels) normalised log-mels.
        waveforms: per recording, (N,) samples, N ≥ (T - 1) * hop_length.
        hop_length: samples per mel frame.
        real_features: per recording, other (T, n_mels) mels of it (its own, where
            ``features`` are the voice's), which a ``real_share`` of the segments are cut from.
        real_share: that share, 0 to 1.
    """

    def __init__(
        self,
        features: list[torch.Tensor],
        waveforms: list[torch.Tensor],
        hop_length: int,
        real_features: list[torch.Tensor] | None = None,
        real_share: float = 0.0,
    ) -> None:
        self.features, self.waveforms, self.hop_length = features, waveforms, hop_length
        self.real_features, self.real_share = real_features, real_share

    def __len__(self) -> int:
        return len(self.features)

    def batch(
        self, size: int, frames: int, n_fft: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``size`` random segments of ``frames`` mel frames, recordings drawn by length.

        Returns:
            features (B, frames, n_mels); target samples (B, (frames - 1) * hop); and the same
            samples with ``n_fft // 2`` more of the recording on each side (zeros past its
            ends), (B, (frames - 1) * hop + n_fft), for the target STFT.
        """
        hop, half = self.hop_length, n_fft // 2
        lengths = torch.tensor(
            [max(0, f.shape[0] - frames) + 1 for f in self.features], dtype=torch.float
        )
        picks = torch.multinomial(lengths, size, replacement=True, generator=generator)
        feats, targets, contexts = [], [], []
        for i in picks.tolist():
            f, w = self.features[i], self.waveforms[i]
            if self.real_features is not None and self.real_share > 0:
                if float(torch.rand((), generator=generator)) < self.real_share:
                    f = self.real_features[i]
            start = int(torch.randint(0, int(lengths[i]), (1,), generator=generator))
            segment = f[start : start + frames]
            if segment.shape[0] < frames:  # a recording shorter than a segment: pad with its edge
                segment = torch.cat([segment, segment[-1:].expand(frames - segment.shape[0], -1)])
            feats.append(segment)
            padded = torch.nn.functional.pad(w, (half, half + frames * hop))
            begin = start * hop  # sample start*hop of w is sample begin + half of padded
            contexts.append(padded[begin : begin + (frames - 1) * hop + n_fft])
            targets.append(padded[begin + half : begin + half + (frames - 1) * hop])
        return torch.stack(feats), torch.stack(targets), torch.stack(contexts)


def load_corpus(
    manifest: str,
    feature_config: FeatureConfig,
    data: VocoderDataConfig,
    durations: str | None,
    limit: int | None = None,
    progress: bool = True,
) -> VocoderCorpus:
    """The recordings of ``manifest`` (trimmed), with their own mels or, with
    ``data.predicted_mels``, the voice's mels for them."""
    utterances = read_manifest(manifest)[:limit]
    if not utterances:
        raise SpeechseqError(f"{manifest}: no utterances")
    extractor = FeatureExtractor(feature_config)
    voice, tokenizer, char_frames = None, CharTokenizer(), None
    if data.predicted_mels:
        assert data.voice is not None and durations is not None  # load_vocoder_config checks
        voice, voice_features, voice_tokenizer, _ = load_synthesizer(data.voice, False)
        if voice.config.kind != "duration" or not isinstance(voice_tokenizer, CharTokenizer):
            raise SpeechseqError(f"{data.voice}: predicted_mels needs a duration model")
        if voice_features != feature_config:  # its mels are normalised as its features are
            raise SpeechseqError(f"{data.voice}: not the voice whose features the run reads")
        tokenizer, char_frames = voice_tokenizer, read_durations(durations)
    dataset = TtsDataset(
        utterances, extractor, tokenizer, data.trim_db, data.trim_margin, char_frames=char_frames
    )
    features, waveforms, real_features = [], [], []
    keep_real = voice is not None and data.real_mel_share > 0
    label = f"{Path(manifest).name}: " + ("the voice's mels" if voice is not None else "mels")
    with torch.no_grad():
        for i in tqdm(range(len(dataset)), desc=label, unit="utt", disable=not progress):
            item = dataset[i]
            if item is None:
                continue
            mel = item["mel"]  # (T, n_mels)
            if keep_real:
                real_features.append(mel)
            if voice is not None:
                tokens = item["tokens"][None]  # (1, L)
                lengths = torch.tensor([tokens.shape[1]])
                mel = voice(tokens, lengths, mel[None], item["char_frames"][None])[1][0]
            features.append(mel)
            waveforms.append(dataset.waveform(i))
    if not features:
        raise SpeechseqError(f"{manifest}: no usable utterances")
    return VocoderCorpus(
        features,
        waveforms,
        feature_config.hop_length,
        real_features if keep_real else None,
        data.real_mel_share,
    )
