"""The text-to-speech training loop: losses, validation that listens, atomic checkpoints and
exact resume, as for speech-to-text (:mod:`speechseq.training`).

Example:
    >>> from speechseq.config import load_tts_config
    >>> config = load_tts_config("recipes/synthetic/tts/hparams/train.yaml", {"train.epochs": 2})
    >>> best = train_tts(config)          # writes exp/…/best.pt, last.pt, metrics.jsonl

A killed run continues with ``train_tts(config, resume=True)``. Each validation writes
``alignments/step-NNNNNN.png`` (teacher-forced attention of the first dev utterance, and
``…-free.png`` for the first free-running sentence) and, with ``validation.recognizer`` set, the
recognizer's character error rate on a few dev sentences synthesized free-running: attention
can be clean long before speech is intelligible (FACTS.md), so both are tracked.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from speechseq.audio import resample, save_audio
from speechseq.checkpoint import TTS_FORMAT, save_checkpoint, synthesizer_classes, tts_state
from speechseq.config import TtsExperimentConfig, TtsLossConfig, TtsValidationConfig
from speechseq.data import DurationBatchSampler, TtsBatch, TtsDataset, collate_tts
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.metrics import error_counts
from speechseq.models.duration_tts import DurationSynthesizer, DurationSynthesizerConfig
from speechseq.models.tts import Synthesizer
from speechseq.plotting import alignment_image, write_png
from speechseq.text import CharTokenizer
from speechseq.trainer import (
    EpochLoop,
    MetricsLog,
    load_set,
    make_optimizer,
    optimizer_step,
    pick_device,
    prepare_out_dir,
)
from speechseq.vocoder import GriffinLimVocoder

__all__ = [
    "compute_duration_tts_loss",
    "compute_tts_loss",
    "diagonal_score",
    "guided_attention_loss",
    "tts_feature_stats",
    "train_tts",
    "validate_tts",
]


def _lengths_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) lengths → (B, size) True at valid positions."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def guided_attention_loss(
    alignments: torch.Tensor, token_lengths: torch.Tensor, step_lengths: torch.Tensor, g: float
) -> torch.Tensor:
    """Penalty on attention away from the diagonal (Tachibana et al., 2017), normalised per
    decoder step: summed over characters, averaged over valid steps. The element-mean form is
    ~60× weaker and did not matter at weight 2 (FACTS.md).

    Args:
        alignments: (B, S, L) attention weights.
        token_lengths: (B,) valid characters.
        step_lengths: (B,) valid decoder steps.
        g: band width, as a fraction of the utterance.
    """
    _, steps, chars = alignments.shape
    n = torch.arange(chars, device=alignments.device)[None, None, :] / token_lengths[:, None, None]
    t = torch.arange(steps, device=alignments.device)[None, :, None] / step_lengths[:, None, None]
    penalty = 1 - torch.exp(-((n - t) ** 2) / (2 * g * g))  # (B, S, L)
    mask = (
        _lengths_mask(step_lengths, steps)[:, :, None]
        & _lengths_mask(token_lengths, chars)[:, None, :]
    )
    return (alignments * penalty * mask).sum() / mask[:, :, 0].sum().clamp(min=1)


def _mel_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str):
    diff = (pred - target) * mask  # (B, T, n_mels)
    count = mask.sum().clamp(min=1) * pred.shape[-1]
    l1, l2 = diff.abs().sum() / count, diff.square().sum() / count
    return {"l1": l1, "l2": l2, "l1+l2": l1 + l2}[kind]


def compute_tts_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    batch: TtsBatch,
    config: TtsLossConfig,
    reduction_factor: int,
) -> dict[str, torch.Tensor]:
    """The text-to-speech loss and its parts.

    Args:
        outputs: :meth:`Synthesizer.forward`'s ``(mel_before, mel_after, stop_logits,
            alignments)``, shapes (B, T, n_mels) ×2, (B, S), (B, S, L).
        batch: the targets (``mels`` (B, T, n_mels), ``stop_targets`` (B, S), lengths).
        config: loss weights.
        reduction_factor: frames per decoder step.

    Returns:
        ``loss`` (the total to minimise), ``mel`` (before the postnet), ``postnet`` (after it),
        ``stop`` and ``attention`` (unweighted).
    """
    mel_before, mel_after, stop_logits, alignments = outputs
    frames, steps = mel_before.shape[1], stop_logits.shape[1]
    frame_mask = _lengths_mask(batch.mel_lengths, frames)[:, :, None].float()  # (B, T, 1)
    step_lengths = (batch.mel_lengths + reduction_factor - 1) // reduction_factor  # (B,)
    step_mask = _lengths_mask(step_lengths, steps).float()  # (B, S)
    mel = _mel_error(mel_before.float(), batch.mels, frame_mask, config.mel_loss)
    postnet = _mel_error(mel_after.float(), batch.mels, frame_mask, config.mel_loss)
    stop = F.binary_cross_entropy_with_logits(
        stop_logits.float(),
        batch.stop_targets,
        weight=step_mask,
        pos_weight=torch.tensor(config.stop_pos_weight, device=stop_logits.device),
        reduction="sum",
    ) / step_mask.sum().clamp(min=1)
    attention = guided_attention_loss(
        alignments.float(), batch.token_lengths, step_lengths, config.guided_attention_g
    )
    loss = mel + postnet + config.stop_weight * stop
    if config.guided_attention_weight > 0:
        loss = loss + config.guided_attention_weight * attention
    return {"loss": loss, "mel": mel, "postnet": postnet, "stop": stop, "attention": attention}


def compute_duration_tts_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    batch: TtsBatch,
    config: TtsLossConfig,
) -> dict[str, torch.Tensor]:
    """The duration model's loss and its parts.

    Args:
        outputs: :meth:`DurationSynthesizer.forward`'s ``(mel_before, mel_after,
            log_durations, weights)``, shapes (B, T, n_mels) ×2, (B, L), (B, S, L).
        batch: the targets (``mels``, ``mel_lengths``, ``char_frames`` (B, L), lengths).
        config: loss weights.

    Returns:
        ``loss``, ``mel`` (before the postnet), ``postnet`` (after it) and ``duration``
        (mean squared error of log(1 + frames) per character, unweighted).
    """
    mel_before, mel_after, log_durations, _ = outputs
    frame_mask = _lengths_mask(batch.mel_lengths, mel_before.shape[1])[:, :, None].float()
    mel = _mel_error(mel_before.float(), batch.mels, frame_mask, config.mel_loss)
    postnet = _mel_error(mel_after.float(), batch.mels, frame_mask, config.mel_loss)
    char_mask = _lengths_mask(batch.token_lengths, log_durations.shape[1]).float()  # (B, L)
    target = torch.log1p(batch.char_frames.float())
    duration = ((log_durations.float() - target).square() * char_mask).sum() / char_mask.sum()
    loss = mel + postnet + config.duration_weight * duration
    return {"loss": loss, "mel": mel, "postnet": postnet, "duration": duration}


def _forward_loss(
    model: Synthesizer | DurationSynthesizer,
    batch: TtsBatch,
    config: TtsLossConfig,
    generator: torch.Generator | None = None,
) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """The training pass of either model on ``batch`` and its losses."""
    if isinstance(model, DurationSynthesizer):
        if batch.char_frames is None:
            raise SpeechseqError("the duration model needs data.train_durations/dev_durations")
        outputs = model(batch.tokens, batch.token_lengths, batch.mels, batch.char_frames)
        return outputs, compute_duration_tts_loss(outputs, batch, config)
    outputs = model(batch.tokens, batch.token_lengths, batch.mels, generator)
    return outputs, compute_tts_loss(outputs, batch, config, model.config.reduction_factor)


def _char_frames(config: TtsExperimentConfig, model_config) -> tuple[dict | None, dict | None]:
    """Per-character frame counts for the train and dev sets (duration model only)."""
    if not isinstance(model_config, DurationSynthesizerConfig):
        return None, None
    from speechseq.durations import read_durations

    data = config.data
    if not data.train_durations:
        raise SpeechseqError(
            "model.kind duration needs data.train_durations (speechseq.durations.align_corpus)"
        )
    dev = read_durations(data.dev_durations) if data.dev_durations else None
    if data.dev_manifest and dev is None:
        raise SpeechseqError("model.kind duration needs data.dev_durations for its dev set")
    return read_durations(data.train_durations), dev


def diagonal_score(
    alignments: torch.Tensor,
    token_lengths: torch.Tensor,
    step_lengths: torch.Tensor,
    width: float = 0.2,
) -> float:
    """Fraction of attention mass within ``width`` (of the utterance) of the diagonal, over all
    valid steps: about ``2 * width`` for uniform attention, near 1 for a learned alignment.

    Args:
        alignments: (B, S, L) attention weights.
        token_lengths: (B,) valid characters.
        step_lengths: (B,) valid decoder steps.
    """
    _, steps, chars = alignments.shape
    n = (torch.arange(chars)[None, None, :] + 0.5) / token_lengths.cpu()[:, None, None]
    t = (torch.arange(steps)[None, :, None] + 0.5) / step_lengths.cpu()[:, None, None]
    near = ((n - t).abs() <= width) & _lengths_mask(token_lengths.cpu(), chars)[:, None, :]
    valid = _lengths_mask(step_lengths.cpu(), steps)  # (B, S)
    mass = (alignments.detach().float().cpu() * near).sum(-1)  # (B, S)
    return float(mass[valid].mean()) if bool(valid.any()) else 0.0


def tts_feature_stats(
    dataset: TtsDataset, max_utterances: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (n_mels,) each of the trimmed, un-normalised log-mels of
    up to ``max_utterances`` (spread over the whole set) of ``dataset``."""
    count = len(dataset)
    picks = sorted(
        {i * count // min(count, max_utterances) for i in range(min(count, max_utterances))}
    )
    total, total_sq, frames = 0.0, 0.0, 0
    for i in picks:
        try:
            feats = dataset.extractor.log_mel(dataset.waveform(i)).double()  # (T, n_mels)
        except SpeechseqError:
            continue
        total, total_sq = total + feats.sum(0), total_sq + feats.square().sum(0)
        frames += feats.shape[0]
    if frames == 0:
        raise SpeechseqError("no readable training audio to compute feature statistics from")
    mean = total / frames
    std = (total_sq / frames - mean.square()).clamp(min=1e-8).sqrt()
    return mean.float(), std.float()


@torch.no_grad()
def validate_tts(
    model: Synthesizer,
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
        outputs, losses = _forward_loss(model, batch, loss_config, generator)
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
        from speechseq.inference import Transcriber

        self.config, self.vocoder, self.out_dir = config, vocoder, out_dir
        items = [dev_set[i] for i in range(min(config.sentences, len(dev_set)))]
        self.items = [it for it in items if it is not None]
        self.transcriber = None
        if config.recognizer:
            if not Path(config.recognizer).is_file():
                raise SpeechseqError(f"{config.recognizer}: no such recognizer checkpoint")
            self.transcriber = Transcriber.from_pretrained(config.recognizer)

    @torch.no_grad()
    def __call__(self, model: Synthesizer, step: int) -> tuple[dict[str, float], torch.Tensor]:
        """Metrics ``synth_stopped`` (fraction ended by the stop token), ``synth_length_ratio``
        (mean frames / reference frames), ``synth_cer``/``synth_wer`` (with a recognizer), and
        the first sentence's (S, L) free-running alignment."""
        model.eval()
        device = next(model.parameters()).device
        batch = collate_tts(self.items, model.config.reduction_factor).to(device)
        mels, lengths, alignments, stopped = model.infer(
            batch.tokens, batch.token_lengths, seed=self.config.seed
        )
        model.train()
        waveforms = [self.vocoder(mels[i, : int(n)].cpu()) for i, n in enumerate(lengths.tolist())]
        if self.config.save_audio:
            for i, waveform in enumerate(waveforms):
                path = self.out_dir / "samples" / f"step-{step:06d}" / f"{i:02d}.wav"
                save_audio(path, waveform, self.vocoder.sample_rate)
        ratio = (lengths.cpu().float() / batch.mel_lengths.cpu().float()).mean()
        metrics = {
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


def _make_loader(dataset: TtsDataset, sampler, r: int, workers: int, seed: int) -> DataLoader:
    # Its own generator keeps DataLoader's seed draw off the global RNG (exact resume).
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=functools.partial(collate_tts, reduction_factor=r),
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
    )


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
    tc, vc = config.train, config.validation
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = pick_device(tc.device)
    if config.features.normalize == "utterance":
        raise SpeechseqError("features.normalize: text-to-speech needs global or none")
    if tc.init_from:
        raise SpeechseqError("train.init_from: fine-tuning is only for recognizers so far")
    train_utts = load_set(config.data.train_manifest, config.data.max_duration)
    if not train_utts:
        raise SpeechseqError(f"{config.data.train_manifest}: no training utterances")
    dev_utts = load_set(config.data.dev_manifest)
    if vc.max_utterances is not None:
        dev_utts = dev_utts[: vc.max_utterances]
    out_dir, state = prepare_out_dir(config, resume, TTS_FORMAT)
    log = MetricsLog(out_dir / "metrics.jsonl")

    tokenizer = CharTokenizer()
    trim = (config.data.trim_db, config.data.trim_margin, config.data.cache)
    if state is not None:
        feature_config = FeatureConfig.from_dict(state["feature_config"])
        model_config = synthesizer_classes(state["model_config"])[1].from_dict(
            state["model_config"]
        )
        tokenizer = CharTokenizer.from_dict(state["tokenizer"])
    else:
        feature_config = config.features
        if feature_config.normalize == "global" and not feature_config.mean:
            raw = FeatureExtractor(replace(feature_config, normalize="none"))
            stats = tts_feature_stats(TtsDataset(train_utts, raw, tokenizer, *trim[:2]))
            feature_config = feature_config.with_stats(*stats)
        model_config = replace(
            config.model, vocab_size=len(tokenizer), n_mels=feature_config.n_mels
        )
    r = model_config.reduction_factor

    torch.manual_seed(tc.seed)
    model = synthesizer_classes(model_config.to_dict())[0](model_config).to(device)
    extractor = FeatureExtractor(feature_config)
    train_frames, dev_frames = _char_frames(config, model_config)
    train_set = TtsDataset(train_utts, extractor, tokenizer, *trim, char_frames=train_frames)
    sampler = DurationBatchSampler(
        train_set.durations,
        config.data.max_batch_seconds,
        True,
        tc.seed,
        config.data.max_batch_size,
    )
    steps_per_epoch = len(sampler.batches())
    total_steps = tc.max_steps or tc.epochs * steps_per_epoch
    optimizer, scheduler = make_optimizer(model, tc, total_steps)
    dev_loader, listener = None, None
    if dev_utts:
        dev_set = TtsDataset(dev_utts, extractor, tokenizer, *trim, char_frames=dev_frames)
        dev_sampler = DurationBatchSampler(dev_set.durations, config.data.max_batch_seconds, False)
        dev_loader = _make_loader(dev_set, dev_sampler, r, config.data.num_workers, tc.seed)
        if vc.sentences > 0:
            listener = _Listener(vc, dev_set, GriffinLimVocoder(feature_config), out_dir)

    best = math.inf
    # best.pt is chosen by the recognizer's CER when there is one, else by dev loss
    best_metric = "synth_cer" if listener is not None and vc.recognizer else "dev_loss"
    # A CER by another recognizer is another yardstick too: name the recognizer by its bytes.
    yardstick = best_metric
    if best_metric == "synth_cer":
        digest = hashlib.sha256(Path(vc.recognizer).read_bytes()).hexdigest()[:12]
        yardstick = f"synth_cer (recognizer {digest})"

    def checkpoint(name: str, extra: dict | None = None) -> None:
        ckpt = tts_state(model, feature_config, tokenizer)
        if name == "last.pt":
            ckpt["train_state"] = {
                **loop.state(optimizer, scheduler),
                "best": best,
                "best_metric": yardstick,
                "rng": torch.get_rng_state(),
                "config": config.to_dict(),
            }
        ckpt["meta"] = {"step": loop.step, "epoch": loop.epoch, **(extra or {})}
        save_checkpoint(ckpt, out_dir / name)

    loop = EpochLoop(
        tc,
        sampler,
        lambda seed: _make_loader(train_set, sampler, r, config.data.num_workers, seed),
        total_steps,
        lambda: checkpoint("last.pt"),
        progress,
    )
    if state is not None:
        model.load_state_dict(state["model"])
        ts = state["train_state"]
        best = ts["best"]
        if ts.get("best_metric", yardstick) != yardstick:  # a CER is no loss: start over
            print(
                f"best.pt was chosen by {ts['best_metric']}, now by {yardstick}: the next "
                "validation replaces it",
                file=sys.stderr,
            )
            best = math.inf
        loop.restore(ts, optimizer, scheduler, out_dir)
        torch.set_rng_state(ts["rng"])

    def validate() -> dict:
        step = loop.step
        metrics, alignment = validate_tts(model, dev_loader, config.loss, device, vc.seed)
        if vc.plot and alignment is not None:
            write_png(out_dir / "alignments" / f"step-{step:06d}.png", alignment_image(alignment))
        if listener is not None:
            heard, free = listener(model, step)
            metrics |= heard
            if vc.plot:
                write_png(
                    out_dir / "alignments" / f"step-{step:06d}-free.png", alignment_image(free)
                )
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

    autocast_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=tc.amp and device.type == "cuda")
    model.train()
    for batches in loop.epochs():
        window_frames, window_audio, window_start = 0, 0.0, time.monotonic()
        for batch in batches:
            if batch is None:  # every file in it was unusable (each was warned about)
                loop.skipped()
                continue
            batch = batch.to(device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=tc.amp):
                _, losses = _forward_loss(model, batch, config.loss)
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
        metrics = validate() if dev_loader is not None and loop.validation_due else {}
        score = metrics.get(best_metric)
        if score is not None and score <= best:
            best = score
            checkpoint("best.pt", {k: v for k, v in metrics.items() if isinstance(v, float)})
        elif dev_loader is None:
            checkpoint("best.pt")
        checkpoint("last.pt")
    return out_dir / "best.pt"
