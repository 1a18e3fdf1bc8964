"""The text-to-speech training loop: losses, validation that listens, atomic checkpoints and
exact resume, as for speech-to-text (:mod:`speechseq.asr.train`).

Example:
    >>> from speechseq.tts.config import load_tts_config
    >>> config = load_tts_config("recipes/synthetic/tts/hparams/train.yaml", {"train.epochs": 2})
    >>> best = train_tts(config)          # writes exp/…/best.pt, last.pt, metrics.jsonl

A killed run continues with ``train_tts(config, resume=True)``. Each validation writes
``alignments/step-NNNNNN.png`` (teacher-forced attention of the first dev utterance, and
``…-free.png`` for the first free-running sentence) and, with ``validation.recognizer`` set, the
recognizer's character error rate on a few dev sentences synthesized free-running: attention
can be clean long before speech is intelligible (a measured run aligned within 8 minutes and was
still unintelligible after 32), so both are tracked.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import torch
from torch.utils.data import DataLoader

from speechseq.asr.transcriber import Transcriber
from speechseq.audio import resample, save_audio
from speechseq.checkpoint import TTS_FORMAT, load_synthesizer, tts_state
from speechseq.data import TtsDataset, Utterance, collate_tts
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.metrics import error_counts
from speechseq.models import (
    DurationSynthesizer,
    DurationSynthesizerConfig,
    Synthesizer,
    SynthesizerConfig,
    build_model,
    config_from_dict,
)
from speechseq.optim import make_optimization, optimizer_step
from speechseq.pretrained import voice_path
from speechseq.text import CharTokenizer
from speechseq.tracking import MetricsLog, require_tensorboard
from speechseq.training import (
    Checkpointer,
    EpochLoop,
    feature_stats,
    load_set,
    make_loader,
    make_sampler,
    pick_device,
    prepare_out_dir,
)
from speechseq.tts.config import TtsExperimentConfig, TtsLossConfig, TtsValidationConfig
from speechseq.tts.durations import read_durations
from speechseq.tts.losses import diagonal_score, forward_and_loss
from speechseq.tts.plotting import alignment_image, write_png
from speechseq.tts.vocoder import GriffinLimVocoder

__all__ = ["train_tts", "tts_feature_stats", "validate_tts"]


def _char_frames(config: TtsExperimentConfig, kind: str) -> tuple[dict | None, dict | None]:
    """Per-character frame counts for the train and dev sets (duration model only)."""
    if kind != "duration":
        return None, None
    data = config.data
    if not data.train_durations:
        raise SpeechseqError(
            "model.kind duration needs data.train_durations (speechseq.tts.durations.align_corpus)"
        )
    dev = read_durations(data.dev_durations) if data.dev_durations else None
    if data.dev_manifest and dev is None:
        raise SpeechseqError("model.kind duration needs data.dev_durations for its dev set")
    return read_durations(data.train_durations), dev


def tts_feature_stats(
    dataset: TtsDataset, max_utterances: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (n_mels,) each of the trimmed, un-normalised log-mels of
    up to ``max_utterances`` (spread over the whole set) of ``dataset``."""
    count = len(dataset)
    picks = sorted(
        {i * count // min(count, max_utterances) for i in range(min(count, max_utterances))}
    )

    def readable():
        for i in picks:
            try:
                yield dataset.extractor.log_mel(dataset.waveform(i))  # (T, n_mels)
            except SpeechseqError:
                continue

    return feature_stats(readable())


@torch.no_grad()
def validate_tts(
    model: Synthesizer | DurationSynthesizer,
    loader: DataLoader,
    loss_config: TtsLossConfig,
    device: torch.device,
    seed: int = 0,
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Teacher-forced dev losses and attention diagonality.

    Returns:
        metrics (``dev_loss``, ``dev_mel``, ``dev_postnet``, ``dev_stop``, ``dev_attention``,
        ``dev_diagonal``) and the first utterance's (S, L) alignment (None without batches).
    """
    model.eval()
    r = model.config.reduction_factor
    generator = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, float] = {}
    first, n, diag_sum = None, 0, 0.0
    for batch in loader:
        if batch is None:
            continue
        batch = batch.to(device)
        outputs, losses = forward_and_loss(model, batch, loss_config, generator)
        b = len(batch.texts)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + value.item() * b
        step_lengths = (batch.mel_lengths + r - 1) // r
        diag_sum += diagonal_score(outputs[3], batch.token_lengths, step_lengths) * b
        n += b
        if first is None:
            first = outputs[3][0, : int(step_lengths[0]), : int(batch.token_lengths[0])].cpu()
    model.train()
    metrics = {f"dev_{k}": v / max(1, n) for k, v in sums.items()}
    metrics["dev_diagonal"] = diag_sum / max(1, n)
    return metrics, first


class _Listener:
    """Free-running synthesis of a few fixed dev sentences, scored by a recognizer."""

    def __init__(
        self,
        config: TtsValidationConfig,
        dev_set: TtsDataset,
        vocoder: GriffinLimVocoder,
        out_dir: Path,
    ) -> None:
        self.config, self.vocoder, self.out_dir = config, vocoder, out_dir
        items = [dev_set[i] for i in range(min(config.sentences, len(dev_set)))]
        self.items = [it for it in items if it is not None]
        if not self.items:
            raise SpeechseqError(
                f"none of the first {len(items)} dev utterances can be synthesized and heard "
                "(unreadable audio or no speakable text): fix them, or set validation.sentences: 0"
            )
        self.waveforms: list[torch.Tensor] = []
        self.transcriber = None
        if config.recognizer:
            if not Path(config.recognizer).is_file():
                raise SpeechseqError(f"{config.recognizer}: no such recognizer checkpoint")
            self.transcriber = Transcriber.from_pretrained(config.recognizer)

    @torch.no_grad()
    def __call__(
        self, model: Synthesizer | DurationSynthesizer, step: int
    ) -> tuple[dict[str, Any], torch.Tensor]:
        """Metrics ``synth_stopped`` (fraction ended by the stop token), ``synth_length_ratio``
        (mean frames / reference frames), ``synth_cer``/``synth_wer`` (with a recognizer), and
        the first sentence's (S, L) free-running alignment."""
        model.eval()
        device = next(model.parameters()).device
        batch = collate_tts(self.items, model.config.reduction_factor)
        assert batch is not None  # __init__ kept only readable sentences, at least one
        batch = batch.to(device)
        mels, lengths, alignments, stopped = model.infer(
            batch.tokens, batch.token_lengths, seed=self.config.seed
        )
        model.train()
        waveforms = [self.vocoder(mels[i, : int(n)].cpu()) for i, n in enumerate(lengths.tolist())]
        self.waveforms = waveforms  # the last validation's, for TensorBoard
        if self.config.save_audio:
            for i, waveform in enumerate(waveforms):
                path = self.out_dir / "samples" / f"step-{step:06d}" / f"{i:02d}.wav"
                save_audio(path, waveform, self.vocoder.sample_rate)
        ratio = (lengths.cpu().float() / batch.mel_lengths.cpu().float()).mean()
        metrics: dict[str, Any] = {
            "synth_stopped": float(stopped.float().mean()),
            "synth_length_ratio": float(ratio),
        }
        if self.transcriber is not None:
            rate = self.transcriber.sample_rate
            heard = self.transcriber.transcribe_waveforms(
                [resample(w, self.vocoder.sample_rate, rate) for w in waveforms]
            )
            counts = error_counts(batch.texts, heard)
            metrics["synth_cer"] = counts["char_errors"] / max(1, counts["chars"])
            metrics["synth_wer"] = counts["word_errors"] / max(1, counts["words"])
            metrics["synth_heard"] = heard[0]
        steps = math.ceil(int(lengths[0]) / model.config.reduction_factor)
        return metrics, alignments[0, :steps, : int(batch.token_lengths[0])].cpu()


def train_tts(config: TtsExperimentConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a synthesizer as ``config`` says; returns the path of the best checkpoint (lowest
    free-running CER with a recognizer, else lowest dev loss, else the latest).

    Args:
        config: the experiment.
        resume: continue from ``out_dir/last.pt`` if it exists (else start fresh).
        progress: show a progress bar on stderr.

    Raises:
        SpeechseqError: bad manifests or recognizer, an occupied ``out_dir`` without ``resume``…
    """
    tc = config.train
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = pick_device(tc.device)
    train_utts, dev_utts = load_sets(config)
    if tc.tensorboard:
        require_tensorboard()  # before the run's folder is made
    out_dir, state = prepare_out_dir(config, resume, TTS_FORMAT)
    log = MetricsLog(out_dir / "metrics.jsonl", tc.tensorboard)
    feature_config, model_config, tokenizer, weights = choose_model(config, state, train_utts)
    torch.manual_seed(tc.seed)
    # a text-to-speech config builds one of the two synthesizers
    model = cast("Synthesizer | DurationSynthesizer", build_model(model_config).to(device))
    if weights is not None:
        model.load_state_dict(weights)
    extractor = FeatureExtractor(feature_config)
    train_frames, dev_frames = _char_frames(config, model_config.kind)
    data = config.data
    collate = functools.partial(collate_tts, reduction_factor=model_config.reduction_factor)
    trim = (data.trim_db, data.trim_margin, data.cache)
    train_set = TtsDataset(train_utts, extractor, tokenizer, *trim, char_frames=train_frames)
    sampler = make_sampler(train_set.durations, data, tc.seed)
    optimizer, scheduler, total_steps = make_optimization(model, tc, sampler)
    dev_loader, listener = None, None
    if dev_utts:
        dev_set = TtsDataset(dev_utts, extractor, tokenizer, *trim, char_frames=dev_frames)
        dev_sampler = make_sampler(dev_set.durations, data, tc.seed, shuffle=False)
        dev_loader = make_loader(dev_set, dev_sampler, collate, data.num_workers, tc.seed)
        if config.validation.sentences > 0:
            vocoder = GriffinLimVocoder(feature_config)
            listener = _Listener(config.validation, dev_set, vocoder, out_dir)

    loop = EpochLoop(
        tc,
        sampler,
        lambda seed: make_loader(train_set, sampler, collate, data.num_workers, seed),
        total_steps,
        lambda: checkpointer.save_last(),
        progress,
    )
    checkpointer = Checkpointer(
        out_dir,
        lambda: tts_state(model, feature_config, tokenizer),
        loop,
        optimizer,
        scheduler,
        config,
        *_yardstick(config.validation, listener),
        have_dev=dev_loader is not None,
    )
    if state is not None:
        model.load_state_dict(state["model"])
        checkpointer.restore(state["train_state"])

    scaler = torch.amp.GradScaler(device.type, enabled=tc.amp and device.type == "cuda")
    model.train()
    for batches in loop.epochs():
        train_one_epoch(batches, model, loop, (optimizer, scheduler, scaler), config, log, device)
        metrics = {}
        if dev_loader is not None and loop.validation_due:
            metrics = validate(model, dev_loader, listener, config, loop, log, out_dir, device)
        checkpointer.end_epoch(metrics)
    return out_dir / "best.pt"


def load_sets(config: TtsExperimentConfig) -> tuple[list[Utterance], list[Utterance]]:
    """The training and dev utterances, after checking the settings text-to-speech needs."""
    if config.features.normalize == "utterance":
        raise SpeechseqError("features.normalize: text-to-speech needs global or none")
    data = config.data
    train_utts = load_set(data.train_manifest, data.max_duration, data.max_missing)
    if not train_utts:
        raise SpeechseqError(f"{data.train_manifest}: no training utterances")
    dev_utts = load_set(data.dev_manifest, max_missing=data.max_missing)
    if config.validation.max_utterances is not None:
        dev_utts = dev_utts[: config.validation.max_utterances]
    return train_utts, dev_utts


def choose_model(
    config: TtsExperimentConfig, state: dict | None, train_utts: list[Utterance]
) -> tuple[
    FeatureConfig, SynthesizerConfig | DurationSynthesizerConfig, CharTokenizer, dict | None
]:
    """Features, model config, tokenizer and starting weights: a resumed run's from
    ``last.pt`` (weights None: the checkpointer restores them), a fine-tuning run's
    (``train.init_from``, a voice checkpoint or ``default``) from that voice, with its float32
    weights; a new run's from the config (with corpus statistics for ``global``
    normalisation)."""
    if state is not None:
        return (
            FeatureConfig.from_dict(state["feature_config"]),
            config_from_dict(state["model_config"], "attention"),
            CharTokenizer.from_dict(state["tokenizer"]),
            None,
        )
    if config.train.init_from:
        path = voice_path(config.train.init_from)
        voice, feature_config, tokenizer, _ = load_synthesizer(path, int8_kernels=False)
        if not isinstance(tokenizer, CharTokenizer):
            raise SpeechseqError(f"{path}: not a voice of characters")
        print(f"fine-tuning {path}: its features and model, not the config's", file=sys.stderr)
        return feature_config, voice.config, tokenizer, voice.state_dict()
    tokenizer = CharTokenizer()
    feature_config = config.features
    if feature_config.normalize == "global" and not feature_config.mean:
        raw = FeatureExtractor(replace(feature_config, normalize="none"))
        trim = (config.data.trim_db, config.data.trim_margin)
        stats = tts_feature_stats(TtsDataset(train_utts, raw, tokenizer, *trim))
        feature_config = feature_config.with_stats(*stats)
    model_config = replace(config.model, vocab_size=len(tokenizer), n_mels=feature_config.n_mels)
    return feature_config, model_config, tokenizer, None


def _yardstick(vc: TtsValidationConfig, listener: _Listener | None) -> tuple[str, str]:
    """What ``best.pt`` is chosen by (the recognizer's CER when there is one, else dev loss),
    and how it is measured: a CER by another recognizer is another yardstick, so the
    recognizer is named by its bytes."""
    if listener is None or not vc.recognizer:
        return "dev_loss", "dev_loss"
    digest = hashlib.sha256(Path(vc.recognizer).read_bytes()).hexdigest()[:12]
    return "synth_cer", f"synth_cer (recognizer {digest})"


def train_one_epoch(
    batches,
    model: Synthesizer | DurationSynthesizer,
    loop: EpochLoop,
    optimization: tuple,
    config: TtsExperimentConfig,
    log: MetricsLog,
    device: torch.device,
) -> None:
    """One epoch's optimizer steps (from the loop's position on), logged every
    ``train.log_every`` steps."""
    tc = config.train
    optimizer, scheduler, scaler = optimization
    autocast_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    window_frames, window_audio, window_start = 0, 0.0, time.monotonic()
    for batch in batches:
        if batch is None:  # every file in it was unusable (each was warned about)
            loop.skipped()
            continue
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=tc.amp):
            _, losses = forward_and_loss(model, batch, config.loss)
        grad_norm = optimizer_step(
            losses["loss"], optimizer, scheduler, scaler, model.parameters(), tc.grad_clip
        )
        window_frames += int(batch.mel_lengths.sum())
        window_audio += sum(batch.durations)
        elapsed = max(1e-9, time.monotonic() - window_start)
        loop.stepped(
            loss=f"{losses['loss'].item():.3f}", speed=f"{window_frames / elapsed:.0f}fr/s"
        )
        if loop.step % tc.log_every == 0:
            log.write(
                {
                    "step": loop.step,
                    "epoch": loop.epoch_number,
                    **{k: round(v.item(), 5) for k, v in losses.items()},
                    "grad_norm": round(float(grad_norm), 4),
                    "lr": scheduler.get_last_lr()[0],
                    "frames_per_second": round(window_frames / elapsed, 1),
                    "audio_seconds_per_second": round(window_audio / elapsed, 2),
                    **loop.clocks(),
                }
            )
            window_frames, window_audio, window_start = 0, 0.0, time.monotonic()


def validate(
    model: Synthesizer | DurationSynthesizer,
    dev_loader: DataLoader,
    listener: _Listener | None,
    config: TtsExperimentConfig,
    loop: EpochLoop,
    log: MetricsLog,
    out_dir: Path,
    device: torch.device,
) -> dict:
    """Teacher-forced dev losses, then free-running synthesis heard by the listener; the
    attention plots, the metrics log and one line on stderr."""
    vc, step = config.validation, loop.step
    metrics, alignment = validate_tts(model, dev_loader, config.loss, device, vc.seed)
    images = {"alignment": alignment}
    if listener is not None:
        heard, images["alignment-free"] = listener(model, step)
        metrics |= heard
        for i, waveform in enumerate(listener.waveforms[:3]):
            log.audio(f"sample-{i}", waveform, listener.vocoder.sample_rate, step)
    for name, weights in ((n, w) for n, w in images.items() if w is not None):
        image = alignment_image(weights)
        log.image(name, image, step)
        if vc.plot:  # step-000100.png, step-000100-free.png
            write_png(out_dir / "alignments" / f"step-{step:06d}{name[9:]}.png", image)
    rounded = {k: round(v, 5) if isinstance(v, float) else v for k, v in metrics.items()}
    log.write({"step": step, "epoch": loop.epoch_number, **rounded, **loop.clocks()})
    line = f"step {step}: dev loss {metrics.get('dev_loss', math.nan):.3f}"
    line += f"  attention on diagonal {100 * metrics['dev_diagonal']:.0f}%"
    if "synth_cer" in metrics:
        line += f"  synthesized CER {100 * metrics['synth_cer']:.1f}%"
    if "synth_stopped" in metrics:
        line += f"  stopped {100 * metrics['synth_stopped']:.0f}%"
    print(line, file=sys.stderr)
    return metrics
