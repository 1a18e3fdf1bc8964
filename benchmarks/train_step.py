"""Training-step speed of recognizer configs, side by side on the same batches of real audio.

    # the synthetic recipe's config against the same with 60 ms output frames
    python benchmarks/train_step.py recipes/synthetic/asr/hparams/train.yaml \
        --variant "pieces, 40 ms" data.tokenizer=bpe:256 \
        --variant "pieces, 60 ms" data.tokenizer=bpe:256 model.subsampling=6

Each variant is the config file plus its ``section.key=value`` overrides (with no --variant:
the file as is, and the file with ``model.subsampling=6``). All variants train on the same
``--batches`` batches: the first ones of epoch 0 in the recipe's own batching (its
``max_batch_seconds``), with its waveform augmentation, decoded and featurised before any timing,
once for all variants with the same data, feature and augmentation settings, and tokenised by
each variant's tokenizer. The time that took is reported as "data s/batch", since a training
run pays it too, in the loop or in DataLoader workers. A timed step is what the training loop
runs per batch: SpecAugment, forward (under autocast if ``train.amp``), CTC loss, backward,
clipping, AdamW and the schedule. The variants take turns batch by batch (A, B, A, B, …) after
one untimed warm-up step each, so a machine that slows down part-way slows every variant alike.

Figures: utterances of those batches that CTC cannot align (more tokens, plus one per repeated
token, than output frames; they train on nothing), median seconds per step, audio seconds
trained per second of step time, and each variant's median step time relative to the first's.

Paths in the config (the train manifest) are relative to the config file's recipe folder, the
folder ``speechseq train`` is run from (the config's parent's parent, e.g.
``recipes/synthetic/asr``), unless they exist relative to the working directory. Time only on
an otherwise idle machine: the machine line prints the load average.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from speechseq.asr.alignment import ctc_min_frames
from speechseq.asr.config import AsrExperimentConfig, load_asr_config
from speechseq.asr.train import compute_loss
from speechseq.augment import WaveformAugmenter
from speechseq.config import parse_overrides
from speechseq.data import AsrBatch, AsrDataset, DurationBatchSampler, collate_asr
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor, SpecAugment
from speechseq.models.asr import Recognizer
from speechseq.optim import make_optimizer, optimizer_step
from speechseq.text import CharTokenizer, Tokenizer, new_tokenizer
from speechseq.training import load_set


@dataclass
class Variant:
    """One config under test, its batches and its timings."""

    name: str
    config: AsrExperimentConfig
    batches: list[AsrBatch] = field(default_factory=list)
    data_seconds: float = 0.0  # per batch: decoding, augmentation, features
    step_seconds: list[float] = field(default_factory=list)
    model: Recognizer | None = None
    step: Callable[[], None] | None = None  # one training step on the next batch
    unalignable: int = 0  # utterances with more tokens (+ repeats) than output frames
    utterances: int = 0


def _resolve(path: str, recipe_dir: Path) -> str:
    return path if Path(path).exists() else str(recipe_dir / path)


def _data_key(config: AsrExperimentConfig) -> str:
    """Variants with equal keys train on the same audio, features and augmentation."""
    d, t = config.data, config.train
    parts = (d.train_manifest, d.max_duration, d.max_batch_seconds, d.max_batch_size, t.seed)
    return repr((parts, config.features, config.augment))


def _featurised(config: AsrExperimentConfig, utts: list, n_batches: int) -> tuple[list, float]:
    """The items (``AsrDataset``'s dicts) of the first ``n_batches`` batches of epoch 0 as
    training makes them (tokens: characters, replaced per variant), and the seconds each batch
    took to make."""
    features = config.features
    augmenter = WaveformAugmenter(config.augment, features.sample_rate) if config.augment else None
    dataset = AsrDataset(
        utts, FeatureExtractor(features), CharTokenizer(), augmenter, config.train.seed
    )
    sampler = DurationBatchSampler(
        dataset.durations,
        config.data.max_batch_seconds,
        True,
        config.train.seed,
        config.data.max_batch_size,
    )
    batches = []
    start = time.perf_counter()
    for indices in sampler.batches()[:n_batches]:
        items = [it for it in (dataset[i] for i in indices) if it is not None]
        if items:
            batches.append(items)
    if not batches:
        raise SpeechseqError("no readable batch of training audio")
    return batches, (time.perf_counter() - start) / len(batches)


def _tokenised(items: list[dict], tokenizer: Tokenizer) -> AsrBatch:
    ids = (torch.tensor(tokenizer.encode(it["text"]), dtype=torch.long) for it in items)
    batch = collate_asr([{**it, "tokens": t} for it, t in zip(items, ids, strict=True)])
    assert batch is not None  # items are the readable ones of a non-empty batch
    return batch


def prepare(variants: list[Variant], recipe_dir: Path, n_batches: int) -> None:
    """Tokenizer, model, optimizer and batches of each variant; the featurised audio is made
    once for all variants that share a data key."""
    made: dict[str, tuple[list[list[dict]], float, list]] = {}
    for variant in variants:
        config, tc = variant.config, variant.config.train
        if tc.init_from:
            raise SpeechseqError(f"{variant.name}: train.init_from is not supported here")
        if config.features.normalize == "global":
            raise SpeechseqError(f"{variant.name}: global normalisation is not supported here")
        key = _data_key(config)
        if key not in made:
            print(f"featurising for {variant.name} …", file=sys.stderr)
            manifest = config.data.train_manifest
            manifests = (manifest,) if isinstance(manifest, str) else manifest
            utts = load_set(
                tuple(_resolve(m, recipe_dir) for m in manifests), config.data.max_duration
            )
            if not utts:
                raise SpeechseqError(f"{variant.name}: no training utterances in {manifest}")
            made[key] = (*_featurised(config, utts, n_batches), utts)
        batches, variant.data_seconds, utts = made[key]
        spec = config.data.tokenizer or "char"
        if spec.endswith(".model"):
            spec = _resolve(spec, recipe_dir)
        tokenizer = new_tokenizer(spec, [u.text for u in utts])
        variant.batches = [_tokenised(items, tokenizer) for items in batches]

        torch.manual_seed(tc.seed)
        model_config = replace(
            config.model, vocab_size=len(tokenizer), n_mels=config.features.n_mels
        )
        model = Recognizer(model_config).train()
        for b in variant.batches:
            frames = model.output_lengths(b.feature_lengths).tolist()
            for row, (n, have) in enumerate(zip(b.token_lengths.tolist(), frames, strict=True)):
                variant.unalignable += ctc_min_frames(b.tokens[row, :n].tolist()) > have
            variant.utterances += len(b.texts)
        variant.model, variant.step = model, _stepper(variant, model)


def _stepper(variant: Variant, model: Recognizer) -> Callable[[], None]:
    config, tc = variant.config, variant.config.train
    optimizer, scheduler = make_optimizer(model, tc, 10_000)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    augment = SpecAugment(config.spec_augment) if config.spec_augment else None
    turn = itertools.count()

    def step() -> None:
        batch = variant.batches[next(turn) % len(variant.batches)]
        feats = batch.features
        if augment is not None:
            feats = augment(feats, batch.feature_lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=tc.amp):
            loss = compute_loss(model, feats, batch.feature_lengths, batch)
        optimizer_step(loss, optimizer, scheduler, scaler, model.parameters(), tc.grad_clip)

    return step


def _step(v: Variant) -> Callable[[], None]:
    assert v.step is not None  # set by prepare()
    return v.step


def run(variants: list[Variant], n_batches: int) -> None:
    steps = [_step(v) for v in variants]
    for step in steps:
        step()  # warm-up (allocator, kernels), untimed
    for _ in range(n_batches):
        for v, step in zip(variants, steps, strict=True):
            start = time.perf_counter()
            step()
            v.step_seconds.append(time.perf_counter() - start)


def _audio_seconds(v: Variant) -> float:
    """Audio seconds of the timed steps (they cycle through the batches after the warm-up)."""
    n = len(v.batches)
    return sum(sum(v.batches[(i + 1) % n].durations) for i in range(len(v.step_seconds)))


def report(variants: list[Variant]) -> None:
    base = statistics.median(variants[0].step_seconds)
    print(
        "| variant | output frame | parameters | unalignable | data s/batch | s/step (median) "
        f"| audio s/s | time vs {variants[0].name!r} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        median = statistics.median(v.step_seconds)
        frame_ms = v.config.features.hop_length / v.config.features.sample_rate * 1000
        frame_ms *= v.config.model.subsampling
        assert v.model is not None  # set by prepare()
        params = sum(p.numel() for p in v.model.parameters())
        speed = _audio_seconds(v) / sum(v.step_seconds)
        print(
            f"| {v.name} | {frame_ms:.0f} ms | {params:,} | {v.unalignable}/{v.utterances} "
            f"| {v.data_seconds:.2f} | {median:.2f} | {speed:.1f} | {median / base:.2f} |"
        )
    v = variants[0]
    print(
        f"\n{len(v.step_seconds)} timed steps each over {len(v.batches)} batches "
        f"({_audio_seconds(v) / len(v.step_seconds):.0f} audio seconds a step); machine: "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, load average "
        f"{os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None  # the module docstring above
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
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: the first variant's train.num_threads)",
    )
    args = parser.parse_args(argv)
    specs = args.variant or [["as is"], ["subsampling 6", "model.subsampling=6"]]
    try:
        if args.batches < 1:
            raise SpeechseqError("--batches must be at least 1")
        variants = [
            Variant(name, load_asr_config(args.config, parse_overrides(overrides)))
            for name, *overrides in specs
        ]
        threads = args.threads or variants[0].config.train.num_threads
        if threads:
            torch.set_num_threads(threads)
        prepare(variants, args.config.resolve().parent.parent, args.batches)
    except SpeechseqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run(variants, args.batches)
    report(variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
