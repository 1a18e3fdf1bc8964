"""The ASR training loop as short named functions, with atomic checkpoints and exact resume.

Example:
    >>> from speechseq.asr.config import load_asr_config
    >>> config = load_asr_config("recipes/tiny/asr/hparams/train.yaml", {"train.epochs": 2})
    >>> best = train_asr(config)          # writes exp/…/best.pt, last.pt, metrics.jsonl

A killed run continues with ``train_asr(config, resume=True)``: model, optimizer, scheduler, data
order (epoch, batch within the epoch) and random state come back from ``last.pt``.

Under ``torchrun --nproc-per-node N`` every rank runs ``train_asr``: the model is wrapped in
DistributedDataParallel, each rank reads its share of every global batch (the batches a single
process would train on), and rank 0 alone writes checkpoints, metrics and the progress bar.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from speechseq import distributed
from speechseq.asr.config import AsrExperimentConfig
from speechseq.asr.decoding import greedy_decode
from speechseq.audio import load_audio
from speechseq.augment import WaveformAugmenter
from speechseq.checkpoint import ASR_FORMAT, asr_state, load_checkpoint
from speechseq.data import AsrBatch, AsrDataset, DurationBatchSampler, Utterance, collate_asr
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, FeatureExtractor, SpecAugment
from speechseq.metrics import error_counts
from speechseq.models import Recognizer, RecognizerConfig
from speechseq.optim import make_optimization, optimizer_step
from speechseq.pretrained import recognizer_path
from speechseq.quantization import dequantize_state
from speechseq.text import (
    PieceTokenizer,
    Tokenizer,
    new_tokenizer,
    tokenizer_from_dict,
)
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

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["compute_global_stats", "compute_loss", "train_asr", "validate"]


def compute_loss(
    model: torch.nn.Module,
    features: torch.Tensor,
    feature_lengths: torch.Tensor,
    batch: AsrBatch,
) -> torch.Tensor:
    """Mean CTC loss per utterance, each normalised by its target length.

    Args:
        model: the :class:`Recognizer`, or its DistributedDataParallel wrapper.
        features: (B, T, n_mels) (possibly augmented) features.
        feature_lengths: (B,) valid frames.
    """
    log_probs, out_lengths = model(features, feature_lengths)  # (B, T', V), (B,)
    return torch.nn.functional.ctc_loss(
        log_probs.float().transpose(0, 1),  # (T', B, V)
        batch.tokens,
        out_lengths,
        batch.token_lengths,
        blank=0,
        reduction="mean",
        zero_infinity=True,
    )


@torch.no_grad()
def validate(
    model: Recognizer, loader: DataLoader, tokenizer: Tokenizer, device: torch.device
) -> dict[str, float]:
    """Greedy-decode a dev set: its loss, WER and CER."""
    model.eval()
    refs, hyps, loss_sum, n = [], [], 0.0, 0
    for batch in loader:
        if batch is None:
            continue
        feats, lengths = batch.features.to(device), batch.feature_lengths.to(device)
        log_probs, out_lengths = model(feats, lengths)
        batch.tokens, batch.token_lengths = batch.tokens.to(device), batch.token_lengths.to(device)
        loss = compute_loss(model, feats, lengths, batch)
        loss_sum += loss.item() * len(batch.texts)
        n += len(batch.texts)
        hyps += greedy_decode(log_probs, out_lengths, tokenizer)
        refs += batch.texts
    model.train()
    counts = error_counts(refs, hyps)
    # Under torchrun each rank decoded its share of the dev set: losses and edit counts add up.
    totals = [loss_sum, n, *(counts[k] for k in ("word_errors", "words", "char_errors", "chars"))]
    loss_sum, n, word_errors, words, char_errors, chars = distributed.sum_over_ranks(totals)
    return {
        "dev_loss": loss_sum / max(1, n),
        "dev_wer": word_errors / max(1, words),
        "dev_cer": char_errors / max(1, chars),
    }


def compute_global_stats(
    utterances: list[Utterance], config: FeatureConfig, max_utterances: int = 500
) -> FeatureConfig:
    """``config`` with the corpus mean and standard deviation per mel channel, from the first
    ``max_utterances`` utterances."""
    extractor = FeatureExtractor(replace(config, normalize="none"))
    features = (  # each (T, n_mels)
        extractor(load_audio(u.audio, config.sample_rate)) for u in utterances[:max_utterances]
    )
    return config.with_stats(*feature_stats(features))


def _rank_share(
    batch: AsrBatch | None, dataset: AsrDataset, global_batch: list[int]
) -> tuple[AsrBatch | None, float, float]:
    """Ready this rank's share of a global batch for DistributedDataParallel.

    DDP averages the ranks' gradients, so a rank's loss (the mean over its ``n`` utterances) is
    weighted by ``world_size * n / N`` (``N`` in the global batch): the average is then the
    gradient of the global batch's mean, as in a single process. Features are padded to the
    global batch's longest, because batch norm's statistics include the padding.

    A rank whose share is empty (a batch with fewer utterances than ranks) or unreadable still
    has to join every gradient all-reduce: it runs a readable utterance of the batch at weight 0.

    Returns:
        the batch to train on (None on every rank when no file of the global batch was
        readable), its loss weight, and the global batch's seconds of audio.
    """
    n = len(batch.texts) if batch is not None else 0
    frames = batch.features.shape[1] if batch is not None else 0
    seconds = sum(batch.durations) if batch is not None else 0.0
    sizes = distributed.gather([n, frames, seconds])  # (world_size, 3)
    total, longest = int(sizes[:, 0].sum()), int(sizes[:, 1].max())
    if total == 0:
        return None, 0.0, 0.0
    if batch is None:
        items = (dataset[i] for i in global_batch)
        batch = collate_asr([next((item for item in items if item is not None), None)])
        if batch is None:
            raise SpeechseqError(f"rank {distributed.rank()}: cannot read any file of its batch")
    pad = max(0, longest - batch.features.shape[1])
    features = torch.nn.functional.pad(batch.features, (0, 0, 0, pad))  # (B, longest, n_mels)
    weight = distributed.world_size() * n / total
    return replace(batch, features=features), weight, float(sizes[:, 2].sum())


def _any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is on any (so all ranks stop together)."""
    return distributed.sum_over_ranks([float(flag)])[0] > 0


def train_asr(config: AsrExperimentConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a recognizer as ``config`` says; returns the path of the best checkpoint.

    Launched by torchrun with ``WORLD_SIZE`` > 1, it joins the process group (gloo on CPU, nccl
    on CUDA) and trains with DistributedDataParallel; see the module docstring.

    Args:
        config: the experiment.
        resume: continue from ``out_dir/last.pt`` if it exists (else start fresh).
        progress: show a progress bar on stderr (rank 0's only).

    Raises:
        SpeechseqError: bad manifests, an occupied ``out_dir`` without ``resume``, …
    """
    device = distributed.init(pick_device(config.train.device))
    try:
        return _run(config, resume, progress, device)
    finally:
        distributed.cleanup()


def _overridden(
    section: str, asked: DataclassInstance, kept: DataclassInstance, derived: tuple[str, ...]
) -> list[str]:
    """The ``section.key`` settings that the config (``asked``) moves from their defaults to
    other values than the checkpoint's (``kept``), as ``"model.hidden_size 256 (checkpoint:
    384)"``. A config that leaves a section out gets its defaults, which are no request, so
    they are not named; ``derived`` keys are not settings a user makes."""
    asked_d, kept_d, default_d = asdict(asked), asdict(kept), asdict(type(asked)())
    return [
        f"{section}.{key} {value!r} (checkpoint: {kept_d[key]!r})"
        for key, value in asked_d.items()
        if key not in derived and value != default_d[key] and value != kept_d[key]
    ]


@dataclass
class _ModelSpec:
    """What the model is built from: a checkpoint's side (resume, fine-tuning) or the config's."""

    feature_config: FeatureConfig
    model_config: RecognizerConfig
    tokenizer: Tokenizer
    weights: dict | None = None  # to load (resume, fine-tuning); None: fresh
    new_units: bool = False  # fine-tuning into other output units: a fresh output layer


def _say(message: str) -> None:
    if distributed.is_main():
        print(message, file=sys.stderr)


def choose_model(
    config: AsrExperimentConfig, state: dict | None, train_utts: list[Utterance]
) -> _ModelSpec:
    """Resuming takes everything from ``last.pt``; fine-tuning (``train.init_from``) the
    checkpoint's model side, possibly with new output units; a new run the config's."""
    init = state
    if state is None and config.train.init_from:
        init = load_checkpoint(recognizer_path(config.train.init_from), ASR_FORMAT)
        _say(f"fine-tuning {config.train.init_from}")
    if init is None:
        return _fresh_model(config, train_utts)
    spec = _ModelSpec(
        FeatureConfig.from_dict(init["feature_config"]),
        RecognizerConfig.from_dict(init["model_config"]),
        tokenizer_from_dict(init["tokenizer"]),
        dequantize_state(init),  # an int8 release copy fine-tunes from its float32 weights
    )
    if state is not None:
        return spec
    if config.data.tokenizer is not None:
        units = new_tokenizer(config.data.tokenizer, [u.text for u in train_utts])
        if units.to_dict() != spec.tokenizer.to_dict():
            spec.tokenizer, spec.new_units = units, True
            spec.model_config = replace(spec.model_config, vocab_size=len(units))
            _say(
                f"new output units ({config.data.tokenizer}, {len(units)} with the blank): the "
                "output layer starts afresh"
            )
    ignored = _overridden("features", config.features, spec.feature_config, ("mean", "std"))
    ignored += _overridden("model", config.model, spec.model_config, ("vocab_size", "n_mels"))
    if ignored:
        _say(
            "fine-tuning keeps the checkpoint's features and model, not the config's: "
            + ", ".join(ignored)
        )
    return spec


def _fresh_model(config: AsrExperimentConfig, train_utts: list[Utterance]) -> _ModelSpec:
    tokenizer = new_tokenizer(config.data.tokenizer or "char", [u.text for u in train_utts])
    if isinstance(tokenizer, PieceTokenizer):
        _say(f"output units: {len(tokenizer) - 1} word pieces and the blank")
    feature_config = config.features
    if feature_config.normalize == "global" and not feature_config.mean:
        feature_config = compute_global_stats(train_utts, feature_config)
    model_config = replace(config.model, vocab_size=len(tokenizer), n_mels=feature_config.n_mels)
    return _ModelSpec(feature_config, model_config, tokenizer)


def build_model(
    spec: _ModelSpec, seed: int, device: torch.device
) -> tuple[Recognizer, torch.nn.Module]:
    """The recognizer (weights loaded if the spec has them) and what a training step runs: the
    model, or DistributedDataParallel around it under torchrun."""
    torch.manual_seed(seed)
    model = Recognizer(spec.model_config)
    if spec.weights is not None:
        weights = spec.weights
        if spec.new_units:  # the output layer keeps its fresh weights; everything else is loaded
            fresh = {k: v for k, v in model.state_dict().items() if k.startswith("output.")}
            weights = {**weights, **fresh}
        model.load_state_dict(weights)
    world = distributed.world_size()
    if world > 1:
        distributed.convert_sync_batchnorm(model)  # batch statistics over the global batch
    model = model.to(device)
    if world == 1:
        return model, model
    net = DistributedDataParallel(model, [device.index] if device.type == "cuda" else None)
    # Dropout and SpecAugment draw from the global RNG: give each rank a stream of its own.
    torch.manual_seed(seed * 1_000_003 + distributed.rank() + 1)
    return model, net


def train_one_epoch(
    batches,
    net: torch.nn.Module,
    model: Recognizer,
    train_set: AsrDataset,
    sampler: DurationBatchSampler,
    loop: EpochLoop,
    optimization: tuple,
    config: AsrExperimentConfig,
    log: MetricsLog,
    device: torch.device,
) -> None:
    """One epoch's optimizer steps (from the loop's position on), logged every
    ``train.log_every`` steps."""
    tc, world = config.train, distributed.world_size()
    optimizer, scheduler, scaler = optimization
    augment = SpecAugment(config.spec_augment) if config.spec_augment else None
    autocast_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    train_set.epoch = loop.epoch
    global_batches = sampler.batches() if world > 1 else []
    window_audio, window_start = 0.0, time.monotonic()
    for batch in batches:
        weight, audio_seconds = 1.0, sum(batch.durations) if batch is not None else 0.0
        if world > 1:
            batch, weight, audio_seconds = _rank_share(
                batch, train_set, global_batches[loop.batch_in_epoch]
            )
        if batch is None:  # every file in it was unreadable (each was warned about)
            loop.skipped()
            continue
        feats = batch.features.to(device)
        lengths = batch.feature_lengths.to(device)
        batch.tokens, batch.token_lengths = batch.tokens.to(device), batch.token_lengths.to(device)
        if augment is not None:
            feats = augment(feats, lengths)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=tc.amp):
            loss = compute_loss(net, feats, lengths, batch)
        grad_norm = optimizer_step(
            loss * weight if weight != 1 else loss,
            optimizer,
            scheduler,
            scaler,
            model.parameters(),
            tc.grad_clip,
        )
        window_audio += audio_seconds
        speed = window_audio / max(1e-9, time.monotonic() - window_start)
        # the global batch's mean loss: the ranks' weighted losses average to it
        loss_value = distributed.sum_over_ranks([weight * loss.item()])[0] / world
        loop.stepped(loss=f"{loss_value:.3f}", speed=f"{speed:.0f}s/s")
        if loop.step % tc.log_every == 0:
            log.write(
                {
                    "step": loop.step,
                    "epoch": loop.epoch_number,
                    "loss": round(loss_value, 5),
                    "grad_norm": round(float(grad_norm), 4),
                    "lr": scheduler.get_last_lr()[0],
                    "audio_seconds_per_second": round(speed, 2),
                    **loop.clocks(),
                }
            )
            window_audio, window_start = 0.0, time.monotonic()


def validate_and_log(
    model: Recognizer,
    loader: DataLoader,
    tokenizer: Tokenizer,
    device: torch.device,
    loop: EpochLoop,
    log: MetricsLog,
) -> dict[str, float]:
    """:func:`validate`, written to the metrics log and said on stderr."""
    metrics = validate(model, loader, tokenizer, device)
    rounded = {k: round(v, 5) for k, v in metrics.items()}
    log.write({"step": loop.step, "epoch": loop.epoch_number, **rounded, **loop.clocks()})
    wer, cer = 100 * metrics["dev_wer"], 100 * metrics["dev_cer"]
    _say(f"step {loop.step}: dev loss {metrics['dev_loss']:.3f}  WER {wer:.1f}%  CER {cer:.1f}%")
    return metrics


def _run(config: AsrExperimentConfig, resume: bool, progress: bool, device: torch.device) -> Path:
    tc, data = config.train, config.data
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    world, rank = distributed.world_size(), distributed.rank()
    train_utts = load_set(data.train_manifest, data.max_duration, data.max_missing)
    if not train_utts:
        raise SpeechseqError(f"{data.train_manifest}: no training utterances")
    dev_utts = load_set(data.dev_manifest, max_missing=data.max_missing)
    if tc.tensorboard:
        require_tensorboard()  # before the run's folder is made
    out_dir, state = prepare_out_dir(config, resume, ASR_FORMAT)  # once the data is known good
    log = MetricsLog(out_dir / "metrics.jsonl", tc.tensorboard)

    spec = choose_model(config, state, train_utts)
    model, net = build_model(spec, tc.seed, device)
    extractor = FeatureExtractor(spec.feature_config)
    augmenter = (
        WaveformAugmenter(config.augment, spec.feature_config.sample_rate)
        if config.augment
        else None
    )
    train_set = AsrDataset(train_utts, extractor, spec.tokenizer, augmenter, tc.seed)
    sampler = make_sampler(train_set.durations, data, tc.seed, True, world, rank)
    optimizer, scheduler, total_steps = make_optimization(model, tc, sampler)
    dev_loader = None
    if dev_utts:
        dev_set = AsrDataset(dev_utts, extractor, spec.tokenizer)
        dev_sampler = make_sampler(dev_set.durations, data, tc.seed, False, world, rank)
        dev_loader = make_loader(dev_set, dev_sampler, collate_asr, data.num_workers, tc.seed)

    loop = EpochLoop(
        tc,
        sampler,
        lambda seed: make_loader(train_set, sampler, collate_asr, data.num_workers, seed),
        total_steps,
        lambda: checkpointer.save_last(),
        progress,
        _any_rank,
    )
    checkpointer = Checkpointer(
        out_dir,
        lambda: asr_state(model, spec.feature_config, spec.tokenizer),
        loop,
        optimizer,
        scheduler,
        config,
        best_metric="dev_wer",
        have_dev=dev_loader is not None,
    )
    if state is not None:
        checkpointer.restore(state["train_state"])

    scaler = torch.amp.GradScaler(device.type, enabled=tc.amp and device.type == "cuda")
    model.train()
    for batches in loop.epochs():
        train_one_epoch(
            batches,
            net,
            model,
            train_set,
            sampler,
            loop,
            (optimizer, scheduler, scaler),
            config,
            log,
            device,
        )
        metrics = {}
        if dev_loader is not None and loop.validation_due:
            metrics = validate_and_log(model, dev_loader, spec.tokenizer, device, loop, log)
        checkpointer.end_epoch(metrics)
    distributed.barrier()  # every rank returns once rank 0 has written the checkpoints
    return out_dir / "best.pt"
