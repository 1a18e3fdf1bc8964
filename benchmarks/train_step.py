"""Training-step speed of recognizer configs, side by side on the same batches of real audio.

    # the synthetic recipe's config against the same with 60 ms output frames
    python benchmarks/train_step.py recipes/synthetic/asr/hparams/train.yaml \
        --variant "pieces, 40 ms" data.tokenizer=bpe:256 \
        --variant "pieces, 60 ms" data.tokenizer=bpe:256 model.subsampling=6

Each variant is the config file plus its ``section.key=value`` overrides (with no --variant:
the file as is, and the file with ``model.subsampling=6``). All variants train on the same
``--batches`` batches: the first ones of epoch 0 in the recipe's own batching (its
``max_batch_seconds``), with its waveform augmentation, decoded and featurised once per variant
before any timing (that time is reported as "data s/batch", since a training run pays it too,
in the loop or in DataLoader workers). A timed step is what the training loop runs per batch:
SpecAugment, forward, CTC loss, backward, clipping, AdamW and the schedule. The variants take
turns batch by batch (A, B, A, B, …) after one untimed warm-up step each, so a machine that
slows down part-way slows every variant alike. Figures: median seconds per step, audio seconds
trained per second, and each variant's time relative to the first.

Paths in the config (the train manifest) are relative to the config file's recipe folder, the
folder ``speechseq train`` is run from (the config's parent's parent, e.g.
``recipes/synthetic/asr``), unless they exist relative to the working directory. Time only on
an otherwise idle machine: the machine line prints the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from speechseq.augment import WaveformAugmenter
from speechseq.config import AsrExperimentConfig, load_asr_config, parse_overrides
from speechseq.data import AsrBatch, AsrDataset, DurationBatchSampler, collate_asr
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor, SpecAugment
from speechseq.models.asr import Recognizer
from speechseq.trainer import load_set, make_optimizer, optimizer_step
from speechseq.training import compute_loss, new_tokenizer


@dataclass
class Variant:
    """One config under test, its prepared batches and its timings."""

    name: str
    config: AsrExperimentConfig
    batches: list[AsrBatch] = field(default_factory=list)
    data_seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    model: Recognizer | None = None
    step: object = None  # () -> None: one training step on the next batch


def _resolve(path: str, recipe_dir: Path) -> str:
    return path if Path(path).exists() else str(recipe_dir / path)


def prepare(variant: Variant, recipe_dir: Path, n_batches: int) -> None:
    """Tokenizer, model, optimizer and ``n_batches`` featurised batches for ``variant``."""
    config = variant.config
    manifest = config.data.train_manifest
    manifests = (manifest,) if isinstance(manifest, str) else manifest
    utts = load_set(tuple(_resolve(m, recipe_dir) for m in manifests), config.data.max_duration)
    if not utts:
        raise SpeechseqError(f"{variant.name}: no training utterances in {manifest}")
    tokenizer = new_tokenizer(config.data.tokenizer or "char", [u.text for u in utts])
    features = config.features
    if features.normalize == "global":
        raise SpeechseqError(f"{variant.name}: global normalisation is not supported here")
    augmenter = WaveformAugmenter(config.augment, features.sample_rate) if config.augment else None
    dataset = AsrDataset(utts, FeatureExtractor(features), tokenizer, augmenter, config.train.seed)
    sampler = DurationBatchSampler(
        dataset.durations,
        config.data.max_batch_seconds,
        True,
        config.train.seed,
        config.data.max_batch_size,
    )
    start = time.perf_counter()
    for indices in sampler.batches()[:n_batches]:
        batch = collate_asr([dataset[i] for i in indices])
        if batch is not None:
            variant.batches.append(batch)
    variant.data_seconds = (time.perf_counter() - start) / max(1, len(variant.batches))

    torch.manual_seed(config.train.seed)
    model_config = replace(config.model, vocab_size=len(tokenizer), n_mels=features.n_mels)
    model = Recognizer(model_config).train()
    tc = config.train
    optimizer, scheduler = make_optimizer(model, tc, 10_000)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    augment = SpecAugment(config.spec_augment) if config.spec_augment else None
    turn = iter(range(10**9))

    def step() -> None:
        batch = variant.batches[next(turn) % len(variant.batches)]
        feats = batch.features
        if augment is not None:
            feats = augment(feats, batch.feature_lengths)
        loss = compute_loss(model, feats, batch.feature_lengths, batch)
        optimizer_step(loss, optimizer, scheduler, scaler, model.parameters(), tc.grad_clip)

    variant.model, variant.step = model, step


def run(variants: list[Variant], n_batches: int) -> None:
    for v in variants:
        v.step()  # warm-up (allocator, kernels), untimed
    for _ in range(n_batches):
        for v in variants:
            start = time.perf_counter()
            v.step()
            v.step_seconds.append(time.perf_counter() - start)


def report(variants: list[Variant]) -> None:
    base = statistics.median(variants[0].step_seconds)
    audio = [sum(sum(b.durations) for b in v.batches) / len(v.batches) for v in variants]
    print(
        f"| variant | output frame | parameters | data s/batch | s/step (median) "
        f"| audio s/s | time vs {variants[0].name!r} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for v, seconds in zip(variants, audio, strict=True):
        median = statistics.median(v.step_seconds)
        frame_ms = v.config.features.hop_length / v.config.features.sample_rate * 1000
        frame_ms *= v.config.model.subsampling
        params = sum(p.numel() for p in v.model.parameters())
        print(
            f"| {v.name} | {frame_ms:.0f} ms | {params:,} | {v.data_seconds:.2f} | {median:.2f} "
            f"| {seconds / median:.1f} | {median / base:.2f} |"
        )
    steps = len(variants[0].step_seconds)
    print(
        f"\n{steps} timed steps each, {audio[0]:.0f} audio seconds a batch; machine: "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, load average "
        f"{os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="experiment YAML (speechseq train asr's)")
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar=("NAME", "OVERRIDE"),
        help="a name and section.key=value overrides (repeat for each variant)",
    )
    parser.add_argument("--batches", type=int, default=6, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    specs = args.variant or [["as is"], ["subsampling 6", "model.subsampling=6"]]
    try:
        variants = [
            Variant(name, load_asr_config(args.config, parse_overrides(overrides)))
            for name, *overrides in specs
        ]
        recipe_dir = args.config.resolve().parent.parent
        for v in variants:
            print(f"preparing {v.name} …", file=sys.stderr)
            prepare(v, recipe_dir, args.batches)
    except SpeechseqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run(variants, args.batches)
    report(variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
